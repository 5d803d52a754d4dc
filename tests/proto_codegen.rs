//! Keeps `src/proto/generated/` in step with the `.proto` sources in `proto/`.
//!
//! The test compiles `proto/` with protox (pure Rust, no `protoc`) and
//! prost-build into a temporary directory and fails if any committed file
//! differs, is missing, or is stale. Run
//!
//! ```text
//! EDGEC_BLESS=1 cargo test --test proto_codegen
//! ```
//!
//! to rewrite `src/proto/generated/` from the current `.proto` files. The
//! comparison is on the exact bytes prost-build emits; the generated files are
//! never run through rustfmt (their `mod` items carry `#[rustfmt::skip]`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Root `.proto` files, relative to `proto/`; their imports come along.
const ROOTS: &[&str] = &["onnx.proto", "coreml/Model.proto"];

/// Committed output directory, relative to the crate root.
const GENERATED_DIR: &str = "src/proto/generated";

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs protox + prost-build into `out_dir`.
fn generate(out_dir: &Path) {
    let proto_dir = crate_root().join("proto");
    let roots: Vec<PathBuf> = ROOTS.iter().map(|r| proto_dir.join(r)).collect();
    let fds = protox::compile(&roots, [&proto_dir])
        .unwrap_or_else(|e| panic!("protox failed to compile {}: {e:?}", proto_dir.display()));

    prost_build::Config::new()
        .out_dir(out_dir)
        // Every `bytes` field becomes `bytes::Bytes`, so decoding from a
        // `Bytes` buffer slices tensor payloads instead of copying them.
        .bytes(["."])
        // Ordered maps: encoding is deterministic (sorted by key), so the
        // compiler's output is reproducible.
        .btree_map(["."])
        .compile_fds(fds)
        .expect("prost-build failed");
}

/// File name -> contents for every `.rs` file directly in `dir`.
fn read_rs_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let entry = entry.expect("read_dir entry");
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let bytes = fs::read(&path).expect("read generated file");
            files.insert(entry.file_name().to_string_lossy().into_owned(), bytes);
        }
    }
    files
}

#[test]
fn generated_proto_code_is_fresh() {
    let tmp = tempfile::tempdir().expect("create temp dir");
    generate(tmp.path());
    let fresh = read_rs_files(tmp.path());
    assert!(!fresh.is_empty(), "prost-build produced no files");

    let committed_dir = crate_root().join(GENERATED_DIR);

    if std::env::var_os("EDGEC_BLESS").is_some_and(|v| v == "1") {
        fs::create_dir_all(&committed_dir).expect("create generated dir");
        for name in read_rs_files(&committed_dir).keys() {
            if !fresh.contains_key(name) {
                fs::remove_file(committed_dir.join(name)).expect("remove stale file");
            }
        }
        for (name, bytes) in &fresh {
            fs::write(committed_dir.join(name), bytes).expect("write generated file");
        }
        eprintln!("proto_codegen: rewrote {}", committed_dir.display());
        return;
    }

    let committed = read_rs_files(&committed_dir);
    let mut problems = Vec::new();
    for (name, bytes) in &fresh {
        match committed.get(name) {
            None => problems.push(format!("missing: {GENERATED_DIR}/{name}")),
            Some(old) if old != bytes => {
                problems.push(format!("out of date: {GENERATED_DIR}/{name}"));
            }
            Some(_) => {}
        }
    }
    for name in committed.keys() {
        if !fresh.contains_key(name) {
            problems.push(format!("stale (no longer generated): {GENERATED_DIR}/{name}"));
        }
    }
    assert!(
        problems.is_empty(),
        "generated protobuf code does not match proto/:\n  {}\n\
         Refresh it with:\n    EDGEC_BLESS=1 cargo test --test proto_codegen\n\
         and commit the result (never edit {GENERATED_DIR} by hand).",
        problems.join("\n  ")
    );
}
