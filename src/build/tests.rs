use super::*;

fn model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `model` compiled into a fresh folder, printing nothing.
fn build(model: &Path, configure: impl FnOnce(&mut Build)) -> (tempfile::TempDir, Result<BuildOutput>) {
    let dir = scratch();
    let mut build = Build::new(model);
    build.out_dir(dir.path()).cargo_metadata(false);
    configure(&mut build);
    let output = build.try_compile();
    (dir, output)
}

#[test]
fn env_var_names_are_upper_case_with_underscores() {
    assert_eq!(env_var_name("tiny_cnn"), "EDGEC_TINY_CNN_MLPACKAGE");
    assert_eq!(env_var_name("yolo-v8.n"), "EDGEC_YOLO_V8_N_MLPACKAGE");
    assert_eq!(env_var_name("détecteur"), "EDGEC_D_TECTEUR_MLPACKAGE");
}

#[test]
fn the_package_is_named_after_the_model_and_exported_by_absolute_path() {
    let tiny = model("models/tiny_cnn.onnx");
    let (dir, output) = build(&tiny, |_| {});
    let output = output.unwrap();
    assert_eq!(output.package, dir.path().join("tiny_cnn.mlpackage"));
    assert!(output.package.join("Manifest.json").is_file());
    assert_eq!(output.env_var, "EDGEC_TINY_CNN_MLPACKAGE");
    assert_eq!(output.watched_files, std::slice::from_ref(&tiny));
    let lines = output.cargo_lines();
    assert_eq!(lines[0], format!("cargo:rerun-if-changed={}", tiny.display()));
    assert!(lines.contains(&"cargo:rerun-if-env-changed=EDGEC_INTERP_PROFILE".to_string()));
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "cargo:rustc-env=EDGEC_TINY_CNN_MLPACKAGE={}",
            dir.path().join("tiny_cnn.mlpackage").display()
        )
    );

    // `.name(..)` renames the package and the variable; a relative folder becomes absolute.
    let mut named = Build::new(&tiny);
    named.name("My-Model.mlpackage").out_dir("relative/out");
    let (package, var) = named.destination().unwrap();
    assert!(package.is_absolute(), "{}", package.display());
    assert!(package.ends_with("relative/out/My-Model.mlpackage"));
    assert_eq!(var, "EDGEC_MY_MODEL_MLPACKAGE");
}

#[test]
fn external_data_files_are_watched() {
    let (_dir, output) = build(&model("models/external_data.onnx"), |_| {});
    let output = output.unwrap();
    assert_eq!(
        output.watched_files,
        [
            model("models/external_data.onnx"),
            model("models/external_data.onnx.data")
        ]
    );
    assert!(output
        .cargo_lines()
        .iter()
        .any(|l| l.ends_with("external_data.onnx.data") && l.starts_with("cargo:rerun-if-changed=")));
}

#[test]
fn weights_rules_are_taken_typed_or_as_the_cli_writes_them() {
    let mut build = Build::new(model("models/compressible.onnx"));
    build
        .weights("palettize:6")
        .weights(compression::parse_rule("embedding=int8").unwrap());
    let options = build.compile_options().unwrap();
    assert_eq!(
        options.weights,
        [
            compression::parse_rule("palettize:6").unwrap(),
            compression::parse_rule("embedding=int8").unwrap()
        ]
    );
    let bad = Build::new("m.onnx")
        .weights("palettize:5")
        .compile_options()
        .unwrap_err();
    let message = bad.to_string();
    assert!(message.starts_with("weights rule \"palettize:5\": "), "{message}");
    assert!(message.contains("1, 2, 3, 4, 6 or 8"), "{message}");
}

#[test]
fn settings_are_checked_before_anything_is_read() {
    let message = |build: &mut Build| build.try_compile().unwrap_err().to_string();
    let twice = message(
        Build::new("absent.onnx")
            .input_shape("x", [1, 3])
            .input_shape("x", [1, 4]),
    );
    assert_eq!(twice, "input_shape: \"x\" is given twice");
    let calibration = message(Build::new("absent.onnx").calibration("inputs.npz"));
    assert!(
        calibration.contains("auto_precision or a weights rule"),
        "{calibration}"
    );
    let name = message(Build::new("absent.onnx").name("a/b").out_dir("."));
    assert!(name.contains("\"a/b\" cannot name a package"), "{name}");
    // `cargo test` sets no OUT_DIR for this crate, which has no build script.
    assert!(std::env::var_os("OUT_DIR").is_none());
    let out_dir = message(&mut Build::new("absent.onnx"));
    assert!(
        out_dir.contains("OUT_DIR is not set") && out_dir.contains(".out_dir(..)"),
        "{out_dir}"
    );
}

#[test]
fn auto_precision_and_the_guard_take_the_calibration_inputs() {
    let mut build = Build::new("m.onnx");
    build
        .precision(Precision::Fp32)
        .auto_precision(true)
        .calibration("cal.npz")
        .calibration_seed(7)
        .weights("int8")
        .weights_min_cosine(0.99);
    let options = build.compile_options().unwrap();
    assert_eq!(options.precision, Precision::Fp16);
    let auto = options.auto_precision.unwrap();
    assert_eq!(
        (auto.calibration.as_deref(), auto.seed),
        (Some(Path::new("cal.npz")), 7)
    );
    let guard = options.compression_guard.unwrap();
    assert_eq!(
        (guard.min_cosine, guard.inputs.as_deref()),
        (0.99, Some(Path::new("cal.npz")))
    );
    assert!(build
        .weights_min_cosine(None)
        .compile_options()
        .unwrap()
        .compression_guard
        .is_none());
}

