//! Quantization: QuantizeLinear and DequantizeLinear (opsets 10 to 21: per tensor, per axis,
//! and block-wise along one axis; int8 and uint8).
//!
//! - A DequantizeLinear of a constant (a QDQ model's weight) becomes a constant holding the
//!   values ONNX computes, `(q − zero_point) · scale` in f32, and the codes and parameters are
//!   kept as they are in [`Graph::prequantized`]: `compress_weights` stores such a weight as
//!   Core ML int8/uint8 with the model's own scales and zero points (`constexpr_*`), never
//!   requantized.
//! - Between activations, QuantizeLinear and DequantizeLinear are the fake-quant arithmetic
//!   itself, `clip(round(x / scale) + zero_point, lo, hi)` and `(q − zero_point) · scale`, in
//!   the program's float type. MIL's `quantize`/`dequantize` (iOS 17) are not used: they would
//!   put uint8 tensors between ops for no gain in a float program, and only from iOS 17. The
//!   codes travel as floats: QuantizeLinear ends in a cast to its integer type, and a
//!   DequantizeLinear reading that cast reads the float codes before it instead (exact, as
//!   they are whole numbers in range). A quantized tensor read any other way at run time is
//!   refused.
//!
//! [`Graph::prequantized`]: edgec_passes::ir::Graph::prequantized

use super::{Importer, NodeCx};
use edgec_passes::compressed::Prequantized;
use edgec_passes::ir::{DType, Graph, Tensor, TensorType, ValueId};
use edgec_passes::op::{BinaryOp, Op, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("DequantizeLinear", dequantize_linear),
    ("QuantizeLinear", quantize_linear),
];

/// How the scale and zero point map onto the quantized tensor: `shape` has the tensor's rank,
/// each dim 1 (shared) or the number of blocks along it (`block[d]` elements each).
struct Params {
    shape: Vec<usize>,
    block: Vec<usize>,
}

impl Params {
    /// The parameter index of element `flat` of a tensor of shape `dims`.
    fn index_of(&self, flat: usize, dims: &[usize]) -> usize {
        let mut rest = flat;
        let mut index = 0;
        let mut stride = 1;
        for d in (0..dims.len()).rev() {
            let coord = rest % dims[d];
            rest /= dims[d];
            index += coord / self.block[d] * stride;
            stride *= self.shape[d];
        }
        index
    }
}

/// The layout of `scale` (`count` values) over a tensor of shape `dims`: one value (per
/// tensor), one per index along `axis` (per axis), or with `block_size`, one per block of
/// `block_size` elements along `axis` (block-wise; the last block may be short).
fn params(dims: &[usize], scale: &TensorType, axis: i64, block_size: i64) -> Result<Params, String> {
    let rank = dims.len();
    let count = scale.num_elements();
    let mut shape = vec![1; rank];
    let mut block = dims.to_vec();
    if block_size > 0 {
        let a = super::axis(axis, rank)?;
        let b = block_size as usize;
        let blocks = dims[a].div_ceil(b);
        let mut expected = dims.to_vec();
        expected[a] = blocks;
        if scale.shape != expected {
            return Err(format!(
                "a block-wise scale for {dims:?} with block_size {b} on axis {a} must have shape {expected:?}, got {scale}"
            ));
        }
        for d in 0..rank {
            shape[d] = expected[d];
            block[d] = if d == a { b } else { 1 };
        }
    } else if count == 1 && scale.rank() <= 1 {
        // Per tensor: every element shares the one scale.
    } else if scale.rank() == 1 && rank > 0 {
        let a = super::axis(axis, rank)?;
        if count != dims[a] {
            return Err(format!(
                "a per-axis scale must have {} values (the size of axis {a}), got {scale}",
                dims[a]
            ));
        }
        shape[a] = count;
        block[a] = 1;
    } else {
        return Err(format!(
            "scale {scale} fits neither per-tensor, per-axis nor block-wise quantization"
        ));
    }
    Ok(Params { shape, block })
}

