//! Pieces of the `edgec` command line that are not part of the library.

pub mod status;
