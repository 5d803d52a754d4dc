//! Indexing: Gather, GatherElements, GatherND, Slice, Split, ArgMax, ArgMin.
//!
//! Constant indices are normalised at compile time (negative ones count from the end, out of
//! range is an error). Runtime indices get a guard that adds the axis size to negative ones,
//! since Core ML from iOS 17 treats negative gather indices as out of bounds.

use super::{axis, tensor_axis, Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{ArgKind, BinaryOp, CompareOp, Op, ReduceKind, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[
    ("Gather", gather),
    ("GatherElements", gather_elements),
    ("GatherND", gather_nd),
    ("Slice", slice),
    ("Split", split),
    ("ArgMax", arg_max),
    ("ArgMin", arg_min),
];

/// Indices for an axis of size `dim`: constants normalised, runtime values guarded.
pub(super) fn indices_for(cx: &mut NodeCx, input: usize, dim: usize) -> Result<ValueId, String> {
    let idx = cx.required_input(input)?;
    if let Some(t) = cx.const_input(input) {
        let shape = t.ty.shape.clone();
        let values = t
            .to_i64_vec()
            .into_iter()
            .map(|i| {
                let j = if i < 0 { i + dim as i64 } else { i };
                if (0..dim as i64).contains(&j) {
                    Ok(j)
                } else {
                    Err(format!("index {i} is out of range for an axis of size {dim}"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(cx.add_const_step(Tensor::from_i64(shape, &values), "indices"));
    }
    let dtype = cx.ty(idx).dtype;
    if !matches!(dtype, DType::I32 | DType::I64) {
        return Err(format!("indices must be int32 or int64, got {}", cx.ty(idx)));
    }
    let zero = cx.add_const_step(Tensor::from_i64(Vec::new(), &[0]).cast(dtype), "zero");
    let size = cx.add_const_step(Tensor::from_i64(Vec::new(), &[dim as i64]).cast(dtype), "dim");
    let negative = cx.add_step(Op::Compare(CompareOp::Less), vec![idx, zero], "negative")?;
    let wrapped = cx.add_step(Op::Binary(BinaryOp::Add), vec![idx, size], "wrapped")?;
    cx.add_step(Op::Select, vec![negative, wrapped, idx], "index")
}

/// Core ML gathers only float and int32 data: bool data is gathered as int32. Empty data is
/// refused: no index is in range.
fn gatherable(cx: &mut NodeCx, x: ValueId) -> Result<ValueId, String> {
    if cx.ty(x).shape.contains(&0) {
        return Err(format!(
            "gathering from an empty tensor ({}): every index is out of range",
            cx.ty(x)
        ));
    }
    if cx.ty(x).dtype == DType::Bool {
        cx.add_step(Op::Cast { to: DType::I32 }, vec![x], "data_int")
    } else {
        Ok(x)
    }
}

/// The last step of a gather: back to bool if the data was bool.
fn finish_gather(cx: &mut NodeCx, was_bool: bool, op: Op, inputs: Vec<ValueId>) -> Result<Vec<ValueId>, String> {
    if !was_bool {
        return cx.add(op, inputs);
    }
    let gathered = cx.add_step(op, inputs, "gathered")?;
    cx.add(Op::Cast { to: DType::Bool }, vec![gathered])
}

fn gather(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    let a = tensor_axis(cx.attr_int("axis", 0)?, x_ty.rank())?;
    let idx = indices_for(cx, 1, x_ty.shape[a])?;
    let was_bool = x_ty.dtype == DType::Bool;
    let data = gatherable(cx, x)?;
    if !cx.ty(idx).shape.is_empty() {
        return finish_gather(cx, was_bool, Op::Gather { axis: a }, vec![data, idx]);
    }
    // Core ML's runtime wants indices of rank 1 or more: gather one and drop the axis.
    let one = cx.add_step(Op::Reshape { shape: vec![1] }, vec![idx], "index1")?;
    let picked = cx.add_step(Op::Gather { axis: a }, vec![data, one], "picked")?;
    let mut shape = x_ty.shape.clone();
    shape.remove(a);
    finish_gather(cx, was_bool, Op::Reshape { shape }, vec![picked])
}

fn gather_elements(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    let a = tensor_axis(cx.attr_int("axis", 0)?, x_ty.rank())?;
    let idx = indices_for(cx, 1, x_ty.shape[a])?;
    let data = gatherable(cx, x)?;
    finish_gather(
        cx,
        x_ty.dtype == DType::Bool,
        Op::GatherElements { axis: a },
        vec![data, idx],
    )
}

/// ONNX Slice normalisation of one axis (clamping, negative bounds, INT_MAX sentinels).
fn slice_axis(dim: usize, start: i64, end: i64, step: i64) -> Result<SliceAxis, String> {
    if step == 0 {
        return Err("steps must not be zero".into());
    }
    let d = dim as i64;
    let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (start, end) = if step > 0 {
        (wrap(start).clamp(0, d), wrap(end).clamp(0, d))
    } else {
        (wrap(start).clamp(0, d - 1), wrap(end).clamp(-1, d - 1))
    };
    let s = SliceAxis {
        begin: start.max(0) as usize,
        end: if end < 0 { None } else { Some(end as usize) },
        stride: step,
    };
    if start >= d || s.len(dim) == 0 {
        return Err(format!(
            "slice {start}..{end} step {step} of an axis of size {dim} is empty (zero-sized tensors are not supported)"
        ));
    }
    Ok(s)
}

fn slice(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let rank = shape.len();
    let (starts, ends, axes, steps) = if cx.opset < 10 {
        let starts = cx.attr_ints("starts")?.ok_or("attribute \"starts\" is required")?;
        let ends = cx.attr_ints("ends")?.ok_or("attribute \"ends\" is required")?;
        (starts, ends, cx.attr_ints("axes")?, None)
    } else {
        let starts = cx.const_ints(1, "starts")?;
        let ends = cx.const_ints(2, "ends")?;
        (
            starts,
            ends,
            cx.opt_const_ints(3, "axes")?,
            cx.opt_const_ints(4, "steps")?,
        )
    };
    let axes = match axes {
        Some(a) => super::axes(&a, rank)?,
        None => (0..starts.len()).collect(),
    };
    let steps = steps.unwrap_or_else(|| vec![1; axes.len()]);
    if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
        return Err(format!(
            "starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"
        ));
    }
    let mut per_axis: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
    for (k, &a) in axes.iter().enumerate() {
        per_axis[a] = slice_axis(shape[a], starts[k], ends[k], steps[k])?;
    }
    if per_axis.iter().zip(&shape).all(|(s, &d)| s.is_full(d)) {
        return cx.add(Op::Identity, vec![x]);
    }
    cx.add(Op::Slice { axes: per_axis }, vec![x])
}

/// Split into consecutive chunks along `axis`: sizes from the `split` input (opset 13+) or
/// attribute, else equal parts (opset 18: `num_outputs`, the last chunk may be smaller).
fn split(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let a = tensor_axis(cx.attr_int("axis", 0)?, shape.len())?;
    let dim = shape[a];
    let outputs = cx.node.output.len();
    let sizes = if cx.opset >= 13 {
        cx.opt_const_ints(1, "split")?
    } else {
        cx.attr_ints("split")?
    };
    let sizes: Vec<usize> = match sizes {
        Some(s) => super::positive(&s, "split").map_err(|e| format!("{e} (zero-sized outputs are not supported)"))?,
        None => {
            let parts = if cx.opset >= 18 && cx.has_attr("num_outputs") {
                usize::try_from(cx.attr_int("num_outputs", 0)?).unwrap_or(0)
            } else {
                outputs
            };
            if parts == 0 || parts > dim {
                return Err(format!("cannot split an axis of size {dim} into {parts} parts"));
            }
            if cx.opset >= 18 {
                let chunk = dim.div_ceil(parts);
                (0..parts).map(|i| chunk.min(dim - (i * chunk).min(dim))).collect()
            } else if dim % parts == 0 {
                vec![dim / parts; parts]
            } else {
                return Err(format!(
                    "an axis of size {dim} does not split evenly into {parts} parts"
                ));
            }
        }
    };
    if sizes.len() != outputs || sizes.iter().sum::<usize>() != dim || sizes.contains(&0) {
        return Err(format!(
            "split sizes {sizes:?} must be positive, one per output ({outputs}), and sum to the axis size {dim}"
        ));
    }
    let mut results = Vec::with_capacity(outputs);
    let mut begin = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let mut axes: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
        axes[a] = SliceAxis {
            begin,
            end: Some(begin + n),
            stride: 1,
        };
        let op = if n == dim { Op::Identity } else { Op::Slice { axes } };
        results.push(cx.add_output(i, op, vec![x])?);
        begin += n;
    }
    Ok(results)
}

/// ArgMax/ArgMin: int32 indices widened to ONNX's int64 (narrowed back by `narrow_int64`).
fn arg_reduce(cx: &mut NodeCx, kind: ArgKind) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let rank = cx.ty(x).rank();
    let a = axis(cx.attr_int("axis", 0)?, rank)?;
    let keep_dims = cx.attr_int("keepdims", 1)? != 0;
    if cx.attr_int("select_last_index", 0)? != 0 {
        return Err("select_last_index=1 is not supported".into());
    }
    let index = cx.add_step(
        Op::ArgReduce {
            kind,
            axis: a,
            keep_dims,
        },
        vec![x],
        "index",
    )?;
    cx.add(Op::Cast { to: DType::I64 }, vec![index])
}

fn arg_max(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    arg_reduce(cx, ArgKind::Max)
}

fn arg_min(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    arg_reduce(cx, ArgKind::Min)
}

/// GatherND as one gather: the data's batch and indexed axes are flattened into one, and each
/// index tuple becomes a position along it (computed at compile time for constant indices,
/// else by a multiply and a sum over the tuple, with negative components wrapped).
fn gather_nd(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let idx = cx.required_input(1)?;
    let (data, indices) = (cx.ty(x).clone(), cx.ty(idx).clone());
    let batch = usize::try_from(cx.attr_int("batch_dims", 0)?).map_err(|_| "batch_dims must be >= 0".to_string())?;
    let (r, m) = (data.rank(), indices.rank());
    let q = indices.shape.last().copied().unwrap_or(0);
    if m < 1 || batch >= m || batch + q > r || q == 0 || data.shape[..batch] != indices.shape[..batch] {
        return Err(format!(
            "indices {indices} do not index data {data} with batch_dims {batch} (need 1 <= q, batch_dims + q <= data rank, equal batch dims)"
        ));
    }
    if !matches!(indices.dtype, DType::I32 | DType::I64) {
        return Err(format!("indices must be int32 or int64, got {indices}"));
    }
    let indexed = &data.shape[batch..batch + q];
    // Position along the flattened axis = batch position · Π indexed + Σ index_j · stride_j.
    let strides: Vec<i64> = (0..q)
        .map(|j| indexed[j + 1..].iter().product::<usize>() as i64)
        .collect();
    let per_batch = indexed.iter().product::<usize>() as i64;
    let out_lead = &indices.shape[..m - 1];
    let batch_of = |position: usize| -> i64 {
        // The batch coordinates are the leading `batch` coordinates of `position` in out_lead.
        let inner: usize = out_lead[batch..].iter().product();
        (position / inner.max(1)) as i64
    };
    let flat_shape: Vec<usize> = std::iter::once(data.shape[..batch + q].iter().product())
        .chain(data.shape[batch + q..].iter().copied())
        .collect();
    let was_bool = data.dtype == DType::Bool;
    let gathered_data = gatherable(cx, x)?;
    let flat = cx.add_step(Op::Reshape { shape: flat_shape }, vec![gathered_data], "flat")?;
    let positions = if let Some(t) = cx.const_input(1) {
        let values = t.to_i64_vec();
        let mut positions = Vec::with_capacity(values.len() / q);
        for (p, tuple) in values.chunks(q).enumerate() {
            let mut at = batch_of(p) * per_batch;
            for (j, &i) in tuple.iter().enumerate() {
                let dim = indexed[j] as i64;
                let k = if i < 0 { i + dim } else { i };
                if !(0..dim).contains(&k) {
                    return Err(format!(
                        "index {i} is out of range for axis {} of size {dim}",
                        batch + j
                    ));
                }
                at += k * strides[j];
            }
            positions.push(at);
        }
        cx.add_const_step(Tensor::from_i64(out_lead.to_vec(), &positions), "positions")
    } else {
        let dtype = indices.dtype;
        let ints = |v: Vec<i64>, shape: Vec<usize>| Tensor::from_i64(shape, &v).cast(dtype);
        let zero = cx.add_const_step(ints(vec![0], Vec::new()), "zero");
        let dims = cx.add_const_step(ints(indexed.iter().map(|&d| d as i64).collect(), vec![q]), "dims");
        let negative = cx.add_step(Op::Compare(CompareOp::Less), vec![idx, zero], "negative")?;
        let wrapped = cx.add_step(Op::Binary(BinaryOp::Add), vec![idx, dims], "wrapped")?;
        let idx = cx.add_step(Op::Select, vec![negative, wrapped, idx], "index")?;
        let stride = cx.add_const_step(ints(strides.clone(), vec![q]), "strides");
        let scaled = cx.add_step(Op::Binary(BinaryOp::Mul), vec![idx, stride], "scaled")?;
        let reduce = Op::Reduce {
            kind: ReduceKind::Sum,
            axes: vec![m - 1],
            keep_dims: false,
        };
        let mut positions = cx.add_step(reduce, vec![scaled], "offsets")?;
        if batch > 0 {
            let count: usize = out_lead.iter().product();
            let offsets = (0..count).map(|p| batch_of(p) * per_batch).collect();
            let offsets = cx.add_const_step(ints(offsets, out_lead.to_vec()), "batch_offsets");
            positions = cx.add_step(Op::Binary(BinaryOp::Add), vec![positions, offsets], "positions")?;
        }
        positions
    };
    if out_lead.is_empty() {
        // A single tuple: Core ML wants indices of rank 1 or more; gather one and drop the axis.
        let one = cx.add_step(Op::Reshape { shape: vec![1] }, vec![positions], "position1")?;
        let picked = cx.add_step(Op::Gather { axis: 0 }, vec![flat, one], "picked")?;
        let out_shape = data.shape[batch + q..].to_vec();
        return finish_gather(cx, was_bool, Op::Reshape { shape: out_shape }, vec![picked]);
    }
    finish_gather(cx, was_bool, Op::Gather { axis: 0 }, vec![flat, positions])
}