/// The integer range of a quantized type.
fn range(dtype: DType) -> Result<(i64, i64), String> {
    match dtype {
        DType::U8 => Ok((0, 255)),
        DType::I8 => Ok((-128, 127)),
        other => Err(format!(
            "{} quantization is not supported (int8 and uint8 are)",
            other.name()
        )),
    }
}

/// The zero point (input `i`) as integers, `count` of them (zeros when absent), and the
/// quantized type it names (`default` when absent).
fn zero_point(cx: &NodeCx, i: usize, count: usize, default: DType) -> Result<(Vec<i64>, DType), String> {
    if cx.input(i).is_none() {
        return Ok((vec![0; count], default));
    }
    let zp = cx
        .const_input(i)
        .ok_or_else(|| format!("the zero point (input {i}) must be a constant"))?;
    if zp.ty.num_elements() != count {
        return Err(format!(
            "the zero point {} must have as many values as the scale ({count})",
            zp.ty
        ));
    }
    Ok((zp.to_i64_vec(), zp.ty.dtype))
}

/// A constant parameter (`values`, laid out as `params`) in a shape that broadcasts against a
/// tensor of shape `dims`: itself when not block-wise, else repeated over each block.
fn broadcastable(values: &[f32], params: &Params, dims: &[usize]) -> Tensor {
    if params
        .block
        .iter()
        .zip(&params.shape)
        .zip(dims)
        .all(|((&b, &s), &d)| s == 1 || b == 1 && s == d)
    {
        return Tensor::from_f32(params.shape.clone(), values);
    }
    let count: usize = dims.iter().product();
    let full: Vec<f32> = (0..count).map(|k| values[params.index_of(k, dims)]).collect();
    Tensor::from_f32(dims.to_vec(), &full)
}

fn dequantize_linear(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    let scale = cx
        .const_input(1)
        .ok_or("the scale (input 1) must be a constant")?
        .clone();
    if !scale.ty.dtype.is_float() {
        return Err(format!("the scale must be a float tensor, got {}", scale.ty));
    }
    let block_size = if cx.opset >= 21 {
        cx.attr_int("block_size", 0)?
    } else {
        0
    };
    let layout = params(&x_ty.shape, &scale.ty, cx.attr_int("axis", 1)?, block_size)?;
    let scales = scale.to_f32_vec();
    let out_dtype = scale.ty.dtype;

    if let Some(codes) = cx.const_input(0).cloned() {
        let (zero_points, _) = zero_point(cx, 2, scales.len(), codes.ty.dtype)?;
        let values = codes.to_i64_vec();
        let dense: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(k, &q)| {
                let j = layout.index_of(k, &x_ty.shape);
                (q - zero_points[j]) as f32 * scales[j]
            })
            .collect();
        let output = cx.add_const_output(0, Tensor::from_f32(x_ty.shape.clone(), &dense).cast(out_dtype));
        if matches!(codes.ty.dtype, DType::I8 | DType::U8) && x_ty.rank() >= 2 {
            record_prequantized(cx.graph, output, x, &codes, scales, &zero_points, layout);
        }
        return Ok(vec![output]);
    }

    // Codes computed at run time: they must be QuantizeLinear's, carried as floats.
    let codes = float_codes(cx.graph, x).ok_or_else(|| {
        format!(
            "DequantizeLinear of {x_ty} computed at run time is supported only straight after a QuantizeLinear (Core ML computes no int8 tensors)"
        )
    })?;
    let (zero_points, _) = zero_point(cx, 2, scales.len(), x_ty.dtype)?;
    let dims = x_ty.shape.clone();
    let zero: Vec<f32> = zero_points.iter().map(|&z| z as f32).collect();
    let float = cx.ty(codes).dtype;
    let zero = cx.add_const_step(broadcastable(&zero, &layout, &dims).cast(float), "zero_point");
    let scale = cx.add_const_step(broadcastable(&scales, &layout, &dims).cast(float), "scale");
    let centred = cx.add_step(Op::Binary(BinaryOp::Sub), vec![codes, zero], "centred")?;
    cx.add(Op::Binary(BinaryOp::Mul), vec![centred, scale])
}

