//! The command line as a user meets it: help, version, compile with -v and -q, inspect,
//! analyze, the one op-count vocabulary, errors about paths, verify's warnings.

mod common;

use common::edgec;

#[test]
fn help_lists_commands_and_options() {
    let (code, stdout, _) = edgec(&["--help"]);
    assert_eq!(code, 0);
    for word in ["compile", "inspect", "analyze", "plan", "run", "verify"] {
        assert!(stdout.contains(word), "--help lacks {word}: {stdout}");
    }
    let (code, stdout, _) = edgec(&["compile", "--help"]);
    assert_eq!(code, 0);
    for word in [
        "--verbose",
        "--quiet",
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
    let (code, _, stderr) = edgec(&["compile", "-v", model.to_str().unwrap(), "-o", pkg.to_str().unwrap()]);
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
    let (code, stdout, stderr) = edgec(&["inspect", pkg.to_str().unwrap(), "--names", "--mil"]);
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

#[test]
fn gelu_choice_is_reported_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/fusion_gelu.onnx");
    for (flags, choice, fast_line) in [
        (vec![], "fast", true),
        (vec!["--gelu", "exact"], "exact", false),
        (vec!["--precision", "fp32"], "exact", false),
        (vec!["--precision", "fp32", "--gelu", "fast"], "fast", true),
    ] {
        let pkg = dir.path().join("g.mlpackage");
        let mut args = vec!["compile", "-v", model.to_str().unwrap(), "-o", pkg.to_str().unwrap()];
        args.extend(&flags);
        let (code, _, stderr) = edgec(&args);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("rewrite: gelu (exact) from primitives: 2"),
            "{flags:?}: {stderr}"
        );
        assert_eq!(
            stderr.contains("rewrite: gelu exact -> tanh approximation (--gelu fast): 2"),
            fast_line,
            "{flags:?}: {stderr}"
        );
        let (code, stdout, stderr) = edgec(&["inspect", pkg.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains(&format!("com.edgec.gelu: {choice}")),
            "{flags:?}: {stdout}"
        );
    }
    let (code, _, stderr) = edgec(&["compile", model.to_str().unwrap(), "--gelu", "approximate"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("error"), "{stderr}");
}

/// `run -o` writes by extension, in any case: .npz an archive, .npy one array (a model with more
/// outputs is an error, and nothing is created), anything else a folder of NAME.npy.
#[test]
fn run_output_format_follows_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let run = |model: &str, out: &std::path::Path| {
        let root = common::repo_root().join("testdata/models");
        let pkg = dir.path().join(format!("{model}.mlpackage"));
        if !pkg.exists() {
            let (code, _, stderr) = edgec(&[
                "compile",
                root.join(format!("{model}.onnx")).to_str().unwrap(),
                "-o",
                pkg.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{stderr}");
        }
        let inputs = root.join(format!("{model}.npz"));
        edgec(&[
            "run",
            pkg.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let archive = dir.path().join("OUT.NPZ");
    let (code, _, stderr) = run("tiny_cnn", &archive);
    assert_eq!(code, 0, "{stderr}");
    assert!(archive.is_file() && edgec::npy::read_npz(&archive).unwrap().len() == 2);

    let single = dir.path().join("out.Npy");
    let (code, _, stderr) = run("compressible", &single);
    assert_eq!(code, 0, "{stderr}");
    assert!(single.is_file(), "a .npy file, not a folder");
    assert!(edgec::npy::read_npy(&single).is_ok());

    let two = dir.path().join("two.npy");
    let (code, _, stderr) = run("tiny_cnn", &two);
    assert_ne!(code, 0);
    assert!(stderr.contains("holds one array") && !two.exists(), "{stderr}");

    let folder = dir.path().join("outputs");
    let (code, _, stderr) = run("tiny_cnn", &folder);
    assert_eq!(code, 0, "{stderr}");
    assert!(folder.join("logits.npy").is_file() && folder.join("probs.npy").is_file());
}

fn tiny_cnn() -> std::path::PathBuf {
    common::repo_root().join("testdata/models/tiny_cnn.onnx")
}

/// `-v` exists only where it prints more; `-q` leaves nothing but errors.
#[test]
fn verbose_and_quiet_only_where_they_do_something() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_cnn();
    let pkg = dir.path().join("m.mlpackage");
    let (model, pkg_arg) = (model.to_str().unwrap(), pkg.to_str().unwrap());
    for args in [
        vec!["analyze", "-v", model],
        vec!["inspect", "-v", pkg_arg],
        vec!["plan", "-v", model],
        vec!["-v", "compile", model],
    ] {
        let (code, _, stderr) = edgec(&args);
        assert_eq!(code, 2, "{args:?} should be a usage error: {stderr}");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
    let (code, stdout, stderr) = edgec(&["compile", "-q", model, "-o", pkg_arg]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty() && stderr.is_empty(), "-q printed: {stdout}{stderr}");
    assert!(pkg.join("Manifest.json").is_file());
    let (code, _, stderr) = edgec(&["compile", "-q", "-v", model, "-o", pkg_arg]);
    assert_eq!(code, 2, "-q and -v together: {stderr}");
    let bad = common::repo_root().join("testdata/bad/unknown_op.onnx");
    let (code, _, stderr) = edgec(&["compile", "-q", bad.to_str().unwrap(), "-o", pkg_arg]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: ") && stderr.lines().count() == 1, "{stderr}");
    // Output that is not a terminal never gets a spinner's control characters.
    let (_, _, stderr) = edgec(&["compile", model, "-o", pkg_arg]);
    assert!(!stderr.contains('\x1b') && !stderr.contains('\r'), "{stderr:?}");
}

/// analyze, compile and inspect count ops the same way, in the same words.
#[test]
fn op_counts_read_the_same_in_analyze_compile_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("m.mlpackage");
    let model = tiny_cnn();
    let counts = |text: &str| -> String {
        let at = text
            .find(" ONNX nodes → ")
            .unwrap_or_else(|| panic!("no op counts in {text}"));
        let start = text[..at].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
        let end = at + text[at..].find(" constants)").unwrap() + " constants)".len();
        text[start..end].to_string()
    };
    let (code, analyzed, stderr) = edgec(&["analyze", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, compiled) = edgec(&["compile", model.to_str().unwrap(), "-o", pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{compiled}");
    let (code, inspected, stderr) = edgec(&["inspect", pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let expected = counts(&compiled);
    assert_eq!(counts(&analyzed), expected);
    assert_eq!(counts(&inspected), expected);
    // The counts are the package's: one `const` per constant, the rest ops.
    let pkg = edgec::coreml::inspect::read_package(&pkg).unwrap();
    let mil = edgec::coreml::inspect::summary(&pkg, false, true);
    let constants = mil.lines().filter(|l| l.contains(" = const(")).count();
    let ops = mil
        .lines()
        .filter(|l| l.starts_with("  %") && !l.contains(" = const("))
        .count();
    assert!(constants > 0 && ops > 0, "{mil}");
    assert!(
        expected.ends_with(&format!("→ {ops} MIL ops (+{constants} constants)")),
        "{expected}\n{mil}"
    );
    // Sizes are for people.
    assert!(
        compiled.contains(" kB of weights") || compiled.contains(" MB of weights"),
        "{compiled}"
    );
    // The program is printed only when asked for.
    assert!(!inspected.contains("func main<"), "{inspected}");
}

#[test]
fn analyze_exits_non_zero_when_its_trial_compile_fails() {
    let bad = common::repo_root().join("testdata/bad/unknown_op.onnx");
    let (code, stdout, stderr) = edgec(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("trial compile: failed"), "{stdout}");
    assert!(stderr.contains("trial compile failed"), "{stderr}");
}

/// OS errors say what is wrong with which path, not "No such device (os error 19)".
#[test]
fn path_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_cnn();
    let model = model.to_str().unwrap();
    let (code, _, stderr) = edgec(&["compile", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is a folder, not a file") && !stderr.contains("os error"),
        "{stderr}"
    );

    let file = dir.path().join("plain.txt");
    std::fs::write(&file, "x").unwrap();
    let below_file = file.join("sub/m.mlpackage");
    let (code, _, stderr) = edgec(&["compile", model, "-o", below_file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("plain.txt is a file, not a folder") && !stderr.contains("os error"),
        "{stderr}"
    );

    let unnamed = dir.path().join(".mlpackage");
    let (code, _, stderr) = edgec(&["compile", model, "-o", unnamed.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("needs a name before .mlpackage"), "{stderr}");

    let missing = dir.path().join("nowhere/model.onnx");
    let (code, _, stderr) = edgec(&["compile", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not found (its folder") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

/// verify given a package cannot apply compile settings: it says so, and it says when the
/// package was compiled from another file.
#[test]
fn verify_warns_about_settings_and_sources_that_do_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let root = common::repo_root().join("testdata/models");
    let pkg = dir.path().join("m.mlpackage");
    let model = root.join("tiny_cnn.onnx");
    let (code, _, stderr) = edgec(&["compile", model.to_str().unwrap(), "-o", pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let verify = |model: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["verify", model.to_str().unwrap(), pkg.to_str().unwrap()];
        args.extend(extra);
        edgec(&args)
    };
    let (code, _, stderr) = verify(&model, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let (_, _, stderr) = verify(
        &model,
        &[
            "--precision",
            "fp32",
            "--deployment-target",
            "ios16",
            "--weights",
            "int8",
        ],
    );
    assert!(
        stderr.contains("--precision fp32 is ignored") && stderr.contains("compiled with fp16"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("--deployment-target ios16 is ignored"),
        "it matches: {stderr}"
    );
    assert!(stderr.contains("--weights is ignored"), "{stderr}");
    // Another model with the same interface: the hash differs.
    let other = dir.path().join("copy.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.extend_from_slice(&[0x12, 0x00]); // an empty field 2 (producer_name): same model, other bytes
    std::fs::write(&other, bytes).unwrap();
    let (_, _, stderr) = verify(&other, &[]);
    assert!(stderr.contains("was compiled from another file"), "{stderr}");
    let (code, stdout, stderr) = verify(&model, &["-q"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty() && stderr.is_empty(), "{stdout}{stderr}");
}

/// Output piped into a reader that has stopped (`edgec inspect --mil | head`) ends edgec
/// quietly, as other Unix tools end, never with a panic.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let pkg = tmp.path().join("tiny.mlpackage");
    let (code, _, stderr) = edgec(&["compile", model.to_str().unwrap(), "-o", pkg.to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgec"))
        .args(["inspect", "--mil", pkg.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before edgec writes a byte.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}
