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
//! plain integer indices. The iOS16 `constexpr_lut_to_dense` is the exception: its indices
//! arrive as a packed `uint8[M]` byte stream and are unpacked here, by the same rule.
//!
//! Semantics follow coremltools 9 (`ops/defs/iOS16/constexpr_ops.py`,
//! `ops/defs/iOS18/compression.py` and the numpy references in `optimize/_utils.py`); every
//! check coremltools' type inference makes is an error here too. Implemented:
//! `constexpr_cast`, `constexpr_lut_to_dense` (both forms, including vector palettization),
//! `constexpr_affine_dequantize`, `constexpr_blockwise_shift_scale`. Still to add:
//! `constexpr_sparse_to_dense`, `constexpr_sparse_blockwise_shift_scale`,
//! `constexpr_lut_to_sparse`.
//!
//! fp16 results are rounded through IEEE half here, whatever the interpreter's fp16 option:
//! the result of a decompression op *is* the fp16 weight the device stores.

use super::super::eval::OpCtx;
use super::super::tensor::{round_to_fp16, strides, Buf, DType, OpResult, Tensor};
use super::{norm_axis, OpFn};
use crate::proto::coreml::mil_spec::{argument::binding, dimension, tensor_value, value, value_type, DataType, Value};

pub(super) const OPS: &[(&str, OpFn)] = &[
    ("constexpr_cast", constexpr_cast),
    ("constexpr_lut_to_dense", constexpr_lut_to_dense),
    ("constexpr_affine_dequantize", constexpr_affine_dequantize),
    ("constexpr_blockwise_shift_scale", constexpr_blockwise_shift_scale),
];

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

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// A float result of `dtype` (fp16 or fp32); fp16 values are rounded through half.
fn float_result(dtype: DType, shape: Vec<usize>, mut data: Vec<f32>) -> Tensor {
    if dtype == DType::Fp16 {
        round_to_fp16(&mut data);
    }
    Tensor::float(dtype, shape, data)
}

fn round_if_fp16(dtype: DType, x: f32) -> f32 {
    if dtype == DType::Fp16 {
        half::f16::from_f32(x).to_f32()
    } else {
        x
    }
}

/// The elements of a numeric tensor (float or integer storage) as `f32`.
fn numbers(t: &Tensor, what: &str) -> OpResult<Vec<f32>> {
    match &t.buf {
        Buf::F(v) => Ok(v.to_vec()),
        // Every integer type these ops accept (int4..uint8) is exact in f32.
        Buf::I(v) => Ok(v.iter().map(|&x| x as f32).collect()),
        _ => Err(format!("{what} must be numeric, got {}", t.type_string())),
    }
}

fn check_dtype(t: &Tensor, what: &str, allowed: &[DType]) -> OpResult<()> {
    if allowed.contains(&t.dtype) {
        Ok(())
    } else {
        let names: Vec<String> = allowed.iter().map(|d| d.name()).collect();
        Err(format!(
            "{what} must be one of {{{}}}, got {}",
            names.join(", "),
            t.type_string()
        ))
    }
}

fn check_len(t: &Tensor, what: &str) -> OpResult<()> {
    let n = t
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("{what} {} is too large", t.type_string()))?;
    if n != t.len() {
        return Err(format!(
            "{what} {} holds {} values, expected {n}",
            t.type_string(),
            t.len()
        ));
    }
    Ok(())
}

/// A required int32 scalar parameter (rank 0, or a single-element vector).
fn int_scalar(t: &Tensor, what: &str) -> OpResult<i32> {
    match t.ints().map_err(|e| format!("{what}: {e}"))? {
        [v] if t.rank() <= 1 => Ok(*v),
        _ => Err(format!("{what} must be an int32 scalar, got {}", t.type_string())),
    }
}

/// Step a row-major multi-index `coords` within `shape` to the next element.
fn advance(coords: &mut [usize], shape: &[usize]) {
    for d in (0..coords.len()).rev() {
        coords[d] += 1;
        if coords[d] < shape[d] {
            return;
        }
        coords[d] = 0;
    }
}

/// The raw `Value` a parameter is given as, when it is an inline value (an iOS16 attribute or
/// an iOS18 `Binding.value`) rather than the name of another op's result.
fn inline_value<'a>(ctx: &'a OpCtx, name: &str) -> Option<&'a Value> {
    match ctx.op.inputs.get(name) {
        Some(arg) => match arg.arguments.as_slice() {
            [one] => match &one.binding {
                Some(binding::Binding::Value(v)) => Some(v),
                _ => None,
            },
            _ => None,
        },
        None => ctx.op.attributes.get(name),
    }
}

/// The iOS16 `shape` parameter (`uint32[K]`), if given.
///
/// The interpreter's value decoder has no `uint32` element type, so a `uint32` immediate
/// (coremltools writes it as little-endian `bytes`, coreml-format.md §4) is decoded here. Any
/// other form (an int32 value, a named result) goes through the ordinary accessors.
fn shape_param(ctx: &OpCtx) -> OpResult<Option<Vec<usize>>> {
    if let Some(v) = inline_value(ctx, "shape") {
        if let Some(value_type::Type::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.r#type.as_ref()) {
            if t.data_type == DataType::Uint32 as i32 {
                return uint32_vector(v, t)
                    .map(Some)
                    .map_err(|e| format!("parameter shape: {e}"));
            }
        }
    }
    match ctx.opt("shape")? {
        None => Ok(None),
        Some(t) => {
            if t.rank() != 1 {
                return Err(format!("shape must be a vector, got {}", t.type_string()));
            }
            let v = t.ints().map_err(|e| format!("parameter shape: {e}"))?;
            v.iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("shape must be non-negative, got {v:?}")))
                .collect::<OpResult<Vec<_>>>()
                .map(Some)
        }
    }
}

