//! The Core ML back end: lower the legal IR to a MIL program, write `weight.bin`, describe the
//! model, and lay the package out on disk; plus reading packages back for `edgec inspect`.

pub mod counts;
pub mod describe;
pub mod inspect;
pub mod lower;
pub mod mil;
pub mod names;
pub mod package;
pub mod scope;
pub mod target;
pub mod text;
pub mod weights;

pub use counts::{human_size, OpCounts};
pub use package::{write_package, PackageInfo};
pub use target::DeploymentTarget;
