//! The package reader's input: one byte string holding the three files of an `.mlpackage`.
//!
//! Layout: a flags byte; if its bit 0 is set, a manifest as `u32 LE length + bytes` (else the
//! manifest edgec writes is used, so most inputs get past it to the model); then the
//! `model.mlmodel` protobuf as `u32 LE length + bytes`; the rest is `weights/weight.bin`.
//! Lengths past the end of the input take what is left.

use std::path::{Path, PathBuf};

pub const MODEL_PATH: &str = "Data/com.apple.CoreML/model.mlmodel";
pub const WEIGHTS_PATH: &str = "Data/com.apple.CoreML/weights/weight.bin";

/// The manifest of a package whose root model is at [`MODEL_PATH`].
pub const STANDARD_MANIFEST: &str = r#"{
  "fileFormatVersion": "1.0.0",
  "itemInfoEntries": {
    "0A1B2C3D-0000-4000-8000-000000000001": {
      "author": "com.apple.CoreML",
      "description": "CoreML Model Specification",
      "name": "model.mlmodel",
      "path": "com.apple.CoreML/model.mlmodel"
    }
  },
  "rootModelIdentifier": "0A1B2C3D-0000-4000-8000-000000000001"
}
"#;

pub struct PackageFiles<'a> {
    /// `None`: [`STANDARD_MANIFEST`].
    pub manifest: Option<&'a [u8]>,
    pub model: &'a [u8],
    pub weights: &'a [u8],
}

fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return std::mem::take(data);
    };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (section, rest) = rest.split_at(len);
    *data = rest;
    section
}

impl<'a> PackageFiles<'a> {
    pub fn split(data: &'a [u8]) -> PackageFiles<'a> {
        let Some((&flags, mut rest)) = data.split_first() else {
            return PackageFiles {
                manifest: None,
                model: &[],
                weights: &[],
            };
        };
        let manifest = (flags & 1 == 1).then(|| take(&mut rest));
        let model = take(&mut rest);
        PackageFiles {
            manifest,
            model,
            weights: rest,
        }
    }

    /// The bytes [`split`](Self::split) reads back as these files (for seeds).
    pub fn join(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.manifest.is_some())];
        for section in self.manifest.iter().chain([&self.model]) {
            out.extend_from_slice(&(section.len() as u32).to_le_bytes());
            out.extend_from_slice(section);
        }
        out.extend_from_slice(self.weights);
        out
    }

    /// Lay the files out as `dir/fuzz.mlpackage` and return its path.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let package = dir.join("fuzz.mlpackage");
        std::fs::create_dir_all(package.join(WEIGHTS_PATH).parent().unwrap_or(&package))?;
        std::fs::write(
            package.join("Manifest.json"),
            self.manifest.unwrap_or(STANDARD_MANIFEST.as_bytes()),
        )?;
        std::fs::write(package.join(MODEL_PATH), self.model)?;
        std::fs::write(package.join(WEIGHTS_PATH), self.weights)?;
        Ok(package)
    }
}
