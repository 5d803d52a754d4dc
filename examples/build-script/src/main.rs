//! Uses the package build.rs compiled: lists its files and their sizes. An app would copy it
//! into its bundle (or `include_bytes!` its files) and load it with Core ML.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where build.rs wrote the package (an absolute path in this crate's `OUT_DIR`).
const PACKAGE: &str = env!("EDGEC_TINY_CNN_MLPACKAGE");

fn main() -> ExitCode {
    let package = Path::new(PACKAGE);
    let mut files = Vec::new();
    if let Err(e) = list(package, &mut files) {
        eprintln!("{}: {e}", package.display());
        return ExitCode::FAILURE;
    }
    if !package.join("Manifest.json").is_file() {
        eprintln!("{}: not an ML package (no Manifest.json)", package.display());
        return ExitCode::FAILURE;
    }
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    println!("{} ({total} bytes in {} files)", package.display(), files.len());
    for (file, size) in &files {
        let relative = file.strip_prefix(package).unwrap_or(file);
        println!("{size:>10}  {}", relative.display());
    }
    ExitCode::SUCCESS
}

/// Every file under `dir` with its size, in name order.
fn list(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            list(&path, out)?;
        } else {
            out.push((path, entry.metadata()?.len()));
        }
    }
    Ok(())
}
