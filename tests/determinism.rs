//! The same model and options give byte-identical packages, wherever they are written.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

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