#[test]
fn errors_read_the_same_through_display_debug_and_the_panic() {
    let (_dir, output) = build(&model("bad/unknown_op.onnx"), |_| {});
    let error = output.unwrap_err();
    let display = error.to_string();
    assert!(
        display.contains("2 unsupported ONNX op(s): FancyOp (node \"fancy_1\")"),
        "{display}"
    );
    assert_eq!(format!("{error:?}"), display);

    let dir = scratch();
    let model = model("bad/unknown_op.onnx");
    let panic = std::panic::catch_unwind(|| {
        Build::new(&model).out_dir(dir.path()).cargo_metadata(false).compile();
    })
    .unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert_eq!(message, &format!("edgec: {display}"));
}

#[test]
fn rules_that_select_nothing_and_the_guard_become_warnings() {
    let compressible = model("models/compressible.onnx");
    let (_dir, output) = build(&compressible, |b| {
        b.weights("name:*nothing*=int8");
    });
    let warnings = output.unwrap().warnings;
    assert!(
        warnings.contains(&"--weights rule name:*nothing*=int8 selects no weight".to_string()),
        "{warnings:?}"
    );

    // A bar no compressed weight can reach: the guard leaves weights dense and says so.
    let (_dir, output) = build(&compressible, |b| {
        b.weights("palettize:1").weights_min_cosine(1.0);
    });
    let output = output.unwrap();
    let guard = output.report.compression_guard.as_ref().unwrap();
    assert!(!guard.left_dense.is_empty());
    let guarded: Vec<&String> = output
        .warnings
        .iter()
        .filter(|w| w.starts_with("compression guard:"))
        .collect();
    assert_eq!(guarded.len(), 1, "{:?}", output.warnings);
    assert!(guarded[0].contains(&guard.left_dense[0]), "{}", guarded[0]);
    // The weights the guard left dense are not reported a second time as skipped.
    assert!(
        !output.warnings.iter().any(|w| w.contains("stayed dense")),
        "{:?}",
        output.warnings
    );
}

#[test]
fn fp32_ops_and_ops_off_the_neural_engine_are_summarised() {
    let overflow = model("models/fp16_const_overflow.onnx");
    let (_dir, output) = build(&overflow, |_| {});
    let output = output.unwrap();
    let fp32 = output.report.package.fp32_ops.len();
    assert!(fp32 > 0);
    let prefix = format!("{fp32} op(s) compute in fp32 in the fp16 program: ");
    assert!(
        output.warnings.iter().any(|w| w.starts_with(&prefix)),
        "{:?}",
        output.warnings
    );

    // fp32 compute keeps every op off the Neural Engine: one line, by op type, not one per op.
    let tiny = model("models/tiny_cnn.onnx");
    let (_dir, output) = build(&tiny, |b| {
        b.precision(Precision::Fp32);
    });
    let output = output.unwrap();
    let off = output.report.plan.off_ane().count();
    assert!(off > LISTED, "{off}");
    let planned: Vec<&String> = output
        .warnings
        .iter()
        .filter(|w| w.contains("off the Neural Engine"))
        .collect();
    assert_eq!(planned.len(), 1, "{:?}", output.warnings);
    assert!(planned[0].starts_with(&format!("{off} of {} ops", output.report.plan.summary.ops)));
    assert!(
        planned[0].contains(&format!("`edgec plan {}`", tiny.display())),
        "{}",
        planned[0]
    );
    // Without the Neural Engine among the units, being off it is what was asked for.
    let (_dir, output) = build(&tiny, |b| {
        b.precision(Precision::Fp32).compute_units(ComputeUnits::CpuAndGpu);
    });
    assert!(output.unwrap().warnings.is_empty());
}

#[test]
fn every_warning_line_becomes_a_cargo_warning_naming_the_model() {
    let (_dir, output) = build(&model("models/tiny_cnn.onnx"), |_| {});
    let mut output = output.unwrap();
    output.warnings = vec!["first\nsecond".into()];
    let warnings: Vec<String> = output
        .cargo_lines()
        .into_iter()
        .filter(|l| l.starts_with("cargo:warning="))
        .collect();
    assert_eq!(
        warnings,
        [
            "cargo:warning=edgec: tiny_cnn.onnx: first",
            "cargo:warning=edgec: tiny_cnn.onnx: second"
        ]
    );
}

/// Every `EDGEC_*` variable the library's code names is one a build script reruns on.
#[test]
fn every_edgec_variable_the_library_reads_is_watched() {
    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join("passes/src"), &mut files);
    let mut named = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (start, _) in text.match_indices("\"EDGEC_") {
            let name: String = text[start + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // A whole literal, not a format string such as "EDGEC_{name}_MLPACKAGE"; the
            // variables a build exports are written, not read.
            let literal = text[start + 1 + name.len()..].starts_with('"');
            if literal && name.len() > "EDGEC_".len() && !name.ends_with("_MLPACKAGE") {
                named.push((name, file.clone()));
            }
        }
    }
    assert!(!named.is_empty());
    for (name, file) in named {
        assert!(
            ENV_VARS.contains(&name.as_str()),
            "{name} ({}) is not in ENV_VARS",
            file.display()
        );
    }
}
