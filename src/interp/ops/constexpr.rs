//! Weight-decompression ops (`constexpr_*`): the place for iOS16+ and iOS18+ compression.
//!
//! These ops take only compile-time data and produce a dense weight. Their parameters reach
//! an implementation through the ordinary [`OpCtx`] accessors whatever the opset:
//! * iOS16/17 packages keep them in `Operation.attributes` (immediates or blobs);
//!   [`OpCtx::opt`] falls back to attributes when there is no input of that name;
//! * iOS18 packages bind them as inputs, either inline `Binding.value`s (immediates or blobs,
//!   decoded on the spot) or names of other `constexpr_*` results.
//!
//! Sub-byte element types (`uint1`..`uint6`, `int4`) are already unpacked one element per
//! `i32` by the value decoder (LSB-first, coreml-format.md §6), so an implementation works on
//! plain integer indices. Still to add, with their semantics in coreml-format.md §6 and
//! coremltools' `ops/defs/iOS16/constexpr_ops.py` and `iOS18/compression.py`:
//! `constexpr_affine_dequantize`, `constexpr_lut_to_dense` (iOS16 packed / iOS18 unpacked
//! forms), `constexpr_sparse_to_dense`, `constexpr_blockwise_shift_scale`,
//! `constexpr_sparse_blockwise_shift_scale`, `constexpr_lut_to_sparse`.

use super::super::eval::OpCtx;
use super::super::tensor::{DType, OpResult, Tensor};
use super::OpFn;

pub(super) const OPS: &[(&str, OpFn)] = &[("constexpr_cast", constexpr_cast)];

/// iOS16 `constexpr_cast`: an fp16 constant widened to `output_dtype` (only "fp32").
fn constexpr_cast(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let src = ctx.get("source_val")?;
    if src.dtype != DType::Fp16 {
        return Err(format!("source_val must be fp16, got {}", src.type_string()));
    }
    let to = ctx.string("output_dtype")?;
    if to != "fp32" {
        return Err(format!("output_dtype {to:?} is not supported (only \"fp32\")"));
    }
    Ok(vec![Tensor::float(
        DType::Fp32,
        src.shape.clone(),
        src.floats()?.to_vec(),
    )])
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{run_op, string};
    use super::*;

    #[test]
    fn constexpr_cast_widens_fp16() {
        let src = Tensor::float(DType::Fp16, vec![2], vec![1.5, -2.0]);
        let y = run_op(
            "constexpr_cast",
            vec![("source_val", src), ("output_dtype", string("fp32"))],
        )
        .unwrap();
        assert_eq!(y.dtype, DType::Fp32);
        assert_eq!(y.floats().unwrap(), &[1.5, -2.0]);
    }
}
