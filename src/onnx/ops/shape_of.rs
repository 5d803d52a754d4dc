//! Shape computations, evaluated at compile time: Shape, Size, ConstantOfShape, Range.
//!
//! Every IR shape is static, so these produce constants; the shape subgraphs built on them
//! (Gather, Concat, arithmetic, Reshape's shape input) then fold as they are imported, and no
//! shape op reaches the package.

use super::{Importer, NodeCx};
use crate::onnx::limits::MAX_COMPUTED_CONSTANT_BYTES;
use edgec_passes::ir::{Tensor, TensorType, ValueId};

pub const OPS: &[(&str, Importer)] = &[
    ("Shape", shape),
    ("Size", size),
    ("ConstantOfShape", constant_of_shape),
    ("Range", range),
];

/// The input's dimensions (opset 15: only those in `start..end`, negative bounds counting from
/// the end and both clamped to the rank).
fn shape(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let dims: Vec<i64> = cx.ty(x).shape.iter().map(|&d| d as i64).collect();
    let rank = dims.len() as i64;
    let clamp = |v: i64| if v < 0 { v + rank } else { v }.clamp(0, rank) as usize;
    let start = clamp(cx.attr_int("start", 0)?);
    let end = clamp(cx.attr_int("end", rank)?);
    let dims = if start < end { &dims[start..end] } else { &[][..] };
    Ok(vec![cx.add_const_output(0, Tensor::from_i64(vec![dims.len()], dims))])
}

fn size(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let count = cx.ty(x).num_elements() as i64;
    Ok(vec![cx.add_const_output(0, Tensor::from_i64(Vec::new(), &[count]))])
}

/// A tensor of the given (constant) shape filled with `value` (a one-element tensor, float 0
/// by default).
fn constant_of_shape(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let dims = cx.const_ints(0, "shape")?;
    let shape = super::positive(&dims, "shape").map_err(|e| format!("{e} (zero-sized tensors are not supported)"))?;
    let fill = match cx.attr_tensor("value")? {
        Some(t) if t.ty.num_elements() == 1 => t,
        Some(t) => return Err(format!("value must hold one element, got {}", t.ty)),
        None => Tensor::scalar_f32(0.0),
    };
    let elem = fill.ty.dtype.size_in_bytes() as u64;
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    MAX_COMPUTED_CONSTANT_BYTES
        .check(count.saturating_mul(elem))
        .map_err(|e| format!("shape {dims:?}: {e}"))?;
    cx.charge_constant((count * elem) as usize)?;
    let data = fill.data.repeat(count as usize);
    let tensor = Tensor::new(TensorType::new(fill.ty.dtype, shape), data.into()).map_err(|e| e.to_string())?;
    Ok(vec![cx.add_const_output(0, tensor)])
}

/// `start, start + delta, ...` up to (excluding) `limit`; all three must be constant scalars.
fn range(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let names = ["start", "limit", "delta"];
    let mut scalars = Vec::new();
    for (i, what) in names.iter().enumerate() {
        let t = cx
            .const_input(i)
            .ok_or_else(|| format!("{what} (input {i}) must be a constant"))?;
        if t.ty.num_elements() != 1 {
            return Err(format!("{what} must be a scalar, got {}", t.ty));
        }
        scalars.push(t.clone());
    }
    let dtype = scalars[0].ty.dtype;
    let tensor = if dtype.is_float() {
        let [start, limit, delta] = [0, 1, 2].map(|i| scalars[i].to_f32_vec()[0] as f64);
        let n = count(limit - start, delta, dtype.size_in_bytes())?;
        cx.charge_constant(n * 4)?;
        let values: Vec<f32> = (0..n).map(|i| (start + i as f64 * delta) as f32).collect();
        Tensor::from_f32(vec![n], &values).cast(dtype)
    } else {
        let [start, limit, delta] = [0, 1, 2].map(|i| scalars[i].to_i64_vec()[0]);
        // In i128: the span of two i64 bounds can exceed i64.
        let n = count(
            (i128::from(limit) - i128::from(start)) as f64,
            delta as f64,
            dtype.size_in_bytes(),
        )?;
        cx.charge_constant(n * 8)?;
        let values: Vec<i64> = (0..n as i64)
            .map(|i| start.wrapping_add(i.wrapping_mul(delta)))
            .collect();
        Tensor::from_i64(vec![n], &values).cast(dtype)
    };
    Ok(vec![cx.add_const_output(0, tensor)])
}

/// ONNX Range's element count, `max(ceil(span / delta), 0)`, refusing empty ranges and ones
/// beyond [`MAX_COMPUTED_CONSTANT_BYTES`] (in elements of `elem_bytes`, and as the i64 or f32
/// values computed first).
fn count(span: f64, delta: f64, elem_bytes: usize) -> Result<usize, String> {
    if delta == 0.0 {
        return Err("delta must not be zero".into());
    }
    let n = (span / delta).ceil();
    if n.is_nan() || n < 1.0 {
        return Err("the range is empty (zero-sized tensors are not supported)".into());
    }
    let bytes = n * elem_bytes.max(8) as f64;
    MAX_COMPUTED_CONSTANT_BYTES
        .check(if bytes >= u64::MAX as f64 {
            u64::MAX
        } else {
            bytes as u64
        })
        .map_err(|e| format!("the range holds {n} elements: {e}"))?;
    Ok(n as usize)
}