/// Decode a `uint32[K]` immediate.
fn uint32_vector(v: &Value, t: &crate::proto::coreml::mil_spec::TensorType) -> OpResult<Vec<usize>> {
    let count = match (t.rank, t.dimensions.as_slice()) {
        (1, [d]) => match &d.dimension {
            Some(dimension::Dimension::Constant(c)) => {
                usize::try_from(c.size).map_err(|_| format!("dimension {} is too large", c.size))?
            }
            _ => return Err("uint32 vector of unknown length".into()),
        },
        _ => return Err(format!("must be a uint32 vector, got rank {}", t.rank)),
    };
    let imm = match &v.value {
        Some(value::Value::ImmediateValue(imm)) => imm,
        Some(value::Value::BlobFileValue(_)) => {
            return Err("uint32 blob values are not supported (coremltools writes `shape` inline)".into())
        }
        None => return Err("value has neither an immediate nor a blob payload".into()),
    };
    let payload = match &imm.value {
        Some(value::immediate_value::Value::Tensor(t)) => t.value.as_ref(),
        _ => return Err("uint32 immediate must be a tensor".into()),
    };
    use tensor_value::Value as V;
    let values: Vec<u64> = match payload {
        None => Vec::new(),
        Some(V::Bytes(b)) => {
            if b.values.len() != count.checked_mul(4).ok_or("uint32 vector too long")? {
                return Err(format!(
                    "uint32 immediate of {count} values has {} bytes, expected {}",
                    b.values.len(),
                    count * 4
                ));
            }
            b.values
                .chunks_exact(4)
                .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        // Lenient, as the general decoder is: the meaning of these is unambiguous.
        Some(V::Ints(i)) => i
            .values
            .iter()
            .map(|&x| u64::try_from(x).map_err(|_| format!("uint32 immediate holds {x}")))
            .collect::<OpResult<_>>()?,
        Some(V::LongInts(l)) => l
            .values
            .iter()
            .map(|&x| {
                u32::try_from(x)
                    .map(u64::from)
                    .map_err(|_| format!("uint32 immediate holds {x}"))
            })
            .collect::<OpResult<_>>()?,
        Some(_) => return Err("uint32 immediate must be stored as bytes".into()),
    };
    if values.len() != count {
        return Err(format!(
            "uint32 immediate holds {} values, expected {count}",
            values.len()
        ));
    }
    values
        .into_iter()
        .map(|x| usize::try_from(x).map_err(|_| format!("dimension {x} is too large")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// constexpr_lut_to_dense
// ---------------------------------------------------------------------------------------

const LUT_DTYPES: &[DType] = &[DType::Int8, DType::Uint8, DType::Fp16, DType::Fp32];

/// `constexpr_lut_to_dense`, both forms:
/// * iOS16/17: `indices` uint8[M] packed, `lut` T[2^n], `shape` uint32[K];
/// * iOS18: `indices` uintN with the logical shape, `lut` T[g.., 2^n, VECTOR_SIZE],
///   optional `vector_axis`.
///
/// The form is the presence of `shape`, which only the iOS16 op has.
fn constexpr_lut_to_dense(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let indices = ctx.get("indices")?;
    let lut = ctx.get("lut")?;
    check_dtype(&lut, "lut", LUT_DTYPES)?;
    check_len(&indices, "indices")?;
    check_len(&lut, "lut")?;
    let out = match shape_param(ctx)? {
        Some(shape) => {
            if ctx.opt("vector_axis")?.is_some() {
                return Err("vector_axis is not a parameter of the iOS16 form (the one with shape)".into());
            }
            lut_packed(&indices, &lut, shape)?
        }
        None if lut.rank() == 1 => {
            return Err(format!(
                "lut {} is the iOS16 form, which needs a shape parameter (iOS18 luts have rank(indices)+2)",
                lut.type_string()
            ))
        }
        None => lut_grouped(&indices, &lut, ctx.opt("vector_axis")?)?,
    };
    Ok(vec![out])
}

/// The output of a LUT op: `lut`'s elements at `src`, as `lut`'s dtype.
fn gather(lut: &Tensor, shape: Vec<usize>, src: impl Iterator<Item = usize>) -> OpResult<Tensor> {
    match &lut.buf {
        Buf::F(v) => {
            let data = src.map(|i| v[i]).collect();
            Ok(float_result(lut.dtype, shape, data))
        }
        Buf::I(v) => Ok(Tensor::int(lut.dtype, shape, src.map(|i| v[i]).collect())),
        _ => Err(format!("lut must be numeric, got {}", lut.type_string())),
    }
}

/// iOS16 form: unpack `n`-bit indices LSB-first from the byte stream, look up, reshape.
fn lut_packed(indices: &Tensor, lut: &Tensor, shape: Vec<usize>) -> OpResult<Tensor> {
    if indices.dtype != DType::Uint8 || indices.rank() != 1 {
        return Err(format!(
            "indices of the iOS16 form must be a packed uint8 vector, got {}",
            indices.type_string()
        ));
    }
    if lut.rank() != 1 {
        return Err(format!(
            "lut of the iOS16 form must be a vector, got {}",
            lut.type_string()
        ));
    }
    let entries = lut.len();
    if !matches!(entries, 2 | 4 | 16 | 64 | 256) {
        return Err(format!(
            "lut must have 2, 4, 16, 64 or 256 entries (1, 2, 4, 6 or 8 bits), got {entries}"
        ));
    }
    let nbits = entries.trailing_zeros() as usize;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    let needed = count
        .checked_mul(nbits)
        .ok_or_else(|| format!("shape {shape:?} is too large"))?
        .div_ceil(8);
    if indices.len() != needed {
        return Err(format!(
            "indices hold {} bytes, but {count} {nbits}-bit indices (shape {shape:?}) need {needed}",
            indices.len()
        ));
    }
    let bytes = indices
        .ints()?
        .iter()
        .map(|&b| u8::try_from(b).map_err(|_| format!("indices byte {b} is not a uint8")))
        .collect::<OpResult<Vec<u8>>>()?;
    let mask = (1u16 << nbits) - 1;
    // Element i is bits [i·n, i·n+n) of the stream; n ≤ 8, so it spans at most two bytes.
    let src = (0..count).map(|i| {
        let bit = i * nbits;
        let lo = u16::from(bytes[bit / 8]);
        let hi = u16::from(bytes.get(bit / 8 + 1).copied().unwrap_or(0));
        usize::from(((lo | hi << 8) >> (bit % 8)) & mask)
    });
    gather(lut, shape, src)
}

/// iOS18 form: per-group (and optionally vector) palettization over unpacked indices.
fn lut_grouped(indices: &Tensor, lut: &Tensor, vector_axis: Option<Tensor>) -> OpResult<Tensor> {
    let k = indices.rank();
    if k < 1 {
        return Err("indices must have rank ≥ 1, got a scalar".into());
    }
    let width = match indices.dtype {
        DType::UintN(b) if matches!(b, 1 | 2 | 3 | 4 | 6) => usize::from(b),
        DType::Uint8 => 8,
        _ => {
            return Err(format!(
                "indices must be uint1, uint2, uint3, uint4, uint6 or uint8, got {}",
                indices.type_string()
            ))
        }
    };
    if lut.rank() != k + 2 {
        return Err(format!(
            "lut must have rank rank(indices)+2 = {}, got {} (indices {})",
            k + 2,
            lut.type_string(),
            indices.type_string()
        ));
    }
    let groups = &lut.shape[..k];
    let mut block = Vec::with_capacity(k);
    for (i, (&n, &g)) in indices.shape.iter().zip(groups).enumerate() {
        if g == 0 || n % g != 0 {
            return Err(format!(
                "indices dim {i} ({n}) is not divisible by lut dim {i} ({g}): indices {}, lut {}",
                indices.type_string(),
                lut.type_string()
            ));
        }
        block.push(n / g);
    }
    let entries = lut.shape[k];
    let vs = lut.shape[k + 1];
    if !entries.is_power_of_two() || entries.trailing_zeros() as usize != width {
        return Err(format!(
            "lut has {entries} entries per table (dim {k}), but {} indices need 2^{width} = {}",
            indices.dtype.name(),
            1usize << width
        ));
    }
    if vs == 0 {
        return Err(format!(
            "lut VECTOR_SIZE (last dim) must be ≥ 1, got {}",
            lut.type_string()
        ));
    }
    let axis = match &vector_axis {
        Some(t) => {
            let a = int_scalar(t, "vector_axis")?;
            if t.rank() != 0 {
                return Err(format!("vector_axis must be a scalar, got {}", t.type_string()));
            }
            Some(norm_axis(a, k).map_err(|e| format!("vector_axis: {e}"))?)
        }
        None if vs > 1 => {
            return Err(format!(
                "lut {} has VECTOR_SIZE {vs} > 1, which needs a vector_axis",
                lut.type_string()
            ))
        }
        None => None,
    };
    let total = indices
        .len()
        .checked_mul(vs)
        .ok_or_else(|| format!("output of {} with VECTOR_SIZE {vs} is too large", indices.type_string()))?;
    let mut out_shape = indices.shape.clone();
    if let Some(a) = axis {
        // Cannot overflow: the product of out_shape is `total`.
        out_shape[a] *= vs;
    }

    // Validate every index first, so the gather below cannot fail.
    let idx = indices.ints()?;
    if let Some((at, &bad)) = idx
        .iter()
        .enumerate()
        .find(|(_, &v)| usize::try_from(v).map_or(true, |v| v >= entries))
    {
        return Err(format!(
            "index {bad} at element {at} of indices is outside the lut's {entries} entries"
        ));
    }
    let plan = GroupedLut {
        block,
        group_strides: strides(groups),
        out_strides: strides(&out_shape),
        entries,
        vs,
        axis,
        total,
    };
    let shape = &indices.shape;
    match &lut.buf {
        Buf::F(v) => Ok(float_result(lut.dtype, out_shape, plan.expand(v, idx, shape))),
        Buf::I(v) => Ok(Tensor::int(lut.dtype, out_shape, plan.expand(v, idx, shape))),
        _ => Err(format!("lut must be numeric, got {}", lut.type_string())),
    }
}

/// A validated iOS18 LUT decompression: which table each index reads, where its value goes.
struct GroupedLut {
    /// Indices per LUT group along each axis.
    block: Vec<usize>,
    /// Row-major strides of the group grid `lut.shape[..K]`.
    group_strides: Vec<usize>,
    out_strides: Vec<usize>,
    entries: usize,
    vs: usize,
    axis: Option<usize>,
    total: usize,
}

impl GroupedLut {
    /// The dense output. Every index must already be known to be `< entries`.
    fn expand<T: Copy + Default>(&self, lut: &[T], idx: &[i32], shape: &[usize]) -> Vec<T> {
        let k = shape.len();
        let table = self.entries * self.vs;
        let mut out = vec![T::default(); self.total];
        let mut coords = vec![0usize; k];
        for &ix in idx {
            let group: usize = (0..k).map(|d| coords[d] / self.block[d] * self.group_strides[d]).sum();
            let base = group * table + ix as usize * self.vs;
            match self.axis {
                None => {
                    let o: usize = (0..k).map(|d| coords[d] * self.out_strides[d]).sum();
                    out[o] = lut[base];
                }
                Some(a) => {
                    // The vector is laid along `a`: element v goes to coords[a]·VS + v.
                    let o: usize = (0..k)
                        .map(|d| if d == a { coords[d] * self.vs } else { coords[d] } * self.out_strides[d])
                        .sum();
                    for v in 0..self.vs {
                        out[o + v * self.out_strides[a]] = lut[base + v];
                    }
                }
            }
            advance(&mut coords, shape);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// constexpr_affine_dequantize (iOS16)
// ---------------------------------------------------------------------------------------

/// iOS16 `constexpr_affine_dequantize`: `scale·(quantized_data − zero_point)`, with `scale`
/// and `zero_point` scalars or vectors along `axis`; the result has `scale`'s dtype. Computed
/// in f32 and then cast, as coremltools' reference does.
fn constexpr_affine_dequantize(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let q = ctx.get("quantized_data")?;
    let zp = ctx.get("zero_point")?;
    let scale = ctx.get("scale")?;
    let axis = int_scalar(&ctx.get("axis")?, "axis")?;
    check_dtype(&q, "quantized_data", &[DType::Uint8, DType::Int8])?;
    check_dtype(&zp, "zero_point", &[DType::Uint8, DType::Int8, DType::Fp32])?;
    check_dtype(&scale, "scale", &[DType::Fp16, DType::Fp32])?;
    for (t, what) in [(&q, "quantized_data"), (&zp, "zero_point"), (&scale, "scale")] {
        check_len(t, what)?;
    }
    let rank = q.rank();
    if rank < 1 {
        return Err("quantized_data must have rank ≥ 1, got a scalar".into());
    }
    let axis = norm_axis(axis, rank).map_err(|e| format!("{e} (quantized_data {})", q.type_string()))?;
    let channels = q.shape[axis];
    for (t, what) in [(&scale, "scale"), (&zp, "zero_point")] {
        match t.rank() {
            0 => {}
            1 if t.shape[0] == channels => {}
            1 => {
                return Err(format!(
                    "{what} {} must have quantized_data.shape[{axis}] = {channels} values (quantized_data {})",
                    t.type_string(),
                    q.type_string()
                ))
            }
            _ => return Err(format!("{what} must be a scalar or a vector, got {}", t.type_string())),
        }
    }
    let inner: usize = q.shape[axis + 1..].iter().product();
    let s = numbers(&scale, "scale")?;
    let z = numbers(&zp, "zero_point")?;
    let pick = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
    let data = q
        .ints()?
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = i.checked_div(inner).map_or(0, |b| b % channels);
            (x as f32 - pick(&z, c)) * pick(&s, c)
        })
        .collect();
    Ok(vec![float_result(scale.dtype, q.shape.clone(), data)])
}

// ---------------------------------------------------------------------------------------
// constexpr_blockwise_shift_scale (iOS18)
// ---------------------------------------------------------------------------------------

/// iOS18 `constexpr_blockwise_shift_scale`: `scale[i/b]·(data[i] − offset[i/b])` with block
/// `b = data.shape / scale.shape` per axis; the result has `scale`'s dtype.
///
/// Arithmetic follows coremltools' numpy reference: `data` is first cast to `scale`'s dtype,
/// and for fp16 the difference and the product are each rounded to fp16 (except that an fp32
/// `offset` promotes the difference to fp32). For integer data and offsets the difference is
/// exact, so only the product rounds.
fn constexpr_blockwise_shift_scale(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    const SRC: &[DType] = &[
        DType::Int4,
        DType::UintN(4),
        DType::Int8,
        DType::Uint8,
        DType::Fp16,
        DType::Fp32,
    ];
    let data = ctx.get("data")?;
    let scale = ctx.get("scale")?;
    let offset = ctx.opt("offset")?;
    check_dtype(&data, "data", SRC)?;
    check_dtype(&scale, "scale", &[DType::Fp16, DType::Fp32])?;
    check_len(&data, "data")?;
    check_len(&scale, "scale")?;
    let rank = data.rank();
    if rank < 1 {
        return Err("data must have rank ≥ 1, got a scalar".into());
    }
    if scale.rank() != rank {
        return Err(format!(
            "scale {} must have the rank of data {}",
            scale.type_string(),
            data.type_string()
        ));
    }
    let mut block = Vec::with_capacity(rank);
    for (i, (&n, &s)) in data.shape.iter().zip(&scale.shape).enumerate() {
        if s == 0 || n % s != 0 {
            return Err(format!(
                "data dim {i} ({n}) is not a multiple of scale dim {i} ({s}): data {}, scale {}",
                data.type_string(),
                scale.type_string()
            ));
        }
        block.push(n / s);
    }
    if let Some(o) = &offset {
        check_dtype(o, "offset", SRC)?;
        check_len(o, "offset")?;
        if o.shape != scale.shape {
            return Err(format!(
                "offset {} must have the shape of scale {}",
                o.type_string(),
                scale.type_string()
            ));
        }
        if !o.dtype.is_float() && o.dtype != data.dtype {
            return Err(format!(
                "an integer offset must have data's dtype {}, got {}",
                data.dtype.name(),
                o.type_string()
            ));
        }
    }
    let out_dtype = scale.dtype;
    let s = numbers(&scale, "scale")?;
    let off = offset.as_ref().map(|o| numbers(o, "offset")).transpose()?;
    let round_diff = offset.as_ref().is_none_or(|o| o.dtype != DType::Fp32);
    let d = numbers(&data, "data")?;
    let scale_strides = strides(&scale.shape);
    let mut coords = vec![0usize; rank];
    let mut out = Vec::with_capacity(d.len());
    for &x in &d {
        let j: usize = (0..rank).map(|a| coords[a] / block[a] * scale_strides[a]).sum();
        let x = round_if_fp16(out_dtype, x);
        let diff = match &off {
            Some(o) => {
                let diff = x - o[j];
                if round_diff {
                    round_if_fp16(out_dtype, diff)
                } else {
                    diff
                }
            }
            None => x,
        };
        out.push(s[j] * diff);
        advance(&mut coords, &data.shape);
    }
    Ok(vec![float_result(out_dtype, data.shape.clone(), out)])
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{floats, ints, run_op, string};
    use super::super::super::eval::{execute, Env};
    use super::super::super::weights::WeightStore;
    use super::*;
    use crate::coreml::mil::{immediate_tensor, named, tensor_type, Immediate};
    use crate::proto::coreml::mil_spec::{argument::Binding, Argument, Operation};
    use bytes::Bytes;

    fn int_t(dtype: DType, shape: &[usize], v: &[i32]) -> Tensor {
        Tensor::int(dtype, shape.to_vec(), v.to_vec())
    }

    fn fp16(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::float(DType::Fp16, shape.to_vec(), v.to_vec())
    }

    fn u8s(v: &[i32]) -> Tensor {
        int_t(DType::Uint8, &[v.len()], v)
    }

    fn scalar_i32(v: i32) -> Tensor {
        int_t(DType::Int32, &[], &[v])
    }

    /// iOS16 form through the test harness (shape as an int32 vector).
    fn lut16(packed: &[i32], lut: Tensor, shape: &[i32]) -> OpResult<Tensor> {
        run_op(
            "constexpr_lut_to_dense",
            vec![("indices", u8s(packed)), ("lut", lut), ("shape", ints(shape))],
        )
    }

    fn range(n: usize, f: impl Fn(usize) -> f32) -> Vec<f32> {
        (0..n).map(f).collect()
    }

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

    #[test]
    fn lut16_four_bit_low_nibble_first() {
        // Byte 0x21 holds e0 = 1 (low nibble) and e1 = 2.
        let lut = floats(&[16], &range(16, |i| 10.0 + i as f32));
        let y = lut16(&[0x21, 0x43], lut, &[2, 2]).unwrap();
        assert_eq!(y.dtype, DType::Fp32);
        assert_eq!(y.shape, vec![2, 2]);
        assert_eq!(y.floats().unwrap(), &[11.0, 12.0, 13.0, 14.0]);
    }

    #[test]
    fn lut16_two_bit() {
        // [0, 1, 2, 3, 3]: byte 0 = 0 | 1<<2 | 2<<4 | 3<<6 = 0xe4, byte 1 = 0x03.
        let y = lut16(&[0xe4, 0x03], fp16(&[4], &[0.5, 1.5, 2.5, 3.5]), &[5]).unwrap();
        assert_eq!(y.dtype, DType::Fp16);
        assert_eq!(y.floats().unwrap(), &[0.5, 1.5, 2.5, 3.5, 3.5]);
    }

    #[test]
    fn lut16_one_bit_int8_lut() {
        // [1,0,1,1,0,0,0,1,1]: byte 0 = 0b1000_1101, byte 1 = 0x01.
        let lut = int_t(DType::Int8, &[2], &[-7, 9]);
        let y = lut16(&[0x8d, 0x01], lut, &[3, 3]).unwrap();
        assert_eq!(y.dtype, DType::Int8);
        assert_eq!(y.shape, vec![3, 3]);
        assert_eq!(y.ints().unwrap(), &[9, -7, 9, 9, -7, -7, -7, 9, 9]);
    }

    #[test]
    fn lut16_six_bit_crosses_bytes() {
        // Same bit stream as weights.rs' uint6 test: [1, 63, 5] = c1 5f 00; checked against
        // coremltools' iOS16 constexpr_lut_to_dense.decompress, which gives [10, 630, 50].
        let lut = floats(&[64], &range(64, |i| 10.0 * i as f32));
        let y = lut16(&[0xc1, 0x5f, 0x00], lut, &[3]).unwrap();
        assert_eq!(y.floats().unwrap(), &[10.0, 630.0, 50.0]);
    }

    #[test]
    fn lut16_eight_bit() {
        let lut = int_t(DType::Uint8, &[256], &(0..256).map(|i| 255 - i).collect::<Vec<_>>());
        let y = lut16(&[0, 255, 7], lut, &[1, 3]).unwrap();
        assert_eq!(y.dtype, DType::Uint8);
        assert_eq!(y.shape, vec![1, 3]);
        assert_eq!(y.ints().unwrap(), &[255, 0, 248]);
    }

    #[test]
    fn lut16_rejects_malformed() {
        let lut16f = || floats(&[16], &range(16, |i| i as f32));
        // Wrong byte count: 4 four-bit indices need 2 bytes.
        let e = lut16(&[0x21, 0x43, 0x00], lut16f(), &[2, 2]).unwrap_err();
        assert!(e.contains("need"), "{e}");
        assert!(lut16(&[0x21], lut16f(), &[2, 2]).is_err());
        // 3-bit LUTs do not exist in the iOS16 op.
        assert!(lut16(&[0x00, 0x00], floats(&[8], &[0.0; 8]), &[4]).is_err());
        // Packed indices must be uint8, and hold bytes.
        assert!(run_op(
            "constexpr_lut_to_dense",
            vec![
                ("indices", int_t(DType::Int8, &[2], &[1, 2])),
                ("lut", lut16f()),
                ("shape", ints(&[4]))
            ],
        )
        .is_err());
        assert!(lut16(&[0x21, 300], lut16f(), &[2, 2]).is_err());
        // Negative shape, and a rank-1 lut without shape.
        assert!(lut16(&[0x21, 0x43], lut16f(), &[-2, -2]).is_err());
        let e = run_op(
            "constexpr_lut_to_dense",
            vec![("indices", u8s(&[0x21, 0x43])), ("lut", lut16f())],
        )
        .unwrap_err();
        assert!(e.contains("shape"), "{e}");
        // Huge shapes are refused before anything is allocated.
        assert!(lut16(&[0x21, 0x43], lut16f(), &[i32::MAX, i32::MAX, i32::MAX]).is_err());
    }

    fn lut18(indices: Tensor, lut: Tensor, vector_axis: Option<i32>) -> OpResult<Tensor> {
        let mut params = vec![("indices", indices), ("lut", lut)];
        if let Some(a) = vector_axis {
            params.push(("vector_axis", scalar_i32(a)));
        }
        run_op("constexpr_lut_to_dense", params)
    }

    #[test]
    fn lut18_groups_along_axis_0() {
        // coremltools' docstring example (Case 1): two 2-bit LUTs, each for 3 rows.
        let idx = int_t(DType::UintN(2), &[6, 2], &[2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3]);
        let lut = fp16(&[2, 1, 4, 1], &[1.0, 5.0, 9.0, 13.0, 2.0, 10.0, 18.0, 26.0]);
        let y = lut18(idx, lut, None).unwrap();
        assert_eq!(y.dtype, DType::Fp16);
        assert_eq!(y.shape, vec![6, 2]);
        assert_eq!(
            y.floats().unwrap(),
            &[9.0, 13.0, 13.0, 1.0, 5.0, 1.0, 26.0, 2.0, 18.0, 10.0, 2.0, 26.0]
        );
    }

    #[test]
    fn lut18_groups_along_axis_1() {
        let idx = int_t(DType::UintN(1), &[2, 4], &[0, 1, 0, 1, 1, 1, 0, 0]);
        let lut = floats(&[1, 2, 2, 1], &[-1.0, 1.0, -2.0, 2.0]);
        let y = lut18(idx, lut, None).unwrap();
        assert_eq!(y.floats().unwrap(), &[-1.0, 1.0, -2.0, 2.0, 1.0, 1.0, -2.0, -2.0]);
    }

    #[test]
    fn lut18_groups_on_both_axes_match_coremltools() {
        // Numbers from coremltools 9 `iOS18.compression.constexpr_lut_to_dense.decompress` on
        // indices [[0,1,2,3],[3,2,1,0],[1,1,2,2],[0,3,0,3]] and
        // lut = arange(16).reshape(2,2,4,1) * 0.5 + 1.25 (fp16).
        let idx = int_t(
            DType::UintN(2),
            &[4, 4],
            &[0, 1, 2, 3, 3, 2, 1, 0, 1, 1, 2, 2, 0, 3, 0, 3],
        );
        let lut = fp16(&[2, 2, 4, 1], &range(16, |i| i as f32 * 0.5 + 1.25));
        let y = lut18(idx, lut, None).unwrap();
        assert_eq!(
            y.floats().unwrap(),
            &[1.25, 1.75, 4.25, 4.75, 2.75, 2.25, 3.75, 3.25, 5.75, 5.75, 8.25, 8.25, 5.25, 6.75, 7.25, 8.75]
        );
    }

    #[test]
    fn lut18_vector_palettization_matches_coremltools() {
        // coremltools' docstring Case 2 with a = [1,2,3], b = [4,5,6]; outputs checked
        // against `decompress` for vector_axis 1 and 2.
        let idx = || int_t(DType::UintN(1), &[2, 2, 2], &[0, 0, 1, 0, 1, 1, 0, 0]);
        let lut = || int_t(DType::Int8, &[1, 1, 1, 2, 3], &[1, 2, 3, 4, 5, 6]);
        let y = lut18(idx(), lut(), Some(1)).unwrap();
        assert_eq!(y.dtype, DType::Int8);
        assert_eq!(y.shape, vec![2, 6, 2]);
        assert_eq!(
            y.ints().unwrap(),
            &[1, 1, 2, 2, 3, 3, 4, 1, 5, 2, 6, 3, 4, 4, 5, 5, 6, 6, 1, 1, 2, 2, 3, 3]
        );
        let y = lut18(idx(), lut(), Some(-1)).unwrap();
        assert_eq!(y.shape, vec![2, 2, 6]);
        assert_eq!(
            y.ints().unwrap(),
            &[1, 2, 3, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3]
        );
    }

    #[test]
    fn lut18_rejects_malformed() {
        let lut4 = || floats(&[1, 1, 4, 1], &[0.0, 1.0, 2.0, 3.0]);
        // An index the LUT does not have (e.g. a lenient `ints` immediate).
        let e = lut18(int_t(DType::UintN(2), &[2, 2], &[0, 1, 5, 2]), lut4(), None).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        assert!(lut18(int_t(DType::UintN(2), &[2, 2], &[0, -1, 0, 2]), lut4(), None).is_err());
        // Groups that do not divide the indices.
        let lut3 = floats(&[3, 1, 4, 1], &[0.0; 12]);
        let e = lut18(int_t(DType::UintN(2), &[4, 2], &[0; 8]), lut3, None).unwrap_err();
        assert!(e.contains("divisible"), "{e}");
        let lut0 = floats(&[0, 1, 4, 1], &[]);
        assert!(lut18(int_t(DType::UintN(2), &[0, 2], &[]), lut0, None).is_err());
        // Index width must match the LUT size; rank must be rank(indices)+2.
        assert!(lut18(int_t(DType::UintN(4), &[2, 2], &[0; 4]), lut4(), None).is_err());
        assert!(lut18(int_t(DType::Int8, &[2, 2], &[0; 4]), lut4(), None).is_err());
        let lut_r3 = floats(&[1, 4, 1], &[0.0; 4]);
        assert!(lut18(int_t(DType::UintN(2), &[2, 2], &[0; 4]), lut_r3, None).is_err());
        // VECTOR_SIZE > 1 needs a vector_axis, in range.
        let lutv = || floats(&[1, 1, 4, 2], &[0.0; 8]);
        let e = lut18(int_t(DType::UintN(2), &[2, 2], &[0; 4]), lutv(), None).unwrap_err();
        assert!(e.contains("vector_axis"), "{e}");
        assert!(lut18(int_t(DType::UintN(2), &[2, 2], &[0; 4]), lutv(), Some(2)).is_err());
        // A lut dtype outside {int8, uint8, fp16, fp32}.
        let lut_i32 = int_t(DType::Int32, &[1, 1, 4, 1], &[0; 4]);
        assert!(lut18(int_t(DType::UintN(2), &[2, 2], &[0; 4]), lut_i32, None).is_err());
        // A tensor whose buffer contradicts its shape.
        let bad = int_t(DType::UintN(2), &[2, 2], &[0; 4]);
        let bad = Tensor {
            shape: vec![2, 3],
            ..bad
        };
        assert!(lut18(bad, lut4(), None).is_err());
    }

    fn affine(q: Tensor, zp: Tensor, scale: Tensor, axis: i32) -> OpResult<Tensor> {
        run_op(
            "constexpr_affine_dequantize",
            vec![
                ("quantized_data", q),
                ("zero_point", zp),
                ("scale", scale),
                ("axis", scalar_i32(axis)),
            ],
        )
    }

    #[test]
    fn affine_per_channel_int8_axis_0_and_1() {
        let q = || int_t(DType::Int8, &[2, 3], &[-128, 0, 127, 1, 2, 3]);
        let y = affine(q(), int_t(DType::Int8, &[2], &[0, 1]), floats(&[2], &[0.5, 2.0]), 0).unwrap();
        assert_eq!(y.dtype, DType::Fp32);
        assert_eq!(y.floats().unwrap(), &[-64.0, 0.0, 63.5, 0.0, 2.0, 4.0]);
        let y = affine(q(), int_t(DType::Int8, &[], &[0]), fp16(&[3], &[1.0, 0.5, 0.25]), -1).unwrap();
        assert_eq!(y.dtype, DType::Fp16);
        assert_eq!(y.floats().unwrap(), &[-128.0, 0.0, 31.75, 1.0, 1.0, 0.75]);
    }

    #[test]
    fn affine_uint8_with_zero_point_matches_coremltools() {
        // coremltools' iOS16 constexpr_affine_dequantize.decompress gives
        // [[-64, 0, 63.5], [-1, 0, 1]].
        let y = affine(
            int_t(DType::Uint8, &[2, 3], &[0, 128, 255, 10, 20, 30]),
            int_t(DType::Uint8, &[2], &[128, 20]),
            floats(&[2], &[0.5, 0.1]),
            0,
        )
        .unwrap();
        assert_eq!(y.floats().unwrap(), &[-64.0, 0.0, 63.5, -1.0, 0.0, 1.0]);
        // fp32 zero point, fp16 result rounded: (3 − 0.5)·0.1 = 0.25 exactly, 7·0.1 → fp16.
        let y = affine(
            int_t(DType::Uint8, &[2], &[3, 7]),
            floats(&[], &[0.5]),
            fp16(&[], &[half::f16::from_f32(0.1).to_f32()]),
            0,
        )
        .unwrap();
        let s = half::f16::from_f32(0.1).to_f32();
        let expect = [
            half::f16::from_f32(2.5 * s).to_f32(),
            half::f16::from_f32(6.5 * s).to_f32(),
        ];
        assert_eq!(y.floats().unwrap(), &expect);
        assert!(y
            .floats()
            .unwrap()
            .iter()
            .all(|&v| half::f16::from_f32(v).to_f32() == v));
    }

    #[test]
    fn affine_rejects_malformed() {
        let q = || int_t(DType::Int8, &[2, 3], &[0; 6]);
        let zp = || int_t(DType::Int8, &[], &[0]);
        // Scale vector of the wrong length for the axis.
        let e = affine(q(), zp(), floats(&[3], &[1.0; 3]), 0).unwrap_err();
        assert!(e.contains("shape[0]"), "{e}");
        assert!(affine(q(), int_t(DType::Int8, &[2], &[0, 0]), floats(&[], &[1.0]), 1).is_err());
        // Axis out of range, rank-2 scale, wrong dtypes.
        assert!(affine(q(), zp(), floats(&[], &[1.0]), 2).is_err());
        assert!(affine(q(), zp(), floats(&[], &[1.0]), -3).is_err());
        assert!(affine(q(), zp(), floats(&[2, 1], &[1.0; 2]), 0).is_err());
        assert!(affine(int_t(DType::Int32, &[2], &[0; 2]), zp(), floats(&[], &[1.0]), 0).is_err());
        assert!(affine(q(), int_t(DType::Int32, &[], &[0]), floats(&[], &[1.0]), 0).is_err());
        assert!(affine(q(), zp(), int_t(DType::Int8, &[], &[1]), 0).is_err());
        assert!(affine(int_t(DType::Int8, &[], &[1]), zp(), floats(&[], &[1.0]), 0).is_err());
    }

    fn blockwise(data: Tensor, scale: Tensor, offset: Option<Tensor>) -> OpResult<Tensor> {
        let mut params = vec![("data", data), ("scale", scale)];
        if let Some(o) = offset {
            params.push(("offset", o));
        }
        run_op("constexpr_blockwise_shift_scale", params)
    }

    #[test]
    fn blockwise_int8_blocks_of_two_on_axis_1() {
        let data = int_t(DType::Int8, &[2, 4], &[1, 2, 3, 4, -1, -2, -3, -4]);
        let scale = floats(&[2, 2], &[1.0, 10.0, 0.5, 100.0]);
        let y = blockwise(data, scale, None).unwrap();
        assert_eq!(y.dtype, DType::Fp32);
        assert_eq!(y.shape, vec![2, 4]);
        assert_eq!(y.floats().unwrap(), &[1.0, 2.0, 30.0, 40.0, -0.5, -1.0, -300.0, -400.0]);
    }

    #[test]
    // The literals are the exact decimal expansions of fp16 values, as numpy prints them.
    #[allow(clippy::excessive_precision)]
    fn blockwise_int4_with_offset_matches_coremltools() {
        // coremltools 9 `iOS18.compression.constexpr_blockwise_shift_scale.decompress` on
        // int8 data [[-8,-3,0,7],[5,-1,2,-6]], fp16 scale [[0.1,0.3],[1.7,-0.013]] and offset
        // [[1,-2],[3,0]]; the fp16 scales and results below are its exact output.
        let data = int_t(DType::Int4, &[2, 4], &[-8, -3, 0, 7, 5, -1, 2, -6]);
        let scale = fp16(
            &[2, 2],
            &[0.0999755859375, 0.300048828125, 1.7001953125, -0.01300048828125],
        );
        let offset = int_t(DType::Int4, &[2, 2], &[1, -2, 3, 0]);
        let y = blockwise(data, scale, Some(offset)).unwrap();
        assert_eq!(y.dtype, DType::Fp16);
        assert_eq!(
            y.floats().unwrap(),
            &[
                -0.89990234375,
                -0.39990234375,
                0.60009765625,
                2.701171875,
                3.400390625,
                -6.80078125,
                -0.0260009765625,
                0.0780029296875
            ]
        );
    }

    #[test]
    fn blockwise_fp16_output_is_rounded() {
        // uint4 data, per-tensor fp16 scale: 3·s and 7·s are not fp16 values until rounded.
        let s = half::f16::from_f32(0.1).to_f32();
        let data = int_t(DType::UintN(4), &[3, 1], &[3, 7, 15]);
        let y = blockwise(data, fp16(&[1, 1], &[s]), None).unwrap();
        let v = y.floats().unwrap();
        for (&got, q) in v.iter().zip([3.0f32, 7.0, 15.0]) {
            assert_eq!(got, half::f16::from_f32(q * s).to_f32());
        }
        assert_ne!(v[1], 7.0 * s, "the f32 product is not the fp16 weight");
        // fp32 data with an fp16 scale is first cast to fp16 (as coremltools does).
        let y = blockwise(floats(&[1], &[1.0001]), fp16(&[1], &[1.0]), None).unwrap();
        assert_eq!(y.floats().unwrap(), &[1.0]);
    }

    #[test]
    fn blockwise_rejects_malformed() {
        let data = || int_t(DType::Int8, &[2, 4], &[0; 8]);
        let e = blockwise(data(), floats(&[2, 3], &[1.0; 6]), None).unwrap_err();
        assert!(e.contains("multiple"), "{e}");
        assert!(blockwise(data(), floats(&[2, 0], &[]), None).is_err());
        assert!(blockwise(data(), floats(&[2], &[1.0; 2]), None).is_err());
        assert!(blockwise(data(), int_t(DType::Int8, &[2, 2], &[1; 4]), None).is_err());
        assert!(blockwise(int_t(DType::Int32, &[2, 4], &[0; 8]), floats(&[2, 2], &[1.0; 4]), None).is_err());
        // Offset of another shape, or an integer offset of another dtype than data.
        let scale = || floats(&[2, 2], &[1.0; 4]);
        assert!(blockwise(data(), scale(), Some(int_t(DType::Int8, &[2, 1], &[0; 2]))).is_err());
        assert!(blockwise(data(), scale(), Some(int_t(DType::Uint8, &[2, 2], &[0; 4]))).is_err());
        // A float offset is allowed with integer data.
        let y = blockwise(data(), scale(), Some(floats(&[2, 2], &[0.5; 4]))).unwrap();
        assert_eq!(y.floats().unwrap(), &[-0.5; 8]);
    }

    // --- Whole ops as packages store them, through `execute` (declared types checked) ---

    fn op(op_type: &str, out: (DataType, &[usize])) -> Operation {
        Operation {
            r#type: op_type.into(),
            outputs: vec![named("w", tensor_type(out.0, out.1))],
            ..Default::default()
        }
    }

    fn run(op: &Operation) -> Result<Vec<Tensor>, String> {
        execute(op, &Env::new(), &WeightStore::new(std::path::PathBuf::new()))
    }

    fn f16_bytes(v: &[f32]) -> Bytes {
        v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect()
    }

    #[test]
    fn ios16_lut_from_attributes_with_uint32_shape() {
        // As coremltools serializes it: every parameter an attribute, `shape` uint32 bytes.
        let mut o = op("constexpr_lut_to_dense", (DataType::Float16, &[2, 2]));
        let shape: Bytes = [2u32, 2].iter().flat_map(|d| d.to_le_bytes()).collect();
        o.attributes
            .insert("name".into(), Immediate::Str("w_palettized".into()).to_value());
        o.attributes.insert(
            "indices".into(),
            immediate_tensor(DataType::Uint8, &[2], &Bytes::from_static(&[0x21, 0x43])),
        );
        o.attributes.insert(
            "lut".into(),
            immediate_tensor(DataType::Float16, &[16], &f16_bytes(&range(16, |i| i as f32 * 0.25))),
        );
        o.attributes
            .insert("shape".into(), immediate_tensor(DataType::Uint32, &[2], &shape));
        let y = run(&o).unwrap();
        assert_eq!(y[0].floats().unwrap(), &[0.25, 0.5, 0.75, 1.0]);

        // A shape that disagrees with the declared output is caught by the evaluator.
        let bad: Bytes = [4u32, 1].iter().flat_map(|d| d.to_le_bytes()).collect();
        o.attributes
            .insert("shape".into(), immediate_tensor(DataType::Uint32, &[2], &bad));
        assert!(run(&o).unwrap_err().contains("declares"));
        // A truncated uint32 payload is an error, not a panic.
        o.attributes.insert(
            "shape".into(),
            immediate_tensor(DataType::Uint32, &[2], &Bytes::from_static(&[2, 0, 0])),
        );
        assert!(run(&o).is_err());
    }

    #[test]
    fn ios16_affine_from_attributes() {
        let mut o = op("constexpr_affine_dequantize", (DataType::Float16, &[2, 2]));
        let q: Bytes = [-2i8, 4, 6, -8].iter().map(|&x| x as u8).collect();
        o.attributes
            .insert("quantized_data".into(), immediate_tensor(DataType::Int8, &[2, 2], &q));
        o.attributes.insert(
            "zero_point".into(),
            immediate_tensor(DataType::Int8, &[2], &Bytes::from_static(&[0, 0])),
        );
        o.attributes.insert(
            "scale".into(),
            immediate_tensor(DataType::Float16, &[2], &f16_bytes(&[0.5, 0.25])),
        );
        o.attributes.insert("axis".into(), Immediate::Int(1).to_value());
        let y = run(&o).unwrap();
        assert_eq!(y[0].floats().unwrap(), &[-1.0, 1.0, 3.0, -2.0]);
    }

    #[test]
    fn ios18_ops_from_inline_bindings() {
        let bind = |v| Argument {
            arguments: vec![Binding {
                binding: Some(binding::Binding::Value(v)),
            }],
        };
        // uint4 indices [[1, 2], [3, 15]] packed low nibble first: 0x21, 0xf3.
        let mut o = op("constexpr_lut_to_dense", (DataType::Float32, &[2, 2]));
        o.inputs.insert(
            "indices".into(),
            bind(immediate_tensor(
                DataType::Uint4,
                &[2, 2],
                &Bytes::from_static(&[0x21, 0xf3]),
            )),
        );
        let lut: Bytes = range(16, |i| i as f32 - 8.0)
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        o.inputs.insert(
            "lut".into(),
            bind(immediate_tensor(DataType::Float32, &[1, 1, 16, 1], &lut)),
        );
        let y = run(&o).unwrap();
        assert_eq!(y[0].floats().unwrap(), &[-7.0, -6.0, -5.0, 7.0]);

        // int4 data [[-1, 7, -8, 2]] (bytes 0x7f, 0x28) with one fp16 scale per 2 columns.
        let mut o = op("constexpr_blockwise_shift_scale", (DataType::Float16, &[1, 4]));
        o.inputs.insert(
            "data".into(),
            bind(immediate_tensor(
                DataType::Int4,
                &[1, 4],
                &Bytes::from_static(&[0x7f, 0x28]),
            )),
        );
        o.inputs.insert(
            "scale".into(),
            bind(immediate_tensor(DataType::Float16, &[1, 2], &f16_bytes(&[0.5, 2.0]))),
        );
        let y = run(&o).unwrap();
        assert_eq!(y[0].floats().unwrap(), &[-0.5, 3.5, -16.0, 4.0]);
    }
}
