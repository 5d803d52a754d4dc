//! The one error type of the `edgec` crate. Every variant names the file it concerns, and
//! node-level errors name the ONNX node and its op type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid ONNX model (protobuf decoding failed: {source})")]
    Decode { path: PathBuf, source: prost::DecodeError },

    /// A problem with the model as a whole (graph structure, inputs, opsets).
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },

    /// A problem with one node.
    #[error("{path}: node {node:?} ({op}): {message}")]
    Node {
        path: PathBuf,
        node: String,
        op: String,
        message: String,
    },

    #[error("{path}: {} unsupported ONNX op(s): {}", ops.len(), ops.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", "))]
    Unsupported { path: PathBuf, ops: Vec<UnsupportedOp> },

    #[error("{path}: initializer {tensor:?}: {message}")]
    Initializer {
        path: PathBuf,
        tensor: String,
        message: String,
    },

    #[error("{path}: {source}")]
    Pass {
        path: PathBuf,
        source: edgec_passes::pass::PassError,
    },

    #[error("{path}: internal error: the graph failed verification after {after}: {source}")]
    Verify {
        path: PathBuf,
        after: String,
        source: edgec_passes::verify::VerifyError,
    },

    /// Invalid options (e.g. a malformed `--input-shape`).
    #[error("{0}")]
    Usage(String),

    /// `edgec verify` found outputs outside tolerance.
    #[error("{package}: {failed} of {total} output(s) differ from the ONNX model beyond tolerance")]
    VerifyFailed {
        package: PathBuf,
        failed: usize,
        total: usize,
    },

    /// A package could not be read or is not one edgec understands.
    #[error("{path}: {message}")]
    Package { path: PathBuf, message: String },
}

/// One node whose op edgec cannot compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    pub domain: String,
    pub op_type: String,
    pub node: String,
}

impl std::fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.domain.is_empty() || self.domain == "ai.onnx" {
            write!(f, "{} (node {:?})", self.op_type, self.node)
        } else {
            write!(f, "{}::{} (node {:?})", self.domain, self.op_type, self.node)
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
