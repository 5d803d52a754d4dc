//! Shared pieces of edgec's fuzz targets: a scratch folder per process, compile options drawn
//! from one input byte, the run of a compiled package on generated inputs, and the byte layout
//! of the package reader's inputs.
//!
//! What counts as a finding: a panic, a hang, an allocation over the limits given to libFuzzer,
//! and an internal error ([`edgec::Error::Verify`]: the IR broke after a pass, so a bad input got
//! past the importer's checks). Every other error is the expected answer to a bad input.

pub mod graph;
pub mod package;

use edgec::{CompileOptions, DeploymentTarget, Error, Precision};
use std::path::{Path, PathBuf};

/// A folder of this process's own, in memory when the machine has `/dev/shm`, emptied for each
/// input by the targets.
pub fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("edgec-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the scratch folder can be created");
        dir
    })
}

/// Remove everything in `dir` (kept itself), so one input cannot see another's files.
pub fn clear(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Compile options from one byte: precision, deployment target and weight compression. The
/// compression guard stays off (it compiles and runs trial packages: slow, and covered by the
/// compression tests); small weights are compressed too, so tiny models reach the compressors.
pub fn options(byte: u8) -> CompileOptions {
    let precision = if byte & 1 == 0 {
        Precision::Fp16
    } else {
        Precision::Fp32
    };
    let deployment_target = DeploymentTarget::ALL[usize::from(byte >> 1) % DeploymentTarget::ALL.len()];
    let scheme = match (byte >> 3) % 8 {
        0..=3 => None,
        4 => Some("palettize:2"),
        5 => Some("int8"),
        6 if deployment_target >= DeploymentTarget::Ios18 => Some("int4:b8"),
        6 => Some("palettize:4"),
        _ if deployment_target >= DeploymentTarget::Ios18 => Some("palettize:3:g2"),
        _ => Some("int8"),
    };
    let weights = scheme
        .map(|s| vec![edgec::compression::parse_rule(s).expect("the scheme table is valid")])
        .unwrap_or_default();
    CompileOptions {
        precision,
        deployment_target,
        weights,
        weights_min_elements: 4,
        compression_guard: None,
        verify_each_pass: true,
        ..CompileOptions::default()
    }
}

/// Panic on an internal error: the one error kind that means edgec, not the input, is wrong.
pub fn check_not_internal<T>(result: &Result<T, Error>) {
    if let Err(e @ Error::Verify { .. }) = result {
        panic!("internal error: {e}");
    }
}

/// Run a package edgec just wrote on generated inputs (seeded by `seed`), as `edgec run` and
/// `edgec verify` would. Any error is a finding: edgec's own package must run.
pub fn run_compiled(package: &Path, seed: u64) {
    let inputs = edgec::verify::deterministic_inputs(package, seed)
        .unwrap_or_else(|e| panic!("inputs for a package edgec wrote: {e}"));
    let options = edgec::interp::InterpOptions {
        fp16_rounding: seed & 1 == 1,
    };
    if let Err(e) = edgec::interp::run_package(package, &inputs, &options) {
        panic!("the interpreter rejects a package edgec wrote: {e}");
    }
}
