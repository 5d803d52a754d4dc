//! Acceptance: every package edgec emits for the test models, in fp16 and fp32 and for every
//! deployment target, must pass Apple's coremltools reader (`load_spec` plus the milproto loader,
//! which rebuilds the program with full type inference) and agree with its own description.
//! Runs `scripts/validate_package.py` with the pinned Python environment.

mod common;

use edgec::coreml::DeploymentTarget;
use edgec::onnx::InputShapes;
use edgec::{CompileOptions, Precision};

#[test]
fn coremltools_accepts_every_package() {
    let tmp = tempfile::tempdir().unwrap();
    let mut packages = Vec::new();
    for (name, path, shapes) in common::test_models() {
        for target in DeploymentTarget::ALL {
            for precision in [Precision::Fp16, Precision::Fp32] {
                let pkg = tmp.path().join(format!("{name}.{target}.{precision:?}.mlpackage"));
                let options = CompileOptions {
                    deployment_target: target,
                    precision,
                    input_shapes: InputShapes(shapes.clone()),
                    verify_each_pass: true,
                    ..Default::default()
                };
                edgec::compile(&path, &pkg, &options).unwrap_or_else(|e| panic!("{name} {target} {precision:?}: {e}"));
                packages.push(pkg);
            }
        }
    }
    common::validate_with_coremltools(&packages);
}
