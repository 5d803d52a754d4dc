//! edgec's intermediate representation and the passes over it.
//!
//! This crate knows nothing of ONNX or Core ML: the front end (in the `edgec` crate) builds a
//! [`Graph`] from ONNX, the passes listed in [`pass::PIPELINE`] rewrite it, and the back end
//! lowers the result to MIL. Keeping the IR here means no pass can reach into either format.
//!
//! - [`ir`]: the arena graph, typed ids, tensors and constants.
//! - [`op`]: the closed op enum and its shape inference.
//! - [`verify`]: the verifier, run after every pass in tests.
//! - [`print`](mod@print): the stable text dump used by golden tests and `edgec inspect`.
//! - [`pass`]: the `Pass` trait and the ordered pipeline; one file per pass under [`passes`].
//! - [`compress`]: weight-compression algorithms: exact k-means palettization, linear quantization.
//! - [`eval`]: a small reference evaluator used by constant folding.
//! - [`pattern`]: matching helpers shared by the pattern-rewriting passes.
//! - [`precision`]: per-op fp32 pins in fp16 programs and the log of fp16 range decisions.

pub mod compress;
pub mod compressed;
pub mod eval;
pub mod ir;
pub mod op;
pub mod pass;
pub mod passes;
pub mod pattern;
pub mod precision;
pub mod print;
pub mod verify;

pub use ir::{DType, Graph, Node, NodeId, Tensor, TensorType, Value, ValueDef, ValueId};
pub use op::Op;
pub use pass::{Pass, PassOptions, Precision};
