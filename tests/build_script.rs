//! `edgec::Build` as a crate uses it: examples/build-script builds and runs; a changed model
//! reruns its build script and gives a fresh package; a broken model fails the build with the
//! error's message.
//!
//! Every cargo run here shares one target folder and its settings with scripts/test.sh
//! (`target/build-script-example`), so edgec is compiled for build scripts once; copies of the
//! example in temporary folders rebuild only the example itself.

mod common;

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example() -> PathBuf {
    common::repo_root().join("examples/build-script")
}

/// `cargo ARGS` in `dir`, in the shared target folder with the settings scripts/test.sh builds
/// the example with (build-override opt-level 0: what is tested does not depend on it), offline
/// (every crate the example needs is one the workspace has already fetched).
fn cargo(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(args)
        .args(["--locked", "--offline", "--color", "never"])
        .current_dir(dir)
        .env(
            "CARGO_TARGET_DIR",
            common::repo_root().join("target/build-script-example"),
        )
        .env("CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL", "0")
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .output()
        .expect("cargo runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The example's files in a temporary folder, its edgec dependency pointing at this repository,
/// as the package `edgec-build-script-example-TAG`: Cargo gives a local package the same build
/// folder (and `OUT_DIR`) wherever it lies, so copies built side by side need their own names.
fn copy_of_example(tag: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for file in ["build.rs", "src/main.rs", "models/tiny_cnn.onnx"] {
        let to = tmp.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(example().join(file), &to).unwrap();
    }
    let name = r#"name = "edgec-build-script-example""#;
    let renamed = format!(r#"name = "edgec-build-script-example-{tag}""#);
    let lockfile = std::fs::read_to_string(example().join("Cargo.lock")).unwrap();
    std::fs::write(tmp.path().join("Cargo.lock"), lockfile.replace(name, &renamed)).unwrap();
    let manifest = std::fs::read_to_string(example().join("Cargo.toml")).unwrap();
    let root = common::repo_root().display().to_string();
    let manifest = manifest
        .replace(r#"path = "../..""#, &format!("path = {root:?}"))
        .replace(name, &renamed);
    assert!(
        manifest.contains(&root) && manifest.contains(&renamed),
        "the example's manifest no longer has `{name}` and `path = \"../..\"`"
    );
    std::fs::write(tmp.path().join("Cargo.toml"), manifest).unwrap();
    tmp
}

/// `cargo run` of the example in `dir`: the package it printed (its first word) and cargo's
/// stderr.
fn run_example(dir: &Path) -> (PathBuf, String) {
    let out = cargo(dir, &["run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let package = stdout
        .split_whitespace()
        .next()
        .expect("the example prints the package");
    (PathBuf::from(package), stderr)
}

/// SHA-256 over the package's program and weights.
fn package_hash(package: &Path) -> String {
    let mut hash = Sha256::new();
    for file in [
        "Data/com.apple.CoreML/model.mlmodel",
        "Data/com.apple.CoreML/weights/weight.bin",
    ] {
        hash.update(std::fs::read(package.join(file)).unwrap());
    }
    format!("{:x}", hash.finalize())
}

fn sha256_of(file: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(file).unwrap()))
}

/// Whether the package records `model` as its source (`com.edgec.source_sha256`).
fn compiled_from(package: &Path, model: &Path) -> bool {
    let program = std::fs::read(package.join("Data/com.apple.CoreML/model.mlmodel")).unwrap();
    let hash = sha256_of(model);
    program.windows(hash.len()).any(|w| w == hash.as_bytes())
}

#[test]
fn the_example_builds_and_runs_and_says_what_edgec_warned() {
    let out = cargo(&example(), &["run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let package = PathBuf::from(stdout.split_whitespace().next().unwrap());
    assert!(
        package.is_absolute() && package.ends_with("out/tiny_cnn.mlpackage"),
        "{stdout}"
    );
    assert!(package.join("Manifest.json").is_file());
    for file in ["Manifest.json", "model.mlmodel", "weight.bin", "plan.json"] {
        assert!(
            stdout.lines().any(|l| l.ends_with(file)),
            "{file} is not listed:\n{stdout}"
        );
    }
    assert!(compiled_from(&package, &example().join("models/tiny_cnn.onnx")));

    // What edgec finds with the example's settings is what cargo shows, as warnings. Cargo
    // replays a build script's warnings only when it runs it, so build a copy from scratch.
    let mut build = edgec::Build::new(example().join("models/tiny_cnn.onnx"));
    let scratch = tempfile::tempdir().unwrap();
    build.out_dir(scratch.path()).cargo_metadata(false);
    let expected = build.try_compile().unwrap().warnings;
    let copy = copy_of_example("warnings");
    let (_, stderr) = run_example(copy.path());
    let absolute = example().join("models/tiny_cnn.onnx").display().to_string();
    for warning in &expected {
        // The copy's build script names the model as build.rs does.
        let warning = warning.replace(&absolute, "models/tiny_cnn.onnx");
        let line = format!("edgec: tiny_cnn.onnx: {}", warning.lines().next().unwrap());
        assert!(stderr.contains(&line), "{line:?} is not in cargo's output:\n{stderr}");
    }
}

#[test]
fn a_changed_model_reruns_the_build_script_and_replaces_the_package() {
    let copy = copy_of_example("rebuild");
    let model = copy.path().join("models/tiny_cnn.onnx");
    let (package, _) = run_example(copy.path());
    let first = package_hash(&package);
    let written = std::fs::metadata(package.join("Manifest.json"))
        .unwrap()
        .modified()
        .unwrap();

    // Only the crate's code changed: the build script does not run again (without
    // rerun-if-changed lines, Cargo would rerun it on any change in the crate).
    let main = copy.path().join("src/main.rs");
    let code = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{code}\n// an edit\n")).unwrap();
    let (again, _) = run_example(copy.path());
    assert_eq!(again, package);
    let unchanged = std::fs::metadata(package.join("Manifest.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        unchanged, written,
        "the package was rewritten though the model did not change"
    );

    // Another model under the same name: a new package, compiled from it.
    let other = common::repo_root().join("testdata/models/conv_no_bias.onnx");
    std::fs::copy(&other, &model).unwrap();
    let (rebuilt, _) = run_example(copy.path());
    assert_eq!(rebuilt, package);
    assert_ne!(
        package_hash(&package),
        first,
        "the package did not change with the model"
    );
    assert!(compiled_from(&package, &other));
}

#[test]
fn a_broken_model_fails_the_build_with_the_errors_message() {
    let copy = copy_of_example("broken");
    let broken = common::repo_root().join("testdata/bad/unknown_op.onnx");
    std::fs::copy(&broken, copy.path().join("models/tiny_cnn.onnx")).unwrap();
    let out = cargo(copy.path(), &["build"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let message = "edgec: models/tiny_cnn.onnx: 2 unsupported ONNX op(s): FancyOp (node \"fancy_1\"), \
                   NonMaxSuppression (node \"nms\")";
    assert!(
        stderr.contains(message),
        "{message:?} is not in cargo's output:\n{stderr}"
    );
    assert!(!stderr.contains("Unsupported {"), "{stderr}");
}

/// The example has its own lockfile (it is its own workspace); each crate in it must have the
/// workspace's version, or the example would build a second copy and drift from what is tested.
#[test]
fn the_examples_lockfile_agrees_with_the_workspace() {
    fn packages(lockfile: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(lockfile).unwrap();
        let value = |line: &str, key: &str| {
            line.strip_prefix(key)
                .map(|rest| rest.trim_start_matches(" = ").trim_matches('"').to_string())
        };
        let lines: Vec<&str> = text.lines().collect();
        lines
            .windows(2)
            .filter_map(|pair| Some((value(pair[0], "name")?, value(pair[1], "version")?)))
            .collect()
    }
    let workspace = packages(&common::repo_root().join("Cargo.lock"));
    let example = packages(&example().join("Cargo.lock"));
    assert!(example.iter().any(|(name, _)| name == "edgec"));
    for package in example.iter().filter(|(name, _)| name != "edgec-build-script-example") {
        assert!(
            workspace.contains(package),
            "{} {} is in examples/build-script/Cargo.lock but not in Cargo.lock: copy Cargo.lock there and run `cargo update --workspace --offline` in it",
            package.0,
            package.1
        );
    }
}