/// Keep the codes and parameters of the weight `output` was dequantized from, under the name
/// the weight report and `--weights name:` use for it (the quantized initializer's).
fn record_prequantized(
    graph: &mut Graph,
    output: ValueId,
    codes_value: ValueId,
    codes: &Tensor,
    scales: Vec<f32>,
    zero_points: &[i64],
    layout: Params,
) {
    graph.record_derived(output, codes_value);
    let name = graph.initializer_name(output).to_string();
    let unsigned = codes.ty.dtype == DType::U8;
    graph.prequantized.insert(
        name,
        Prequantized {
            shape: codes.ty.shape.clone(),
            unsigned,
            codes: codes.data.to_vec(),
            scales,
            zero_points: zero_points.iter().map(|&z| z as u8).collect(),
            param_shape: layout.shape,
        },
    );
}

/// The float codes behind `v` when `v` is a QuantizeLinear's cast to its integer type: the
/// value before the cast, which holds whole numbers already clipped to the type's range.
fn float_codes(graph: &Graph, v: ValueId) -> Option<ValueId> {
    let cast = graph.node(graph.producer(v)?);
    let Op::Cast { to } = cast.op else { return None };
    let (lo, hi) = range(to).ok()?;
    let clipped = cast.inputs[0];
    let clip = graph.node(graph.producer(clipped)?);
    let Op::Clip {
        min: Some(min),
        max: Some(max),
    } = clip.op
    else {
        return None;
    };
    if f64::from(min) < lo as f64 || f64::from(max) > hi as f64 {
        return None;
    }
    let is_rounded = |value: ValueId| {
        graph
            .producer(value)
            .is_some_and(|n| graph.node(n).op == Op::Unary(UnaryOp::Round))
    };
    let whole_constant = |value: ValueId| {
        graph
            .constant(value)
            .is_some_and(|t| t.to_f32_vec().iter().all(|v| v.fract() == 0.0))
    };
    let source = clip.inputs[0];
    let whole = is_rounded(source)
        || graph.producer(source).is_some_and(|n| {
            let node = graph.node(n);
            node.op == Op::Binary(BinaryOp::Add)
                && node.inputs.iter().any(|&i| is_rounded(i))
                && node.inputs.iter().any(|&i| whole_constant(i))
        });
    whole.then_some(clipped)
}

fn quantize_linear(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, float) = cx.float_input(0)?;
    let dims = cx.ty(x).shape.clone();
    let scale = cx
        .const_input(1)
        .ok_or("the scale (input 1) must be a constant")?
        .clone();
    let block_size = if cx.opset >= 21 {
        cx.attr_int("block_size", 0)?
    } else {
        0
    };
    let layout = params(&dims, &scale.ty, cx.attr_int("axis", 1)?, block_size)?;
    let scales = scale.to_f32_vec();
    let default = match cx.attr_int("output_dtype", 0)? {
        0 | 2 => DType::U8,
        3 => DType::I8,
        other => return Err(format!("output_dtype {other} is not supported (int8 and uint8 are)")),
    };
    let (zero_points, dtype) = zero_point(cx, 2, scales.len(), default)?;
    let (lo, hi) = range(dtype)?;
    let scale = cx.add_const_step(broadcastable(&scales, &layout, &dims).cast(float), "scale");
    let zero: Vec<f32> = zero_points.iter().map(|&z| z as f32).collect();
    let zero = cx.add_const_step(broadcastable(&zero, &layout, &dims).cast(float), "zero_point");
    let scaled = cx.add_step(Op::Binary(BinaryOp::Div), vec![x, scale], "scaled")?;
    // Round half to even, as ONNX specifies (and MIL's `round` does).
    let rounded = cx.add_step(Op::Unary(UnaryOp::Round), vec![scaled], "rounded")?;
    let shifted = cx.add_step(Op::Binary(BinaryOp::Add), vec![rounded, zero], "shifted")?;
    let clip = Op::Clip {
        min: Some(lo as f32),
        max: Some(hi as f32),
    };
    let clipped = cx.add_step(clip, vec![shifted], "codes")?;
    cx.add(Op::Cast { to: dtype }, vec![clipped])
}
