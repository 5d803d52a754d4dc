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
//! - A DequantizeLinear of rows gathered from a quantized table (an embedding, as onnxruntime
//!   quantizes them) gathers from the dequantized table, a weight kept as int8 like the others.
//! - onnxruntime's dynamic quantization: DynamicQuantizeLinear computes the scale and zero point
//!   at run time, as ONNX defines them, and codes carried as floats like QuantizeLinear's.
//!   MatMulInteger and ConvInteger are taken in the form `quantize_dynamic` writes, their result
//!   cast to float and multiplied by the input's and weight's scales (`super::super::dynamic_quant`
//!   hands both scales over as inputs 4 and 5): the product of the two dequantized operands, with
//!   the weight kept as the model's int8 codes.
//!
//! [`Graph::prequantized`]: edgec_passes::ir::Graph::prequantized

use super::{conv, Importer, NodeCx};
use edgec_passes::compressed::Prequantized;
use edgec_passes::ir::{DType, Graph, Tensor, TensorType, ValueId};
use edgec_passes::op::{BinaryOp, Op, ReduceKind, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("DequantizeLinear", dequantize_linear),
    ("QuantizeLinear", quantize_linear),
    ("DynamicQuantizeLinear", dynamic_quantize_linear),
    ("MatMulInteger", matmul_integer),
    ("ConvInteger", conv_integer),
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

/// `(q − zero_point) · scale` for every code of `codes`, in f32 as ONNX computes it.
fn dequantize(codes: &Tensor, scales: &[f32], zero_points: &[i64], layout: &Params) -> Vec<f32> {
    let dims = &codes.ty.shape;
    codes
        .to_i64_vec()
        .iter()
        .enumerate()
        .map(|(k, &q)| {
            let j = layout.index_of(k, dims);
            (q - zero_points[j]) as f32 * scales[j]
        })
        .collect()
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
        if codes.ty.dtype.is_float() || codes.ty.dtype == DType::Bool {
            return Err(format!("the quantized input must hold integers, got {}", codes.ty));
        }
        let (zero_points, _) = zero_point(cx, 2, scales.len(), codes.ty.dtype)?;
        let dense = dequantize(&codes, &scales, &zero_points, &layout);
        let output = cx.add_const_output(0, Tensor::from_f32(x_ty.shape.clone(), &dense).cast(out_dtype));
        record_prequantized(cx.graph, output, x, &codes, scales, &zero_points, layout);
        return Ok(vec![output]);
    }

    // Rows gathered from a quantized table (onnxruntime quantizes embeddings so): gather from
    // the dequantized table instead, a weight like any other.
    if let Some(out) = dequantize_gathered(cx, x, &scale, block_size)? {
        return Ok(out);
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

/// `DequantizeLinear(Gather(table, indices))` of a constant int8/uint8 table with one scale, or
/// one per index along an axis the gather keeps, as `Gather(DequantizeLinear(table), indices)`;
/// `None` when `x` is not such a gather.
fn dequantize_gathered(
    cx: &mut NodeCx,
    x: ValueId,
    scale: &Tensor,
    block_size: i64,
) -> Result<Option<Vec<ValueId>>, String> {
    let Some(gather) = cx.graph.producer(x).map(|n| cx.graph.node(n).clone()) else {
        return Ok(None);
    };
    let Op::Gather { axis: g } = gather.op else {
        return Ok(None);
    };
    let (table_value, indices) = (gather.inputs[0], gather.inputs[1]);
    let Some(table) = cx.graph.constant(table_value).cloned() else {
        return Ok(None);
    };
    if !matches!(table.ty.dtype, DType::I8 | DType::U8) || block_size > 0 {
        return Ok(None);
    }
    // The scale's axis in the gathered tensor, moved to the table's.
    let index_rank = cx.ty(indices).rank();
    let rank = cx.ty(x).rank();
    let axis = if scale.ty.num_elements() == 1 {
        0
    } else {
        let a = super::axis(cx.attr_int("axis", 1)?, rank)?;
        if a < g {
            a
        } else if a >= g + index_rank {
            a + 1 - index_rank
        } else {
            return Err("a per-axis scale along the gathered indices is not supported".into());
        }
    };
    let scales = scale.to_f32_vec();
    let layout = params(&table.ty.shape, &scale.ty, axis as i64, 0)?;
    let (zero_points, _) = zero_point(cx, 2, scales.len(), table.ty.dtype)?;
    let dense = dequantize(&table, &scales, &zero_points, &layout);
    let dense = cx.add_const_step(
        Tensor::from_f32(table.ty.shape.clone(), &dense).cast(scale.ty.dtype),
        "table_dequantized",
    );
    record_prequantized(cx.graph, dense, table_value, &table, scales, &zero_points, layout);
    cx.add(Op::Gather { axis: g }, vec![dense, indices]).map(Some)
}

/// Keep the codes and parameters of the weight `output` was dequantized from, under the name
/// the weight report and `--weights name:` use for it (the quantized initializer's). Only
/// int8/uint8 weights (rank ≥ 2) have a Core ML form; others (an int32 bias) stay dense.
fn record_prequantized(
    graph: &mut Graph,
    output: ValueId,
    codes_value: ValueId,
    codes: &Tensor,
    scales: Vec<f32>,
    zero_points: &[i64],
    layout: Params,
) {
    if !matches!(codes.ty.dtype, DType::I8 | DType::U8) || codes.ty.rank() < 2 {
        return;
    }
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
    is_whole(graph, clip.inputs[0], 3).then_some(clipped)
}

/// Whether `v` holds whole numbers by construction: an integral constant, a `round`, a clip of
/// whole numbers to whole bounds, or a sum or difference of whole numbers (`depth` levels deep).
fn is_whole(graph: &Graph, v: ValueId, depth: usize) -> bool {
    if let Some(t) = graph.constant(v) {
        return t.to_f32_vec().iter().all(|x| x.fract() == 0.0);
    }
    let Some(n) = graph.producer(v) else { return false };
    let node = graph.node(n);
    match node.op {
        Op::Unary(UnaryOp::Round) => true,
        _ if depth == 0 => false,
        Op::Clip {
            min: Some(lo),
            max: Some(hi),
        } => lo.fract() == 0.0 && hi.fract() == 0.0 && is_whole(graph, node.inputs[0], depth - 1),
        Op::Binary(BinaryOp::Add | BinaryOp::Sub) => node.inputs.iter().all(|&i| is_whole(graph, i, depth - 1)),
        _ => false,
    }
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

/// DynamicQuantizeLinear: uint8 codes of `x` with a scale and zero point from its range
/// (widened to hold 0): `scale = (max − min) / 255`, `zero_point = clip(round(−min / scale))`,
/// `y = clip(round(x / scale) + zero_point)`.
fn dynamic_quantize_linear(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, float) = cx.float_input(0)?;
    let all: Vec<usize> = (0..cx.ty(x).rank()).collect();
    let scalar = |cx: &mut NodeCx, v: f32, name: &str| cx.add_const_step(Tensor::scalar_f32(v).cast(float), name);
    let reduce = |kind| Op::Reduce {
        kind,
        axes: all.clone(),
        keep_dims: false,
    };
    let zero = scalar(cx, 0.0, "zero");
    let low = cx.add_step(reduce(ReduceKind::Min), vec![x], "min")?;
    let low = cx.add_step(Op::Binary(BinaryOp::Minimum), vec![low, zero], "min_with_zero")?;
    let high = cx.add_step(reduce(ReduceKind::Max), vec![x], "max")?;
    let high = cx.add_step(Op::Binary(BinaryOp::Maximum), vec![high, zero], "max_with_zero")?;
    let span = cx.add_step(Op::Binary(BinaryOp::Sub), vec![high, low], "span")?;
    let levels = scalar(cx, 255.0, "levels");
    let scale = cx.add_step(Op::Binary(BinaryOp::Div), vec![span, levels], "scale")?;
    let offset = cx.add_step(Op::Binary(BinaryOp::Div), vec![low, scale], "min_in_steps")?;
    let offset = cx.add_step(Op::Binary(BinaryOp::Sub), vec![zero, offset], "zero_point_exact")?;
    let offset = cx.add_step(Op::Unary(UnaryOp::Round), vec![offset], "zero_point_rounded")?;
    let byte = Op::Clip {
        min: Some(0.0),
        max: Some(255.0),
    };
    let zero_point = cx.add_step(byte.clone(), vec![offset], "zero_point_codes")?;
    let scaled = cx.add_step(Op::Binary(BinaryOp::Div), vec![x, scale], "scaled")?;
    let rounded = cx.add_step(Op::Unary(UnaryOp::Round), vec![scaled], "rounded")?;
    let shifted = cx.add_step(Op::Binary(BinaryOp::Add), vec![rounded, zero_point], "shifted")?;
    let codes = cx.add_step(byte, vec![shifted], "codes")?;
    let y = cx.add_output(0, Op::Cast { to: DType::U8 }, vec![codes])?;
    let scale_out = cx.add_output(1, Op::Identity, vec![scale])?;
    let zero_point_out = cx.add_output(2, Op::Cast { to: DType::U8 }, vec![zero_point])?;
    Ok(vec![y, scale_out, zero_point_out])
}

/// `(codes − zero_point) · scale` of a runtime input (input `i`, zero point `i + 2`, its scale
/// input `scale`): DynamicQuantizeLinear's codes, read as floats.
fn dequantized_input(cx: &mut NodeCx, i: usize, scale: usize) -> Result<ValueId, String> {
    let x = cx.required_input(i)?;
    let codes = float_codes(cx.graph, x)
        .ok_or_else(|| format!("input {i} must come from a DynamicQuantizeLinear or QuantizeLinear"))?;
    let float = cx.ty(codes).dtype;
    let zero_point = match cx.input(i + 2) {
        None => cx.add_const_step(Tensor::scalar_f32(0.0).cast(float), "input_zero_point"),
        Some(z) => match cx.const_input(i + 2) {
            Some(t) => {
                let t = t.cast(float);
                cx.add_const_step(t, "input_zero_point")
            }
            None => float_codes(cx.graph, z).ok_or("the input's zero point must come from the same quantizer")?,
        },
    };
    let scale = cx.required_input(scale)?;
    if cx.ty(scale).num_elements() != 1 || cx.ty(zero_point).num_elements() != 1 {
        return Err("the input must be quantized per tensor".into());
    }
    let centred = cx.add_step(Op::Binary(BinaryOp::Sub), vec![codes, zero_point], "input_centred")?;
    cx.add_step(Op::Binary(BinaryOp::Mul), vec![centred, scale], "input_dequantized")
}

/// The constant weight (input 1, zero point input 3, scale input 5) dequantized, with its codes
/// kept: per tensor, or one scale per index along `axis`.
fn dequantized_weight(cx: &mut NodeCx, axis: usize) -> Result<ValueId, String> {
    let w = cx.required_input(1)?;
    let codes = cx
        .const_input(1)
        .cloned()
        .ok_or("the weight (input 1) must be a constant")?;
    if !matches!(codes.ty.dtype, DType::I8 | DType::U8) {
        return Err(format!("the weight must be int8 or uint8, got {}", codes.ty));
    }
    let scale = cx
        .const_input(5)
        .cloned()
        .ok_or("the weight's scale must be a constant")?;
    let scales = scale.to_f32_vec();
    // The scale multiplies the product, so any shape that broadcasts against it ([N], [1, N])
    // counts: one value per index along `axis`, or one for all.
    let mut scale_ty = scale.ty.clone();
    if scale_ty.rank() > 1 {
        scale_ty.shape = vec![scales.len()];
    }
    let layout = params(&codes.ty.shape, &scale_ty, axis as i64, 0)?;
    let (zero_points, _) = match cx.const_input(3) {
        // One zero point for per-channel scales.
        Some(z) if z.ty.num_elements() == 1 && scales.len() > 1 => (vec![z.to_i64_vec()[0]; scales.len()], z.ty.dtype),
        _ => zero_point(cx, 3, scales.len(), codes.ty.dtype)?,
    };
    let dense = dequantize(&codes, &scales, &zero_points, &layout);
    let weight = cx.add_const_step(
        Tensor::from_f32(codes.ty.shape.clone(), &dense).cast(scale.ty.dtype),
        "weight_dequantized",
    );
    record_prequantized(cx.graph, weight, w, &codes, scales, &zero_points, layout);
    Ok(weight)
}

/// The form `quantize_dynamic` writes; anything else is refused rather than run on int32 sums
/// fp16 cannot hold.
fn scaled_form(cx: &NodeCx) -> Result<(), String> {
    if cx.input(4).is_none() || cx.input(5).is_none() {
        return Err(format!(
            "{} is supported as onnxruntime's dynamic quantization writes it: its result cast to float and multiplied by the input's and weight's scales",
            cx.node.op_type
        ));
    }
    Ok(())
}

fn matmul_integer(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    scaled_form(cx)?;
    let a = dequantized_input(cx, 0, 4)?;
    let rank = cx.ty(cx.required_input(1)?).rank();
    if rank != 2 {
        return Err(format!("the weight must be a matrix, got rank {rank}"));
    }
    // Per-column scales (the weight's last axis) or one for all.
    let b = dequantized_weight(cx, 1)?;
    let product = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
    };
    cx.add(product, vec![a, b])
}

fn conv_integer(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    scaled_form(cx)?;
    let x = dequantized_input(cx, 0, 4)?;
    let w = dequantized_weight(cx, 0)?;
    let (x_ty, w_ty) = (cx.ty(x).clone(), cx.ty(w).clone());
    let attrs = conv::conv_attrs(cx, &x_ty, &w_ty)?;
    let Some(bias) = cx.input(6) else {
        return cx.add(Op::Conv(attrs), vec![x, w]);
    };
    // An integer bias in the product's scale (older exports quantize it at run time):
    // `bias · input_scale · weight_scale`, per output channel.
    let float = x_ty.dtype;
    let channels = w_ty.shape[0];
    if cx.ty(bias).num_elements() != channels {
        return Err(format!(
            "the integer bias {} must have one value per output channel",
            cx.ty(bias)
        ));
    }
    let mut shape = vec![1, channels];
    shape.extend(std::iter::repeat_n(1, x_ty.rank() - 2));
    let bias = cx.add_step(Op::Cast { to: float }, vec![bias], "bias_codes")?;
    let bias = cx.add_step(Op::Reshape { shape: shape.clone() }, vec![bias], "bias_per_channel")?;
    let weight_scale = cx
        .const_input(5)
        .ok_or("the weight's scale must be a constant")?
        .to_f32_vec();
    let weight_scale: Vec<f32> = (0..channels)
        .map(|c| weight_scale[if weight_scale.len() == 1 { 0 } else { c }])
        .collect();
    let weight_scale = cx.add_const_step(Tensor::from_f32(shape, &weight_scale).cast(float), "bias_weight_scale");
    let bias = cx.add_step(
        Op::Binary(BinaryOp::Mul),
        vec![bias, weight_scale],
        "bias_weight_scaled",
    )?;
    let input_scale = cx.required_input(4)?;
    let bias = cx.add_step(Op::Binary(BinaryOp::Mul), vec![bias, input_scale], "bias")?;
    let sum = cx.add_step(Op::Conv(attrs), vec![x, w], "unbiased")?;
    cx.add(Op::Binary(BinaryOp::Add), vec![sum, bias])
}
