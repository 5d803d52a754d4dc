//! edgec: an ahead-of-time compiler from ONNX models to Core ML ML Program packages.
//!
//! The whole pipeline is [`driver::compile`]: load ONNX ([`onnx`]) → import into the IR →
//! run the passes of [`edgec_passes::pass::PIPELINE`] → lower to MIL and write the package
//! ([`coreml`]). A build script uses [`Build`], which compiles into `OUT_DIR` and tells Cargo
//! when to run again, what to warn about and where the package is ([`build`] says how, and how
//! to keep build scripts fast).
//!
//! Checking on Linux: [`interp`] runs an emitted package on the CPU, and [`verify`] compares
//! it with the ONNX model run by the reference runtime (feature `reference`, on by default).

pub mod analyze;
pub mod build;
pub mod compression;
pub mod compression_guard;
pub mod coreml;
pub mod driver;
pub mod error;
pub mod interp;
pub mod mixed_precision;
pub mod npy;
pub mod onnx;
pub mod plan;
pub mod progress;
pub mod proto;
#[cfg(feature = "reference")]
pub mod reference;
pub mod report;
pub mod temp;
pub mod verify;

pub use build::{Build, BuildOutput};
pub use coreml::DeploymentTarget;
pub use driver::{compile, AutoPrecision, CompileOptions, CompileReport};
pub use edgec_passes::pass::GeluChoice;
pub use edgec_passes::Precision;
pub use error::{Error, Result};
pub use plan::ComputeUnits;
pub use progress::Progress;
