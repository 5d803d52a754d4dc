//! Weight compression: every scheme on iOS16 and iOS18 where the target holds it loads in
//! coremltools 9 and computes close to onnxruntime; coremltools' own value inference decodes
//! every constexpr op to exactly the weights edgec meant to store (the bit layout, proven by
//! Apple's reader rather than by edgec reading itself); bad `--weights` input is refused clearly.

mod common;

use common::edgec;
use edgec::coreml::DeploymentTarget;
use edgec::interp::{run_package, InterpOptions, NdArray};
use edgec::onnx::InputShapes;
use edgec::{CompileOptions, Precision};
use edgec_passes::compressed::Scheme;
use prost::Message;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The model with a weight of every consumer family, above the default size threshold.
fn models() -> Vec<(&'static str, InputShapes)> {
    vec![("compressible", InputShapes::default())]
}

/// Every scheme, with the targets it is emitted for.
fn schemes() -> Vec<(&'static str, Vec<DeploymentTarget>)> {
    use DeploymentTarget::{Ios16, Ios17, Ios18};
    vec![
        ("palettize:1", vec![Ios16, Ios18]),
        ("palettize:2", vec![Ios16, Ios18]),
        ("palettize:3", vec![Ios18]),
        ("palettize:4", vec![Ios16, Ios18]),
        ("palettize:6", vec![Ios16, Ios18]),
        ("palettize:8", vec![Ios16, Ios17, Ios18]),
        ("palettize:4:g2", vec![Ios18]),
        ("palettize:8:g4", vec![Ios18]),
        ("int8", vec![Ios16, Ios17, Ios18]),
        ("int8:b4", vec![Ios18]),
        ("int4:b4", vec![Ios18]),
    ]
}

/// `scheme` on every weight, exactly as asked: the guard is off (its own test turns it on).
fn options(scheme: &str, target: DeploymentTarget, shapes: &InputShapes) -> CompileOptions {
    CompileOptions {
        deployment_target: target,
        input_shapes: shapes.clone(),
        weights: vec![edgec::compression::parse_rule(scheme).unwrap()],
        compression_guard: None,
        verify_each_pass: true,
        ..Default::default()
    }
}

