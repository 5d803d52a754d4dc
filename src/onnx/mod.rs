//! The ONNX front end: read a model file (memory-mapped, external data resolved inside the
//! model's folder) and import its graph into edgec's IR.

mod control_flow;
mod dynamic_quant;
mod import;
pub mod limits;
mod ops;
mod regions;
mod tensor;

pub use import::{import, InputShapes, InputValues, SUPPORTED_OPSETS};
pub use ops::supported_op_types;

use crate::error::{Error, Result};
use crate::proto::onnx::{GraphProto, ModelProto, NodeProto, TensorProto};
use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

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

    /// The files the model keeps tensor data in, each once, in order of first reference: the
    /// folder joined with each `location` as written, whether or not the import would accept
    /// it (a build script watches them; the import checks them).
    pub fn external_data_files(&self) -> Vec<PathBuf> {
        let mut locations: Vec<&str> = Vec::new();
        if let Some(graph) = &self.proto.graph {
            graph_locations(graph, &mut locations);
        }
        for function in &self.proto.functions {
            function.node.iter().for_each(|n| node_locations(n, &mut locations));
        }
        let dir = self.dir();
        locations.into_iter().map(|l| dir.join(l)).collect()
    }
}

/// The external data locations of a graph's tensors and of its nodes' attributes (subgraphs
/// included).
fn graph_locations<'a>(graph: &'a GraphProto, out: &mut Vec<&'a str>) {
    let sparse = graph
        .sparse_initializer
        .iter()
        .flat_map(|s| s.values.iter().chain(&s.indices));
    for tensor in graph.initializer.iter().chain(sparse) {
        push_location(tensor, out);
    }
    graph.node.iter().for_each(|n| node_locations(n, out));
}

fn node_locations<'a>(node: &'a NodeProto, out: &mut Vec<&'a str>) {
    for attr in &node.attribute {
        let sparse = attr
            .sparse_tensor
            .iter()
            .chain(&attr.sparse_tensors)
            .flat_map(|s| s.values.iter().chain(&s.indices));
        for tensor in attr.t.iter().chain(&attr.tensors).chain(sparse) {
            push_location(tensor, out);
        }
        for graph in attr.g.iter().chain(&attr.graphs) {
            graph_locations(graph, out);
        }
    }
}

fn push_location<'a>(tensor: &'a TensorProto, out: &mut Vec<&'a str>) {
    if let Some(location) = tensor::external_location(tensor) {
        if !out.contains(&location) {
            out.push(location);
        }
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
    let map = Arc::new(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?);
    let mut live = crate::temp::lock(&MAPPINGS);
    live.retain(|weak| weak.strong_count() > 0);
    live.push(Arc::downgrade(&map));
    Ok(Bytes::from_owner(SharedMap(map)))
}

/// A read-only file mapping, owned by the `Bytes` slices cut from it.
struct SharedMap(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Every model and external-data mapping still alive in this process.
static MAPPINGS: Mutex<Vec<Weak<memmap2::Mmap>>> = Mutex::new(Vec::new());

/// Drops the pages of every mapped model file from this process's resident set. The IR keeps
/// slices of the files for the tensors it did not convert, so the mappings stay; the pages the
/// import touched (all of a large model's weights) would otherwise count against the peak for
/// the rest of the compile. A later read faults the page back in from the page cache.
pub fn release_mapped_pages() {
    let live = crate::temp::lock(&MAPPINGS);
    for map in live.iter().filter_map(Weak::upgrade) {
        #[cfg(unix)]
        // SAFETY: the mapping is shared and read-only, so MADV_DONTNEED discards nothing: the
        // next access reads the file's page again. No slice of it is being written.
        let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        #[cfg(not(unix))]
        let _ = map;
    }
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
    limits::check_model(path, &proto)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Released pages come back from the file: slices read the same bytes afterwards, and the
    /// mapping stays registered while they live.
    #[test]
    fn released_mapped_pages_read_back_unchanged() {
        let dir = std::env::temp_dir().join(format!("edgec-map-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("weights.bin");
        let contents: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &contents).expect("write");
        let bytes = map_file(&path).expect("map");
        let tail = bytes.slice(4096..);
        assert_eq!(&bytes[..], &contents[..]);
        release_mapped_pages();
        assert_eq!(&bytes[..], &contents[..]);
        assert_eq!(&tail[..], &contents[4096..]);
        let held = |registry: &[Weak<memmap2::Mmap>]| {
            registry
                .iter()
                .any(|w| w.upgrade().is_some_and(|m| m.as_ptr() == bytes.as_ptr()))
        };
        assert!(held(&MAPPINGS.lock().expect("registry")));
        drop((bytes, tail));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
