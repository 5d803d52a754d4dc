//! One file per pass; the order they run in is [`crate::pass::PIPELINE`].

pub mod cancel_casts;
pub mod cast_to_fp16;
pub mod compress_weights;
pub mod dead_code;
pub mod dedup_constants;
pub mod eliminate_common_subexpressions;
pub mod eliminate_identity;
pub mod fast_gelu;
pub mod fold_constants;
pub mod fold_transpose_reshape;
pub mod fuse_attention;
pub mod fuse_clip;
pub mod fuse_conv_batchnorm;
pub mod fuse_conv_bias;
pub mod fuse_gelu;
pub mod fuse_hard_swish;
pub mod fuse_layer_norm;
pub mod fuse_linear;
pub mod fuse_silu;
pub mod guard_fp16_range;
pub mod inline_known_branches;
pub mod legalize;
pub mod legalize_io;
pub mod narrow_int64;