#[test]
fn every_scheme_loads_in_coremltools_and_computes_close() {
    let tmp = tempfile::tempdir().unwrap();
    let mut packages = Vec::new();
    let mut failures = Vec::new();
    for (name, shapes) in models() {
        let model = common::repo_root().join(format!("testdata/models/{name}.onnx"));
        let (inputs, expected) = common::reference(&model);
        for (scheme, targets) in schemes() {
            for target in targets {
                let pkg = tmp
                    .path()
                    .join(format!("{name}.{}.{target}.mlpackage", scheme.replace(':', "_")));
                let report = edgec::compile(&model, &pkg, &options(scheme, target, &shapes))
                    .unwrap_or_else(|e| panic!("{name} {scheme} {target}: {e}"));
                let compressed = report.weights.iter().filter(|r| r.scheme != Scheme::Dense).count();
                assert!(
                    compressed > 0,
                    "{name} {scheme}: nothing compressed: {:?}",
                    report.weights
                );
                let actual = run_package(&pkg, &inputs, &InterpOptions { fp16_rounding: true }).unwrap();
                for ((out, r), (_, a)) in expected.iter().zip(&actual) {
                    let c = edgec::verify::compare(out, r, a, Precision::Fp16);
                    // 8-bit LUTs and int8 must be close; fewer bits only finite here (their
                    // quality is measured on real models, docs/compression.md).
                    let strict = scheme.starts_with("palettize:8") || scheme.starts_with("int8");
                    if c.max_abs_error.is_nan() || (strict && c.cosine < 0.999) {
                        failures.push(format!("{name} {scheme} {target} {out}: cosine {}", c.cosine));
                    }
                }
                packages.push(pkg);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    common::validate_with_coremltools(&packages);
}

/// The dense weights edgec stores, by MIL name: the reconstruction of each compressed form.
fn intended_weights(model: &Path, options: &CompileOptions, package: &Path) -> HashMap<String, Vec<f32>> {
    let (_, graph) = edgec::driver::build_ir(model, options, &mut Vec::new()).unwrap();
    let names: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(package.join("Data/com.edgec/names.json")).unwrap()).unwrap();
    let mil_name: HashMap<String, String> = names["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
        .collect();
    graph
        .compressed
        .iter()
        .map(|(&v, form)| {
            let value = graph.value(v);
            let dense = form.reconstruct(&value.ty).to_f32_vec();
            (mil_name[&value.name].clone(), dense)
        })
        .collect()
}

#[test]
fn coremltools_decodes_exactly_what_edgec_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/compressible.onnx");
    let shapes = InputShapes::default();
    let mut cases = Vec::new();
    for (scheme, targets) in schemes() {
        for target in targets {
            for precision in [Precision::Fp16, Precision::Fp32] {
                let pkg = tmp
                    .path()
                    .join(format!("{}.{target}.{precision:?}.mlpackage", scheme.replace(':', "_")));
                let options = CompileOptions {
                    precision,
                    ..options(scheme, target, &shapes)
                };
                edgec::compile(&model, &pkg, &options).unwrap();
                cases.push((scheme, target, precision, pkg, options));
            }
        }
    }
    // One Python run decodes them all (each package's PKG.npz).
    let out = Command::new(common::python())
        .arg(common::repo_root().join("scripts/decode_constexpr.py"))
        .args(cases.iter().map(|c| &c.3))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut checked = 0;
    for (scheme, target, precision, pkg, options) in &cases {
        let decoded: HashMap<String, NdArray> = edgec::npy::read_npz(&pkg.with_extension("npz"))
            .unwrap()
            .into_iter()
            .collect();
        let intended = intended_weights(&model, options, pkg);
        assert!(!intended.is_empty());
        assert_eq!(decoded.len(), intended.len(), "{scheme} {target}: constexpr ops");
        for (name, want) in &intended {
            let got = decoded
                .get(name)
                .unwrap_or_else(|| panic!("{scheme} {target}: coremltools has no op {name}"))
                .data
                .to_f64_vec();
            let same = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| *g as f32 == *w);
            assert!(same, "{scheme} {target} {precision:?}: {name} decodes differently");
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn bad_weights_options_are_refused_clearly() {
    let model = common::repo_root().join("testdata/models/compressible.onnx");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m.mlpackage");
    let run = |extra: &[&str]| {
        let mut args = vec!["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        edgec(&args)
    };
    let (code, _, stderr) = run(&["--weights", "palettize:5"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("1, 2, 3, 4, 6 or 8"), "{stderr}");
    let (code, _, stderr) = run(&["--weights", "zstd"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown weight scheme"), "{stderr}");
    // A scheme the target cannot hold: an error naming the target, nothing written.
    let (code, _, stderr) = run(&["--weights", "palettize:4:g16"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("needs --deployment-target ios18"), "{stderr}");
    assert!(!out.exists());
    // A selector that matches nothing: a warning, and the package is still written.
    let (code, _, stderr) = run(&["--weights", "name:*nothing*=int8"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: --weights rule name:*nothing*=int8 selects no weight"),
        "{stderr}"
    );

    // A NaN in a weight: an error naming the tensor.
    let mut proto = edgec::proto::onnx::ModelProto::decode(std::fs::read(&model).unwrap().as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let weight = graph.initializer.iter_mut().find(|t| t.name == "conv.weight").unwrap();
    if weight.raw_data.is_empty() {
        weight.float_data[0] = f32::NAN;
    } else {
        let mut raw = weight.raw_data.to_vec();
        raw[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        weight.raw_data = raw.into();
    }
    let bad = tmp.path().join("nan_weight.onnx");
    std::fs::write(&bad, proto.encode_to_vec()).unwrap();
    let (code, _, stderr) = edgec(&[
        "compile",
        bad.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--weights",
        "palettize:4",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("NaN") && stderr.contains("weight"), "{stderr}");
}

/// `name:GLOB` speaks of ONNX initializer names, also for weights that passes rebuilt under
/// another name: Gemm's `fc.weight` becomes a fused linear weight, MatMul's `proj.weight` a
/// transposed one, and fp16 stores copies of both.
#[test]
fn name_selectors_match_onnx_initializer_names_through_fusion_and_fp16() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/compressible.onnx");
    for precision in [Precision::Fp16, Precision::Fp32] {
        for initializer in ["fc.weight", "proj.weight", "conv.weight"] {
            let pkg = tmp.path().join(format!("{initializer}.{precision:?}.mlpackage"));
            let options = CompileOptions {
                precision,
                ..options(
                    &format!("name:{initializer}=int8"),
                    DeploymentTarget::Ios16,
                    &InputShapes::default(),
                )
            };
            let report = edgec::compile(&model, &pkg, &options).unwrap();
            assert!(report.warnings.is_empty(), "{initializer}: {:?}", report.warnings);
            let compressed: Vec<&str> = report
                .weights
                .iter()
                .filter(|row| row.scheme != Scheme::Dense)
                .map(|row| row.name.as_str())
                .collect();
            assert_eq!(compressed, [initializer], "{precision:?}");
        }
    }
}

/// The guard measures what compression does to the outputs and, when an output falls below the
/// bar, leaves the worst weights dense until it holds; the package then computes what the guard
/// says, and the report marks each weight it left dense.
#[test]
fn the_compression_guard_leaves_the_worst_weights_dense_until_the_outputs_hold() {
    use edgec::compression_guard::CompressionGuard;
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/compressible.onnx");
    let inputs = edgec::npy::read_npz(&common::repo_root().join("testdata/models/compressible.npz")).unwrap();
    let inputs: Vec<(String, NdArray)> = inputs
        .into_iter()
        .filter_map(|(k, a)| Some((k.strip_prefix("input:")?.to_string(), a)))
        .collect();
    let run = |pkg: &Path| run_package(pkg, &inputs, &InterpOptions { fp16_rounding: true }).unwrap();
    let dense_pkg = tmp.path().join("dense.mlpackage");
    edgec::compile(&model, &dense_pkg, &CompileOptions::default()).unwrap();
    let dense = run(&dense_pkg);
    let worst_cosine = |pkg: &Path| {
        let outputs = run(pkg);
        dense
            .iter()
            .zip(&outputs)
            .map(|((name, d), (_, o))| edgec::verify::compare(name, d, o, Precision::Fp16).cosine)
            .fold(f64::INFINITY, f64::min)
    };

    // 1-bit LUTs ruin this model: unguarded, every weight is compressed and the outputs move.
    let unguarded = tmp.path().join("unguarded.mlpackage");
    let report = edgec::compile(
        &model,
        &unguarded,
        &options("palettize:1", DeploymentTarget::Ios16, &InputShapes::default()),
    )
    .unwrap();
    let requested = report.weights.iter().filter(|r| r.scheme != Scheme::Dense).count();
    assert!(requested >= 3 && report.compression_guard.is_none());
    let unguarded_cosine = worst_cosine(&unguarded);
    assert!(unguarded_cosine < 0.99, "{unguarded_cosine}");

    for min_cosine in [0.99, 0.9999] {
        let guarded = tmp.path().join(format!("guarded{min_cosine}.mlpackage"));
        let options = CompileOptions {
            compression_guard: Some(CompressionGuard {
                min_cosine,
                inputs: Some(common::repo_root().join("testdata/models/compressible.npz")),
                seed: 0,
            }),
            ..options("palettize:1", DeploymentTarget::Ios16, &InputShapes::default())
        };
        let report = edgec::compile(&model, &guarded, &options).unwrap();
        let guard = report.compression_guard.expect("weights were compressed");
        assert_eq!(guard.compressed_before, requested);
        assert!(!guard.left_dense.is_empty() && guard.reached(), "{guard:?}");
        // What the guard measured is what the package computes.
        let measured = guard
            .cosine_package
            .iter()
            .map(|(_, c)| *c)
            .fold(f64::INFINITY, f64::min);
        let actual = worst_cosine(&guarded);
        assert!(
            actual >= min_cosine && (actual - measured).abs() < 1e-9,
            "{actual} vs {measured}"
        );
        let requested_worst = guard
            .cosine_requested
            .iter()
            .map(|(_, c)| *c)
            .fold(f64::INFINITY, f64::min);
        assert!((requested_worst - unguarded_cosine).abs() < 1e-9);
        // Every weight left dense says so; the others stay compressed.
        for name in &guard.left_dense {
            let row = report.weights.iter().find(|r| &r.name == name).unwrap();
            assert_eq!(row.scheme, Scheme::Dense);
            assert!(row.note.contains("compression guard"), "{}", row.note);
        }
        let still = report.weights.iter().filter(|r| r.scheme != Scheme::Dense).count();
        assert_eq!(still + guard.left_dense.len(), requested);
    }

    // A bar the compressed program already meets: nothing changes.
    let options = CompileOptions {
        compression_guard: Some(CompressionGuard {
            min_cosine: 0.0,
            ..Default::default()
        }),
        ..options("palettize:1", DeploymentTarget::Ios16, &InputShapes::default())
    };
    let report = edgec::compile(&model, &tmp.path().join("bar0.mlpackage"), &options).unwrap();
    let guard = report.compression_guard.unwrap();
    assert!(guard.left_dense.is_empty() && guard.runs == 2, "{guard:?}");
    assert_eq!(
        report.weights.iter().filter(|r| r.scheme != Scheme::Dense).count(),
        requested
    );
}

/// A QDQ model's weights keep the model's own int8/uint8 codes, scales and zero points (per
/// channel, per tensor with a zero point, block-wise; one of them transposed by `fuse_linear`):
/// coremltools decodes exactly the values ONNX's DequantizeLinear gives, the package computes
/// what the model does, and a target that cannot hold a layout stores that weight dense and
/// says why.
#[test]
fn model_quantized_weights_keep_their_codes() {
    use DeploymentTarget::{Ios15, Ios16, Ios17, Ios18};
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/qdq_weights.onnx");
    let reference = edgec::npy::read_npz(&model.with_extension("npz")).unwrap();
    let x = reference.iter().find(|(k, _)| k == "input:x").unwrap().1.clone();
    let expected = reference
        .iter()
        .find(|(k, _)| k == "output:out")
        .unwrap()
        .1
        .data
        .to_f64_vec();
    let mut cases = Vec::new();
    // (target, fp32?) → weight.bin bytes.
    let mut weight_bytes = std::collections::BTreeMap::new();
    for target in [Ios15, Ios16, Ios17, Ios18] {
        for precision in [Precision::Fp16, Precision::Fp32] {
            let pkg = tmp.path().join(format!("qdq.{target}.{precision:?}.mlpackage"));
            let options = CompileOptions {
                precision,
                deployment_target: target,
                compression_guard: None,
                verify_each_pass: true,
                ..Default::default()
            };
            let report = edgec::compile(&model, &pkg, &options).unwrap();
            // Its input is fake-quantized: an fp16 program says it rounds codes in fp16.
            let warned = report
                .warnings
                .iter()
                .any(|w| w.contains("quantizes activations at run time"));
            assert_eq!(warned, precision == Precision::Fp16, "{:?}", report.warnings);
            let scheme = |name: &str| {
                let row = report.weights.iter().find(|r| r.name == name).unwrap();
                (row.scheme, row.note.clone())
            };
            let int8 = Scheme::FromModel { unsigned: false };
            let uint8 = Scheme::FromModel { unsigned: true };
            let stored = target >= Ios16;
            assert_eq!(scheme("conv.weight_quantized").0 == int8, stored, "{target}");
            assert_eq!(scheme("fc1.weight_quantized").0 == uint8, stored, "{target}");
            let (blocked, note) = scheme("fc2.weight_quantized");
            assert_eq!(blocked == int8, target >= Ios18, "{target}: {note}");
            if (Ios16..Ios18).contains(&target) {
                assert!(note.contains("block-wise quantization needs iOS 18"), "{note}");
            }
            let inputs = vec![("x".to_string(), x.clone())];
            let options = InterpOptions {
                fp16_rounding: precision == Precision::Fp16,
            };
            let out = run_package(&pkg, &inputs, &options).unwrap()[0].1.data.to_f64_vec();
            let worst = out
                .iter()
                .zip(&expected)
                .map(|(o, e)| (o - e).abs())
                .fold(0.0, f64::max);
            let limit = if precision == Precision::Fp32 { 1e-5 } else { 2e-2 };
            assert!(worst <= limit, "{target} {precision:?}: max abs error {worst}");
            let bin = pkg.join("Data/com.apple.CoreML/weights/weight.bin");
            weight_bytes.insert(
                (target, precision == Precision::Fp32),
                std::fs::metadata(bin).unwrap().len(),
            );
            if stored {
                cases.push((
                    pkg,
                    CompileOptions {
                        precision,
                        deployment_target: target,
                        ..Default::default()
                    },
                ));
            }
        }
    }
    for fp32 in [false, true] {
        assert!(
            weight_bytes[&(Ios18, fp32)] < weight_bytes[&(Ios16, fp32)],
            "{weight_bytes:?}"
        );
        assert!(
            weight_bytes[&(Ios16, fp32)] < weight_bytes[&(Ios15, fp32)],
            "{weight_bytes:?}"
        );
    }
    let out = Command::new(common::python())
        .arg(common::repo_root().join("scripts/decode_constexpr.py"))
        .args(cases.iter().map(|c| &c.0))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (pkg, options) in &cases {
        let decoded: HashMap<String, NdArray> = edgec::npy::read_npz(&pkg.with_extension("npz"))
            .unwrap()
            .into_iter()
            .collect();
        let intended = intended_weights(&model, options, pkg);
        assert_eq!(decoded.len(), intended.len(), "{}", pkg.display());
        for (name, want) in &intended {
            let got = decoded[name].data.to_f64_vec();
            let same = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| *g as f32 == *w);
            assert!(same, "{}: {name} decodes differently", pkg.display());
        }
    }
}

/// onnxruntime's dynamic quantization (`quantize_dynamic`): each DynamicQuantizeLinear →
/// ConvInteger/MatMulInteger → Cast → Mul chain computes in float at its usual magnitudes, and
/// every weight keeps the model's int8 codes and scale.
#[test]
fn dynamically_quantized_weights_keep_their_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/dynamic_quant.onnx");
    for precision in [Precision::Fp16, Precision::Fp32] {
        let pkg = tmp.path().join(format!("dynamic.{precision:?}.mlpackage"));
        let options = CompileOptions {
            precision,
            compression_guard: None,
            verify_each_pass: true,
            ..Default::default()
        };
        let report = edgec::compile(&model, &pkg, &options).unwrap();
        let kept: Vec<&str> = report
            .weights
            .iter()
            .filter(|r| r.scheme == Scheme::FromModel { unsigned: false })
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(kept.len(), 3, "{precision:?}: {:?}", report.weights);
    }
}

/// Weights inside the bodies of run-time control flow are compressed like any other (each body
/// compiles as a graph), listed in the weight report, and stored as constexpr ops inside the
/// MIL blocks; the compression guard cannot measure them, and a warning names them.
#[test]
fn weights_inside_control_flow_bodies_are_compressed_and_named_as_unguarded() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/if_runtime.onnx");
    let (inputs, expected) = common::reference(&model);
    let pkg = tmp.path().join("if_runtime.int8.mlpackage");
    let options = CompileOptions {
        weights: vec![edgec::compression::parse_rule("int8").unwrap()],
        weights_min_elements: 0,
        ..Default::default()
    };
    let report = edgec::compile(&model, &pkg, &options).unwrap_or_else(|e| panic!("{e}"));
    let compressed: Vec<&str> = report
        .weights
        .iter()
        .filter(|r| r.scheme != Scheme::Dense)
        .map(|r| r.name.as_str())
        .collect();
    // `wm` is read by the MatMul of both then branches: each compiles its own copy.
    assert_eq!(compressed, ["wm", "wm"], "{:?}", report.weights);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("inside If/Loop bodies are not checked by the compression guard: wm, wm")),
        "{:?}",
        report.warnings
    );
    let mil = common::mil_text(&pkg);
    let nested = mil
        .lines()
        .filter(|l| l.starts_with("      ") && l.contains("constexpr_affine_dequantize"))
        .count();
    assert_eq!(nested, 2, "{mil}");
    let actual = run_package(&pkg, &inputs, &InterpOptions { fp16_rounding: true }).unwrap();
    for ((out, r), (_, a)) in expected.iter().zip(&actual) {
        let c = edgec::verify::compare(out, r, a, Precision::Fp16);
        assert!(c.cosine >= 0.999, "{out}: cosine {}", c.cosine);
    }
    common::validate_with_coremltools(&[pkg]);
}
