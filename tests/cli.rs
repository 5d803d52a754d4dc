//! The command line as a user meets it: help, version, compile with -v, inspect.

mod common;

use common::edgec;

#[test]
fn help_lists_commands_and_options() {
    let (code, stdout, _) = edgec(&["--help"]);
    assert_eq!(code, 0);
    for word in ["compile", "inspect", "--verbose"] {
        assert!(stdout.contains(word), "--help lacks {word}: {stdout}");
    }
    let (code, stdout, _) = edgec(&["compile", "--help"]);
    assert_eq!(code, 0);
    for word in [
        "--target",
        "--deployment-target",
        "--precision",
        "--input-shape",
        "--output",
        "ios16",
        "fp16",
    ] {
        assert!(stdout.contains(word), "compile --help lacks {word}: {stdout}");
    }
}

#[test]
fn version_is_the_crate_version() {
    let (code, stdout, _) = edgec(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), format!("edgec {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_option_values_are_rejected() {
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let model = model.to_str().unwrap();
    for args in [
        vec!["compile", model, "--deployment-target", "ios12"],
        vec!["compile", model, "--precision", "int3"],
        vec!["compile", model, "--input-shape", "input=1xfoo"],
        vec!["compile", model, "--target", "cuda"],
    ] {
        let (code, _, stderr) = edgec(&args);
        assert_ne!(code, 0, "{args:?} should fail");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn compile_verbose_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("weird.mlpackage");
    let model = common::repo_root().join("testdata/models/weird_names.onnx");
    let (code, _, stderr) = edgec(&["-v", "compile", model.to_str().unwrap(), "-o", pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // The defaults: fp16 precision, iOS16 (fp16 I/O allowed).
    let defaults = edgec_passes::PassOptions {
        precision: edgec::Precision::Fp16,
        fp16_io: true,
        ..Default::default()
    };
    for pass in edgec_passes::pass::PIPELINE.iter().filter(|p| p.enabled(&defaults)) {
        assert!(
            stderr.contains(pass.name()),
            "-v does not show pass {}: {stderr}",
            pass.name()
        );
    }
    let (code, stdout, stderr) = edgec(&["inspect", pkg.to_str().unwrap(), "--names"]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "specificationVersion: 7",
        "author: edgec",
        "com.edgec.source: weird_names.onnx",
        "func main<CoreML6>",
    ] {
        assert!(stdout.contains(expected), "inspect lacks {expected:?}:\n{stdout}");
    }
    // The name map shows how ONNX names became MIL identifiers.
    assert!(stdout.contains("\"input.1\" -> input_1"), "{stdout}");
}

#[test]
fn inspect_rejects_a_folder_that_is_not_a_package() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = edgec(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("Manifest.json"), "{stderr}");
}
