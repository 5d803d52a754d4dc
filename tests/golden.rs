//! Golden tests: each test model's IR after the pass pipeline and the MIL program of the
//! emitted package, compared with `tests/golden/`. Refresh with `EDGEC_BLESS=1 cargo test
//! --test golden` and read the diff.

mod common;

use edgec::coreml::{inspect, text};
use edgec::driver::{build_ir, CompileOptions};
use edgec::onnx::InputShapes;
use edgec::proto::coreml::model;
use edgec::{DeploymentTarget, Precision};
use edgec_passes::print::print_graph;

fn options(shapes: &[(String, Vec<usize>)], precision: Precision) -> CompileOptions {
    CompileOptions {
        input_shapes: InputShapes(shapes.to_vec()),
        precision,
        verify_each_pass: true,
        ..Default::default()
    }
}

fn mil_text(pkg: &std::path::Path) -> String {
    let pkg = inspect::read_package(pkg).expect("package reads back");
    let mut out = String::new();
    if let Some(d) = &pkg.model.description {
        for f in d.input.iter() {
            out.push_str(&format!("input {}{}\n", f.name, note(&f.short_description)));
        }
        for f in d.output.iter() {
            out.push_str(&format!("output {}{}\n", f.name, note(&f.short_description)));
        }
    }
    match &pkg.model.r#type {
        Some(model::Type::MlProgram(p)) => out.push_str(&text::program_text(p)),
        _ => panic!("not an ML program"),
    }
    out
}

fn note(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!("  # {s}")
    }
}

#[test]
fn ir_and_mil_match_golden_files() {
    let golden = common::repo_root().join("tests/golden");
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, path, shapes) in common::test_models() {
        // Every model in fp16 (the default); the example model and the pattern-fusion models
        // in fp32 as well (where `--gelu auto` keeps exact GELU), attention also for iOS18.
        let mut variants = vec![(Precision::Fp16, DeploymentTarget::default(), String::new())];
        if name == "tiny_cnn" || name.starts_with("fusion_") {
            variants.push((Precision::Fp32, DeploymentTarget::default(), ".fp32".to_string()));
        }
        if name == "fusion_attention" {
            variants.push((Precision::Fp16, DeploymentTarget::Ios18, ".ios18".to_string()));
        }
        for (precision, target, suffix) in variants {
            let opts = CompileOptions {
                deployment_target: target,
                ..options(&shapes, precision)
            };
            let (_, graph) = build_ir(&path, &opts, &mut Vec::new()).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(diff) = common::check_golden(&golden.join(format!("{name}{suffix}.ir")), &print_graph(&graph)) {
                failures.push(diff);
            }
            let pkg = tmp.path().join(format!("{name}{suffix}.mlpackage"));
            edgec::compile(&path, &pkg, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(diff) = common::check_golden(&golden.join(format!("{name}{suffix}.mil")), &mil_text(&pkg)) {
                failures.push(diff);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (EDGEC_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}
