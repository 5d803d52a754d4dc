//! The ONNX front end: read a model file (memory-mapped, external data resolved inside the
//! model's folder) and import its graph into edgec's IR.

mod import;
mod ops;
mod tensor;

pub use import::{import, InputShapes};
pub use ops::supported_op_types;

use crate::error::{Error, Result};
use crate::proto::onnx::ModelProto;
use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A decoded ONNX model and where it came from.
pub struct OnnxModel {
    pub path: PathBuf,
    pub proto: ModelProto,
    /// The mapped file (tensors in `proto` are slices of it).
    bytes: Bytes,
}

impl OnnxModel {
    /// The version of the default ONNX domain the model imports.
    pub fn opset(&self) -> Option<i64> {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
    }

    /// Hex SHA-256 of the model file (not of its external data). Hashing a large model takes
    /// about a second, so the driver runs this beside the passes.
    pub fn sha256(&self) -> String {
        hex_string(&Sha256::digest(&self.bytes))
    }

    /// A handle on the mapped file, for hashing on another thread.
    pub fn file_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The folder external data must stay inside.
    pub fn dir(&self) -> PathBuf {
        self.path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// Map a file into memory as `Bytes`, so decoded tensors are slices of the mapping.
pub(crate) fn map_file(path: &Path) -> Result<Bytes> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only. Like every reader of memory-mapped files we assume the
    // file is not truncated while we compile; a concurrent writer could only change the bytes
    // we read, and every read below is bounds-checked against the length we mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    Ok(Bytes::from_owner(map))
}

pub fn load(path: &Path) -> Result<OnnxModel> {
    let bytes = map_file(path)?;
    if bytes.is_empty() {
        return Err(Error::Model {
            path: path.to_path_buf(),
            message: "the file is empty".into(),
        });
    }
    let proto = ModelProto::decode(bytes.clone()).map_err(|source| Error::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    if proto.graph.is_none() {
        return Err(Error::Model {
            path: path.to_path_buf(),
            message: "the model has no graph (is this an ONNX file?)".into(),
        });
    }
    Ok(OnnxModel {
        path: path.to_path_buf(),
        proto,
        bytes,
    })
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_string(&Sha256::digest(bytes))
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
