//! One file per pass; the order they run in is [`crate::pass::PIPELINE`].

pub mod cast_to_fp16;
pub mod compress_weights;
pub mod dead_code;
pub mod eliminate_identity;
pub mod fold_constants;
pub mod fuse_conv_batchnorm;
pub mod fuse_conv_bias;
pub mod fuse_linear;
pub mod guard_fp16_range;
pub mod legalize;
pub mod legalize_io;
pub mod narrow_int64;
