//! fp16 you can trust: one small model per failure kind (constant overflow, constant underflow,
//! activation underflow into `log`, cancellation in a written-out normalisation). The static
//! range guard fixes the first two in the default fp16 package; `--precision auto` fixes the
//! other two; `edgec verify` names where fp16 departs; coremltools accepts the mixed packages.

mod common;

use common::edgec;
use edgec::coreml::inspect::read_package;
use edgec::interp::{run_package, InterpOptions};
use edgec::{CompileOptions, Precision};
use edgec_passes::precision::PrecisionAction;
use std::path::{Path, PathBuf};

fn model(name: &str) -> PathBuf {
    common::repo_root().join(format!("testdata/models/{name}.onnx"))
}

/// Cosine of every output of `package` (run with fp16 rounding) against onnxruntime.
fn cosines(model: &Path, package: &Path) -> Vec<(String, f64)> {
    let (inputs, expected) = common::reference(model);
    let actual = run_package(package, &inputs, &InterpOptions { fp16_rounding: true }).unwrap();
    expected
        .iter()
        .zip(&actual)
        .map(|((name, r), (_, a))| (name.clone(), edgec::verify::compare(name, r, a, Precision::Fp16).cosine))
        .collect()
}

fn fp32_ops_metadata(package: &Path) -> Vec<(String, String)> {
    let pkg = read_package(package).unwrap();
    let json = pkg.model.description.unwrap().metadata.unwrap().user_defined["com.edgec.fp32_ops"].clone();
    let list: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    list.iter()
        .map(|o| {
            (
                o["op"].as_str().unwrap().to_string(),
                o["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn compile(name: &str, dir: &Path, auto: bool) -> (PathBuf, edgec::CompileReport) {
    let path = model(name);
    let pkg = dir.join(format!("{name}.{}.mlpackage", if auto { "auto" } else { "fp16" }));
    let options = CompileOptions {
        auto_precision: auto.then(|| common::calibrated(&path)),
        verify_each_pass: true,
        ..Default::default()
    };
    let report = edgec::compile(&path, &pkg, &options).unwrap();
    (pkg, report)
}

/// What the range guard did, by ONNX node.
fn guard_actions(report: &edgec::CompileReport) -> Vec<(&str, PrecisionAction)> {
    report
        .precision_log
        .iter()
        .map(|d| (d.origin.as_str(), d.action))
        .collect()
}

#[test]
fn static_guard_fixes_constants_fp16_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();

    let (pkg, report) = compile("fp16_const_overflow", tmp.path(), false);
    let actions = guard_actions(&report);
    assert!(
        actions.contains(&("BatchNormalization_0", PrecisionAction::FoldedBatchNorm)),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("Mul_4", PrecisionAction::SaturatedSentinel)),
        "{actions:?}"
    );
    assert!(actions.contains(&("Div_1", PrecisionAction::KeptFp32)), "{actions:?}");
    // The folded BatchNorm stays in fp16: only the divide by 3e5 runs in fp32.
    let fp32 = fp32_ops_metadata(&pkg);
    assert_eq!(fp32.len(), 1, "{fp32:?}");
    assert_eq!(fp32[0].0, "div_out");
    assert!(fp32[0].1.contains("constant overflow"), "{fp32:?}");
    let packages = vec![pkg.clone()];
    for (name, cosine) in cosines(&model("fp16_const_overflow"), &pkg) {
        assert!(cosine >= 0.9999, "{name}: cosine {cosine}");
    }

    let (pkg, report) = compile("fp16_const_underflow", tmp.path(), false);
    let actions = guard_actions(&report);
    assert!(
        actions.contains(&("Add_3", PrecisionAction::RaisedToFp16Minimum)),
        "{actions:?}"
    );
    let mut fp32: Vec<String> = fp32_ops_metadata(&pkg).into_iter().map(|(op, _)| op).collect();
    fp32.sort();
    assert_eq!(fp32, ["x_back", "x_tiny"]);
    for (name, cosine) in cosines(&model("fp16_const_underflow"), &pkg) {
        // The all-zero row normalises to 0, not 0/0.
        assert!(cosine >= 0.9999, "{name}: cosine {cosine}");
    }
    common::validate_with_coremltools(&[packages, vec![pkg]].concat());
}

#[test]
fn calibration_keeps_the_ops_fp16_breaks_in_fp32() {
    let tmp = tempfile::tempdir().unwrap();
    let mut packages = Vec::new();
    for (name, expected_ops) in [
        ("fp16_activation_underflow", vec!["log_power", "power"]),
        // The written-out normalisation is one `layer_norm` by now (`fuse_layer_norm`).
        ("fp16_cancellation", vec!["h", "normalized"]),
    ] {
        // The default fp16 package computes something else...
        let (plain, _) = compile(name, tmp.path(), false);
        let plain_cosines = cosines(&model(name), &plain);
        // NaN (an -inf output) counts as a mismatch.
        assert!(
            plain_cosines.iter().any(|(_, c)| c.is_nan() || *c < 0.9999),
            "{name}: fp16 alone already matches ({plain_cosines:?})"
        );

        // ...and calibration keeps exactly the ops that break in fp32.
        let (pkg, report) = compile(name, tmp.path(), true);
        let calibration = report.calibration.as_ref().unwrap();
        assert!(calibration.reached, "{name}: {calibration:?}");
        let mut ops: Vec<String> = fp32_ops_metadata(&pkg).into_iter().map(|(op, _)| op).collect();
        ops.sort();
        assert_eq!(ops, expected_ops, "{name}");
        assert_eq!(calibration.calibrated_ops, expected_ops.len());
        assert!(
            calibration.cosine_package.iter().all(|(_, c)| *c >= 0.9999),
            "{calibration:?}"
        );
        for (output, cosine) in cosines(&model(name), &pkg) {
            assert!(cosine >= 0.9999, "{name} {output}: cosine {cosine} against onnxruntime");
        }
        packages.push(pkg);
    }
    common::validate_with_coremltools(&packages);
}

#[test]
fn verify_names_where_fp16_departs() {
    for (name, expected) in [
        (
            "fp16_activation_underflow",
            r#"MIL op "power" (mul) from ONNX node "Mul_0": underflow"#,
        ),
        (
            "fp16_cancellation",
            r#"MIL op "normalized" (layer_norm) from ONNX node "Div_8": cancellation"#,
        ),
    ] {
        let path = model(name);
        let npz = path.with_extension("npz");
        let (code, stdout, stderr) = edgec(&["verify", path.to_str().unwrap(), "--inputs", npz.to_str().unwrap()]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(stdout.contains(expected), "{name}: {stdout}");
        assert!(stdout.contains("--precision auto --calibration"), "{stdout}");
        // The fix it suggests works.
        let (code, stdout, stderr) = edgec(&[
            "verify",
            path.to_str().unwrap(),
            "--inputs",
            npz.to_str().unwrap(),
            "--precision",
            "auto",
            "--calibration",
            npz.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
    }
}

#[test]
fn auto_without_calibration_inputs_says_what_it_used() {
    let tmp = tempfile::tempdir().unwrap();
    let path = model("fp16_cancellation");
    let out = tmp.path().join("m.mlpackage");
    let (code, stdout, stderr) = edgec(&[
        "compile",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--precision",
        "auto",
        "--calibration-seed",
        "7",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("generated inputs (seed 7"), "{stderr}");
    assert!(stderr.contains("real inputs (--calibration) are better"), "{stderr}");
    assert!(stderr.contains("op(s) in fp32"), "{stderr}");
    // --calibration without auto is a usage error, not silently ignored.
    let npz = path.with_extension("npz");
    let (code, _, stderr) = edgec(&[
        "compile",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--calibration",
        npz.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--calibration needs --precision auto"), "{stderr}");
}
