//! The same model and options give byte-identical packages, wherever they are written.

mod common;

use common::files;

#[test]
fn packages_are_byte_identical_across_runs() {
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pa, pb) = (a.path().join("x.mlpackage"), b.path().join("sub/y.mlpackage"));
    let options = edgec::CompileOptions::default();
    edgec::compile(&model, &pa, &options).unwrap();
    edgec::compile(&model, &pb, &options).unwrap();
    let (fa, fb) = (files(&pa), files(&pb));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(bytes == &fb[name], "{name} differs between runs");
    }
    assert!(fa.contains_key("Data/com.apple.CoreML/weights/weight.bin"));
}

#[test]
fn recompiling_replaces_an_existing_package() {
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("m.mlpackage");
    let fp32 = edgec::CompileOptions {
        precision: edgec::Precision::Fp32,
        ..Default::default()
    };
    edgec::compile(&model, &pkg, &fp32).unwrap();
    let before = files(&pkg);
    edgec::compile(&model, &pkg, &edgec::CompileOptions::default()).unwrap();
    let after = files(&pkg);
    assert_ne!(
        before["Data/com.apple.CoreML/weights/weight.bin"],
        after["Data/com.apple.CoreML/weights/weight.bin"]
    );
    // Only the package remains in the folder: no temporary or backup directories.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Every weight scheme gives the same bytes whatever the thread count: rayon splits work
/// differently at 1, 2 and 8 threads, and the output must not notice. (A separate process per
/// run: the thread pool is set once per process.)
#[test]
fn every_weight_scheme_is_byte_identical_at_1_2_and_8_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.onnx");
    common::write_mlp(&model, 512, 3);
    let schemes: &[&[&str]] = &[
        &[],
        &["--precision", "fp32"],
        &["--weights", "palettize:1"],
        &["--weights", "palettize:2"],
        &["--weights", "palettize:4"],
        &["--weights", "palettize:6"],
        &["--weights", "palettize:8"],
        &["--weights", "int8"],
        &["--deployment-target", "ios18", "--weights", "palettize:3"],
        &["--deployment-target", "ios18", "--weights", "palettize:4:g16"],
        &["--deployment-target", "ios18", "--weights", "int8:b32"],
        &["--deployment-target", "ios18", "--weights", "int4:b32"],
    ];
    for flags in schemes {
        let mut packages = Vec::new();
        for threads in ["1", "2", "8"] {
            let out = dir.path().join(format!("t{threads}.mlpackage"));
            let result = std::process::Command::new(env!("CARGO_BIN_EXE_edgec"))
                .arg("compile")
                .arg(&model)
                .arg("-o")
                .arg(&out)
                .args(*flags)
                .env("RAYON_NUM_THREADS", threads)
                .output()
                .unwrap();
            assert!(
                result.status.success(),
                "{flags:?}: {}",
                String::from_utf8_lossy(&result.stderr)
            );
            packages.push((threads, files(&out)));
        }
        let (_, first) = &packages[0];
        for (threads, package) in &packages[1..] {
            assert_eq!(first.keys().collect::<Vec<_>>(), package.keys().collect::<Vec<_>>());
            for (name, bytes) in first {
                assert!(
                    bytes == &package[name],
                    "{flags:?}: {name} differs between 1 and {threads} threads"
                );
            }
        }
    }
}
