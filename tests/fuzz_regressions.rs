//! The inputs the fuzzers (fuzz/, docs/reliability.md) found crashing, hanging or blowing up
//! memory, replayed on the stable toolchain. Each went through the same calls as its fuzz target
//! and must now end in an answer: a clean error, or a package the interpreter runs.
//!
//! - `testdata/bad/fuzz/*.onnx` (load_bytes and graph_gen): compiled under a few option sets;
//!   when one compiles, its package is run on generated inputs, which must succeed.
//! - `testdata/bad/fuzz/*.mlpackage` (package_reader): read and summarised, given generated
//!   inputs, and run; every step may fail, cleanly.
//!
//! A test binary built by `cargo test` has overflow checks on, as the fuzz build does.

mod common;

use edgec::{CompileOptions, DeploymentTarget, Precision};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the fuzzers allowed one input: anything slower is a hang (they ran optimised builds, so
/// this bound is generous for the test profile).
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn inputs(extension: &str) -> Vec<PathBuf> {
    let dir = common::repo_root().join("testdata/bad/fuzz");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort();
    found
}

fn option_sets() -> Vec<(&'static str, CompileOptions)> {
    let int8 = edgec::compression::parse_rule("int8").unwrap();
    vec![
        ("fp16 ios16", CompileOptions::default()),
        (
            "fp32 ios15",
            CompileOptions {
                precision: Precision::Fp32,
                deployment_target: DeploymentTarget::Ios15,
                ..CompileOptions::default()
            },
        ),
        (
            "fp16 ios18 int8",
            CompileOptions {
                deployment_target: DeploymentTarget::Ios18,
                weights: vec![int8],
                weights_min_elements: 4,
                compression_guard: None,
                verify_each_pass: true,
                ..CompileOptions::default()
            },
        ),
    ]
}

fn run_package(package: &Path) -> edgec::Result<()> {
    let inputs = edgec::verify::deterministic_inputs(package, 0)?;
    edgec::interp::run_package(package, &inputs, &Default::default()).map(|_| ())
}

#[test]
fn models_found_by_fuzzing_compile_or_fail_cleanly() {
    let models = inputs("onnx");
    assert!(!models.is_empty(), "no regression models in testdata/bad/fuzz");
    for model in models {
        for (label, options) in option_sets() {
            let dir = tempfile::tempdir().unwrap();
            let package = dir.path().join("out.mlpackage");
            let start = Instant::now();
            let result = edgec::compile(&model, &package, &options);
            assert!(
                start.elapsed() < TIME_LIMIT,
                "{}: {label}: compile took {:?}",
                model.display(),
                start.elapsed()
            );
            match result {
                Err(e @ edgec::Error::Verify { .. }) => panic!("{}: {label}: internal error: {e}", model.display()),
                Err(e) => assert!(
                    e.to_string().contains(&*model.file_name().unwrap().to_string_lossy()),
                    "{e}"
                ),
                Ok(_) => {
                    if let Err(e) = run_package(&package) {
                        panic!("{}: {label}: the package does not run: {e}", model.display());
                    }
                }
            }
        }
    }
}

#[test]
fn packages_found_by_fuzzing_are_read_or_refused_cleanly() {
    for package in inputs("mlpackage") {
        let start = Instant::now();
        if let Ok(read) = edgec::coreml::inspect::read_package(&package) {
            let _ = edgec::coreml::inspect::summary(&read, true, true);
        }
        let _ = run_package(&package);
        assert!(
            start.elapsed() < TIME_LIMIT,
            "{}: took {:?}",
            package.display(),
            start.elapsed()
        );
    }
}
