//! The one error type of the `edgec` crate. Every variant names the file it concerns, and
//! node-level errors name the ONNX node and its op type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in edgec; the `Display` form is the whole message.
///
/// `Debug` prints the same message as `Display`, so `fn main() -> Result<(), edgec::Error>`, `?`
/// and `.unwrap()` in a build script read like the CLI's errors rather than a struct dump.
#[derive(thiserror::Error)]
pub enum Error {
    /// An OS error on `path`, said in words about that path (see [`describe_io`]).
    #[error("{}", describe_io(path, source))]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid ONNX model (protobuf decoding failed: {source})")]
    Decode { path: PathBuf, source: prost::DecodeError },

    /// A problem with the model as a whole (graph structure, inputs, opsets).
    #[error("{path}: {message}")]
    Model { path: PathBuf, message: String },

    /// A problem with one node.
    #[error("{path}: {} ({op}): {message}", NodeName(node))]
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

    /// `--require-ane`: ops predicted off the Neural Engine (exit status 2).
    #[error("{path}: not written: --require-ane, and {} of {ops} ops are predicted off the Neural Engine:\n  {}", off.len(), off.join("\n  "))]
    OffNeuralEngine {
        path: PathBuf,
        ops: usize,
        off: Vec<String>,
    },

    /// The model exceeds one of edgec's caps ([`crate::onnx::limits`]); `subject` says where
    /// (`node "conv1" (Conv) attribute "pads"`, `initializer "w"`, `the graph`).
    #[error("{path}: {subject}: {message}")]
    Limit {
        path: PathBuf,
        subject: String,
        message: String,
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
            write!(f, "{} ({})", self.op_type, NodeName(&self.node))
        } else {
            write!(f, "{}::{} ({})", self.domain, self.op_type, NodeName(&self.node))
        }
    }
}

/// `node "conv1"`, or `unnamed node` (ONNX node names are optional).
struct NodeName<'a>(&'a str);

impl std::fmt::Display for NodeName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("unnamed node")
        } else {
            write!(f, "node {:?}", self.0)
        }
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// The process exit status for this error: 2 for a policy refusal (`--require-ane`), 1
    /// for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::OffNeuralEngine { .. } => 2,
            _ => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an OS error on `path` means for the user, rather than the bare errno text: "No such
/// device (os error 19)" from mapping a folder, or "File exists (os error 17)" from creating
/// a folder below a regular file, say nothing about what is wrong with which path.
pub fn describe_io(path: &Path, source: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let shown = path.display();
    // A regular file where a folder is needed explains ENOTDIR, EEXIST and ENOENT alike.
    if let Some(file) = path
        .ancestors()
        .skip(1)
        .find(|a| !a.as_os_str().is_empty() && a.is_file())
    {
        return format!(
            "{shown}: {} is a file, not a folder, so nothing can be read or written below it",
            file.display()
        );
    }
    let is_folder = path.is_dir();
    let what = match source.kind() {
        _ if is_folder && matches!(source.raw_os_error(), Some(19 | 21)) => "is a folder, not a file".to_string(),
        ErrorKind::IsADirectory => "is a folder, not a file".to_string(),
        ErrorKind::NotFound => match path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            Some(parent) => format!("not found (its folder {} does not exist)", parent.display()),
            None => "not found".to_string(),
        },
        ErrorKind::PermissionDenied => "permission denied (check the file's and its folder's permissions)".to_string(),
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only".to_string(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "no space left on the disk".to_string(),
        ErrorKind::AlreadyExists => "already exists".to_string(),
        ErrorKind::UnexpectedEof => "the file ends early (truncated?)".to_string(),
        _ => source.to_string(),
    };
    format!("{shown}: {what}")
}
