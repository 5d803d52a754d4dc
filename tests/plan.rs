//! The compute-unit plan end to end, on `placement_mix` (convs above the ANE size floor, a topk
//! tail off the ANE): what every compile prints and packages carry, `edgec plan` on a model and
//! on a package, `--compute-units`, `--require-ane`'s exit status, and `--pin-compute-units`
//! proven against coremltools 9's own `set_intended_backends`.

mod common;

use common::edgec;
use std::path::{Path, PathBuf};
use std::process::Command;

fn model() -> PathBuf {
    common::repo_root().join("testdata/models/placement_mix.onnx")
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn compile(out: &Path, extra: &[&str]) -> (i32, String) {
    let model = model();
    let mut args = vec!["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, _, stderr) = edgec(&args);
    (code, stderr)
}

fn metadata(package: &Path) -> std::collections::HashMap<String, String> {
    let pkg = edgec::coreml::inspect::read_package(package).unwrap();
    pkg.model
        .description
        .unwrap()
        .metadata
        .unwrap()
        .user_defined
        .into_iter()
        .collect()
}

#[test]
fn every_compile_prints_the_plan_and_the_package_carries_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("mix.mlpackage");
    let (code, stderr) = compile(&pkg, &["-v"]);
    assert_eq!(code, 0, "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("plan: "))
        .expect("a plan line");
    assert!(summary.contains("ANE") && summary.contains("segments"), "{summary}");
    // -v: the per-op table, with the BatchNorm fused into its conv.
    assert!(stderr.contains("compute plan for computeUnits = all"), "{stderr}");
    let fused = stderr.lines().find(|l| l.contains("fused into")).expect("a fused line");
    assert!(fused.contains("BatchNormalization"), "{fused}");

    let plan = read_json(&pkg.join("Data/com.edgec/plan.json"));
    let ops = plan["ops"].as_array().unwrap();
    let unit = |ty: &str| {
        ops.iter()
            .find(|o| o["type"] == ty)
            .map(|o| o["unit"].as_str().unwrap().to_string())
    };
    assert_eq!(unit("conv").as_deref(), Some("ane"));
    assert_eq!(unit("topk").as_deref(), Some("cpu"));
    assert_eq!(unit("gather_along_axis").as_deref(), Some("cpu"));
    let topk = ops.iter().find(|o| o["type"] == "topk").unwrap();
    assert!(!topk["supported"].as_array().unwrap().contains(&"ane".into()));
    assert!(topk["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "topk_indices"));
    assert_eq!(topk["onnx_nodes"], serde_json::json!(["topk"]));
    let body = ops
        .iter()
        .find(|o| o["onnx_nodes"][0] == "body_conv")
        .expect("the body conv");
    assert!(
        body["onnx_nodes"][1]
            .as_str()
            .unwrap()
            .starts_with("BatchNormalization"),
        "{body}"
    );

    let s = &plan["summary"];
    assert_eq!(s["ops"].as_u64().unwrap() as usize, ops.len());
    let counted: u64 = ["ane_ops", "gpu_ops", "cpu_ops"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, ops.len());
    assert!(s["segments"].as_u64().unwrap() >= 2 && s["transitions"].as_u64().unwrap() >= 1);

    let md = metadata(&pkg);
    assert_eq!(md["com.edgec.compute_units"], "all");
    assert_eq!(md["com.edgec.plan.segments"], s["segments"].to_string());
    let share: f64 = md["com.edgec.plan.ane_cost_share"].parse().unwrap();
    assert!((share - s["ane_cost_share"].as_f64().unwrap()).abs() < 1e-4);
    let (_, inspect, _) = edgec(&["inspect", pkg.to_str().unwrap()]);
    assert!(
        inspect.contains("compute units: all") && inspect.contains("plan (predicted)"),
        "{inspect}"
    );

    // `edgec plan` gives the same plan from the model (nothing written) and from the package.
    let (code, from_model, err) = edgec(&["plan", model().to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let (code, from_package, err) = edgec(&["plan", pkg.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let from_model: serde_json::Value = serde_json::from_str(&from_model).unwrap();
    let from_package: serde_json::Value = serde_json::from_str(&from_package).unwrap();
    assert_eq!(from_model, plan);
    assert_eq!(from_package, plan);
    let (_, table, _) = edgec(&["plan", pkg.to_str().unwrap()]);
    assert!(
        table.contains("fused into") && table.lines().last().unwrap().starts_with("plan: "),
        "{table}"
    );
}

#[test]
fn compute_units_limit_the_plan_and_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    for (arg, recorded, units) in [
        ("cpu-only", "cpuOnly", &["cpu"][..]),
        ("cpu-and-gpu", "cpuAndGPU", &["gpu", "cpu"]),
        ("coreml-ane", "cpuAndNeuralEngine", &["ane", "cpu"]),
    ] {
        let pkg = tmp.path().join(format!("{arg}.mlpackage"));
        let (code, stderr) = compile(&pkg, &["--compute-units", arg]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(metadata(&pkg)["com.edgec.compute_units"], recorded);
        let plan = read_json(&pkg.join("Data/com.edgec/plan.json"));
        assert_eq!(plan["compute_units"], recorded);
        for op in plan["ops"].as_array().unwrap() {
            assert!(units.contains(&op["unit"].as_str().unwrap()), "{arg}: {op}");
            for u in op["supported"].as_array().unwrap() {
                assert!(units.contains(&u.as_str().unwrap()), "{arg}: {op}");
            }
        }
        // Re-planning the package keeps the units it was planned for.
        let (_, replanned, _) = edgec(&["plan", pkg.to_str().unwrap(), "--json"]);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&replanned).unwrap(), plan);
    }
    let pkg = tmp.path().join("cpu-only.mlpackage");
    let (_, stderr) = compile(&pkg, &["--compute-units", "cpu-only"]);
    assert!(stderr.contains("CPU 100.0%"), "{stderr}");
}

#[test]
fn require_ane_exits_2_naming_the_off_ane_ops_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("strict.mlpackage");
    let (code, stderr) = compile(&pkg, &["--require-ane"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(!pkg.exists(), "nothing written");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no temporary left behind"
    );
    // Exactly the topk tail is named, each with its reason.
    let plan_json = {
        let (_, out, _) = edgec(&["plan", model().to_str().unwrap(), "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    for op in plan_json["ops"].as_array().unwrap() {
        let name = op["name"].as_str().unwrap();
        let listed = stderr.lines().any(|l| l.trim_start().starts_with(&format!("{name} (")));
        assert_eq!(listed, op["unit"] != "ane", "{name}: {stderr}");
    }
    assert!(stderr.contains("topk_indices"), "{stderr}");

    let (code, stderr) = compile(&pkg, &["--require-ane", "--precision", "fp32"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("fp32_program") && !pkg.exists(), "{stderr}");
    // Without the flag, the same model compiles.
    let (code, stderr) = compile(&pkg, &["--precision", "fp32"]);
    assert_eq!(code, 0, "{stderr}");
}

/// Compile `placement_mix` with and without pins under `extra`, check the pinned package against
/// coremltools' `set_intended_backends` applied to the unpinned one, and return the checker's
/// line.
fn check_pins(dir: &Path, label: &str, extra: &[&str]) -> (PathBuf, String) {
    let unpinned = dir.join(format!("{label}.mlpackage"));
    let pinned = dir.join(format!("{label}_pinned.mlpackage"));
    let (code, stderr) = compile(&unpinned, extra);
    assert_eq!(code, 0, "{stderr}");
    let mut with_pins = extra.to_vec();
    with_pins.push("--pin-compute-units");
    let (code, stderr) = compile(&pinned, &with_pins);
    assert_eq!(code, 0, "{stderr}");
    let out = Command::new(common::python())
        .arg(common::repo_root().join("scripts/check_intended_backends.py"))
        .args([&unpinned, &pinned])
        .output()
        .expect("the checker runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.starts_with("IDENTICAL"),
        "{label}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pinned, stdout)
}

#[test]
fn pins_are_encoded_exactly_as_coremltools_set_intended_backends_writes_them() {
    let tmp = tempfile::tempdir().unwrap();
    // fp16: the convs on the ANE, the topk tail on the CPU; fp32: the GPU.
    let (fp16, line) = check_pins(tmp.path(), "fp16", &[]);
    assert!(line.contains("ane") && line.contains("cpu"), "{line}");
    let (fp32, line) = check_pins(tmp.path(), "fp32", &["--precision", "fp32"]);
    assert!(line.contains("gpu"), "{line}");
    // Pinned packages pass coremltools' loader once the pins are stripped, and the check says so.
    common::validate_with_coremltools(&[fp16.clone(), fp32]);
    let out = Command::new(common::python())
        .arg(common::repo_root().join("scripts/validate_package.py"))
        .arg(&fp16)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stripped IntendedBackend from"), "{stdout}");
    let (_, inspect, _) = edgec(&["inspect", fp16.to_str().unwrap()]);
    assert!(!inspect.contains(" 0 ops pinned"), "{inspect}");
}
