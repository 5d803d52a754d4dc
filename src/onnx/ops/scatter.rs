//! Scatters: ScatterElements, Scatter (its old name), ScatterND, TensorScatter (constant write
//! positions) and MaxUnpool. With constant indices the writes are planned here, as (output
//! element, update element) pairs, and become gathers from the flattened updates and selects
//! over the data: exact, in any dtype a gather takes. Duplicate writes apply in index order (the
//! last one wins without a reduction; ONNX leaves that order open). ScatterElements and
//! ScatterND with indices computed at run time become MIL `scatter_along_axis` and `scatter_nd`
//! (fp16, fp32 or int32 data), their negative indices wrapped first, writes again in index
//! order.

use super::{axis, tensor_axis, Importer, NodeCx};
use edgec_passes::eval::strides;
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{BinaryOp, CompareOp, Op, ScatterMode};

pub const OPS: &[(&str, Importer)] = &[
    ("ScatterElements", scatter_elements),
    ("Scatter", scatter_elements),
    ("ScatterND", scatter_nd),
    ("TensorScatter", tensor_scatter),
    ("MaxUnpool", max_unpool),
];

/// How a write combines with what is there.
#[derive(Clone, Copy)]
enum Reduction {
    Replace,
    Combine(BinaryOp),
}

fn reduction(cx: &NodeCx) -> Result<Reduction, String> {
    Ok(match cx.attr_string("reduction", "none")?.as_str() {
        "none" => Reduction::Replace,
        "add" => Reduction::Combine(BinaryOp::Add),
        "mul" => Reduction::Combine(BinaryOp::Mul),
        "max" => Reduction::Combine(BinaryOp::Maximum),
        "min" => Reduction::Combine(BinaryOp::Minimum),
        other => return Err(format!("reduction {other:?} is not none, add, mul, max or min")),
    })
}

impl Reduction {
    /// The MIL scatter `mode` doing the same.
    fn mode(self) -> ScatterMode {
        match self {
            Reduction::Replace => ScatterMode::Update,
            Reduction::Combine(BinaryOp::Add) => ScatterMode::Add,
            Reduction::Combine(BinaryOp::Mul) => ScatterMode::Mul,
            Reduction::Combine(BinaryOp::Maximum) => ScatterMode::Max,
            Reduction::Combine(_) => ScatterMode::Min,
        }
    }
}

/// The checks a MIL scatter needs of a scatter with indices computed at run time.
fn runtime_scatter_types(cx: &NodeCx, data: ValueId, updates: ValueId) -> Result<(), String> {
    let (d, u) = (cx.ty(data), cx.ty(updates));
    if !matches!(d.dtype, DType::F32 | DType::F16 | DType::I32 | DType::I64) {
        return Err(format!(
            "with indices computed at run time, data {d} must be float or integer (MIL's scatter ops take fp16, fp32 and int32)"
        ));
    }
    if u.dtype != d.dtype {
        return Err(format!("updates {u} must have the data's type {d}"));
    }
    Ok(())
}

fn constant_indices(cx: &NodeCx, input: usize, what: &str) -> Result<Vec<i64>, String> {
    cx.const_input(input)
        .map(|t| t.to_i64_vec())
        .ok_or_else(|| format!("{what} computed at run time are not supported (constant {what} only)"))
}

/// `i` (negative from the end) as a position along an axis of size `dim`.
fn wrap(i: i64, dim: usize) -> Result<usize, String> {
    let j = if i < 0 { i + dim as i64 } else { i };
    if (0..dim as i64).contains(&j) {
        Ok(j as usize)
    } else {
        Err(format!("index {i} is out of range for an axis of size {dim}"))
    }
}

/// The node's output: `data` with `writes` (output position, update position) applied from the
/// flattened `updates`, in order. Each round of writes is one gather and one select; a round
/// holds at most one write per output element.
fn apply_writes(
    cx: &mut NodeCx,
    data: ValueId,
    updates: ValueId,
    writes: &[(usize, usize)],
    reduction: Reduction,
) -> Result<Vec<ValueId>, String> {
    let shape = cx.ty(data).shape.clone();
    let count = cx.ty(data).num_elements();
    if cx.ty(updates).dtype != cx.ty(data).dtype {
        return Err(format!(
            "updates {} must have the data's type {}",
            cx.ty(updates),
            cx.ty(data)
        ));
    }
    let mut rounds: Vec<Vec<Option<usize>>> = Vec::new();
    let mut depth = vec![0usize; count];
    for &(target, source) in writes {
        let round = match reduction {
            // Only the last write to an element matters.
            Reduction::Replace => 0,
            Reduction::Combine(_) => {
                depth[target] += 1;
                depth[target] - 1
            }
        };
        if rounds.len() <= round {
            rounds.push(vec![None; count]);
        }
        rounds[round][target] = Some(source);
    }
    let flat_updates = cx.add_step(
        Op::Reshape {
            shape: vec![cx.ty(updates).num_elements()],
        },
        vec![updates],
        "updates_flat",
    )?;
    let mut out = data;
    let last = rounds.len().saturating_sub(1);
    if rounds.is_empty() {
        return cx.add(Op::Identity, vec![data]);
    }
    for (r, sources) in rounds.into_iter().enumerate() {
        let picks: Vec<i64> = sources.iter().map(|s| s.unwrap_or(0) as i64).collect();
        let written: Vec<i64> = sources.iter().map(|s| s.is_some() as i64).collect();
        let picks = cx.add_const_step(Tensor::from_i64(vec![count], &picks), &format!("sources{r}"));
        let mask = Tensor::from_i64(shape.clone(), &written).cast(edgec_passes::ir::DType::Bool);
        let mask = cx.add_const_step(mask, &format!("written{r}"));
        let gathered = cx.add_step(
            Op::Gather { axis: 0 },
            vec![flat_updates, picks],
            &format!("gathered{r}"),
        )?;
        let mut value = cx.add_step(
            Op::Reshape { shape: shape.clone() },
            vec![gathered],
            &format!("round{r}"),
        )?;
        if let Reduction::Combine(op) = reduction {
            value = cx.add_step(Op::Binary(op), vec![out, value], &format!("combined{r}"))?;
        }
        out = if r == last {
            return cx.add(Op::Select, vec![mask, value, out]);
        } else {
            cx.add_step(Op::Select, vec![mask, value, out], &format!("scattered{r}"))?
        };
    }
    unreachable!("the last round returns")
}

/// `output[k with k[axis] = indices[k]] = updates[k]` for every position k of indices.
fn scatter_elements(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let data = cx.required_input(0)?;
    let updates = cx.required_input(2)?;
    let shape = cx.ty(data).shape.clone();
    let along = tensor_axis(cx.attr_int("axis", 0)?, shape.len())?;
    let reduction = if cx.node.op_type == "Scatter" {
        Reduction::Replace
    } else {
        reduction(cx)?
    };
    if cx.const_input(1).is_none() {
        runtime_scatter_types(cx, data, updates)?;
        let index_shape = cx.ty(cx.required_input(1)?).shape.clone();
        let spans =
            index_shape.len() == shape.len() && (0..shape.len()).all(|a| a == along || index_shape[a] == shape[a]);
        if !spans || index_shape != cx.ty(updates).shape {
            return Err(format!(
                "with indices computed at run time, indices {index_shape:?} and updates {} must have the data's shape {shape:?} on every axis but {along} (MIL's scatter_along_axis)",
                cx.ty(updates)
            ));
        }
        let idx = super::indexing::indices_for(cx, 1, shape[along])?;
        let op = Op::ScatterAlongAxis {
            axis: along,
            mode: reduction.mode(),
        };
        return cx.add(op, vec![data, idx, updates]);
    }
    let indices = constant_indices(cx, 1, "indices")?;
    let index_shape = cx.const_input(1).map(|t| t.ty.shape.clone()).unwrap_or_default();
    if index_shape != cx.ty(updates).shape || index_shape.len() != shape.len() {
        return Err(format!(
            "indices {index_shape:?} and updates {} must have one shape, of the data's rank {}",
            cx.ty(updates),
            shape.len()
        ));
    }
    if index_shape.iter().zip(&shape).any(|(i, d)| i > d) {
        return Err(format!("indices {index_shape:?} are larger than the data {shape:?}"));
    }
    let data_strides = strides(&shape);
    let index_strides = strides(&index_shape);
    let writes = indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let target = (0..shape.len())
                .map(|a| {
                    let coordinate = k / index_strides[a] % index_shape[a];
                    let coordinate = if a == along { wrap(i, shape[a])? } else { coordinate };
                    Ok(coordinate * data_strides[a])
                })
                .sum::<Result<usize, String>>()?;
            Ok((target, k))
        })
        .collect::<Result<Vec<_>, String>>()?;
    apply_writes(cx, data, updates, &writes, reduction)
}

/// Each index tuple (the last axis of indices) picks a slice of data, written from the update
/// slice at the tuple's position.
fn scatter_nd(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let data = cx.required_input(0)?;
    let updates = cx.required_input(2)?;
    let shape = cx.ty(data).shape.clone();
    if cx.const_input(1).is_none() {
        return runtime_scatter_nd(cx, data, updates);
    }
    let indices = constant_indices(cx, 1, "indices")?;
    let index_shape = cx.const_input(1).map(|t| t.ty.shape.clone()).unwrap_or_default();
    let Some((&depth, tuples_shape)) = index_shape.split_last() else {
        return Err("indices must have rank 1 or more".into());
    };
    if depth == 0 || depth > shape.len() {
        return Err(format!("index tuples of {depth} for data of rank {}", shape.len()));
    }
    let mut expected = tuples_shape.to_vec();
    expected.extend(&shape[depth..]);
    if cx.ty(updates).shape != expected {
        return Err(format!("updates {} must have shape {expected:?}", cx.ty(updates)));
    }
    let inner: usize = shape[depth..].iter().product();
    let data_strides = strides(&shape);
    let mut writes = Vec::with_capacity(indices.len() / depth * inner);
    for (t, tuple) in indices.chunks(depth).enumerate() {
        let base = tuple
            .iter()
            .enumerate()
            .map(|(a, &i)| Ok(wrap(i, shape[a])? * data_strides[a]))
            .sum::<Result<usize, String>>()?;
        writes.extend((0..inner).map(|r| (base + r, t * inner + r)));
    }
    apply_writes(cx, data, updates, &writes, reduction(cx)?)
}

/// ScatterND with indices computed at run time: MIL `scatter_nd`, each tuple's negative
/// components wrapped by the size of the axis they index.
fn runtime_scatter_nd(cx: &mut NodeCx, data: ValueId, updates: ValueId) -> Result<Vec<ValueId>, String> {
    runtime_scatter_types(cx, data, updates)?;
    let idx = cx.required_input(1)?;
    let indices = cx.ty(idx).clone();
    let shape = cx.ty(data).shape.clone();
    let depth = indices.shape.last().copied().unwrap_or(0);
    if !matches!(indices.dtype, DType::I32 | DType::I64) || depth == 0 || depth > shape.len() {
        return Err(format!("indices {indices} do not index data {}", cx.ty(data)));
    }
    let ints = |v: Vec<i64>, shape: Vec<usize>| Tensor::from_i64(shape, &v).cast(indices.dtype);
    let zero = cx.add_const_step(ints(vec![0], Vec::new()), "zero");
    let dims = cx.add_const_step(
        ints(shape[..depth].iter().map(|&d| d as i64).collect(), vec![depth]),
        "dims",
    );
    let negative = cx.add_step(Op::Compare(CompareOp::Less), vec![idx, zero], "negative")?;
    let wrapped = cx.add_step(Op::Binary(BinaryOp::Add), vec![idx, dims], "wrapped")?;
    let idx = cx.add_step(Op::Select, vec![negative, wrapped, idx], "index")?;
    let op = Op::ScatterNd {
        mode: reduction(cx)?.mode(),
    };
    cx.add(op, vec![data, idx, updates])
}

/// TensorScatter (opset 24): each batch entry's update written into the cache along `axis` from
/// its constant write index (0 without one), wrapping around in circular mode.
fn tensor_scatter(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let cache = cx.required_input(0)?;
    let update = cx.required_input(1)?;
    let shape = cx.ty(cache).shape.clone();
    let update_shape = cx.ty(update).shape.clone();
    let along = axis(cx.attr_int("axis", -2)?, shape.len())?;
    if along == 0 {
        return Err("axis must not be the batch axis 0".into());
    }
    let circular = match cx.attr_string("mode", "linear")?.as_str() {
        "linear" => false,
        "circular" => true,
        other => return Err(format!("mode {other:?} is not linear or circular")),
    };
    let lengths_agree = (0..shape.len()).all(|a| a == along || shape[a] == update_shape[a]);
    if update_shape.len() != shape.len() || !lengths_agree || update_shape[along] > shape[along] {
        return Err(format!(
            "update {update_shape:?} does not fit the cache {shape:?} along axis {along}"
        ));
    }
    let starts = match cx.input(2) {
        Some(_) => constant_indices(cx, 2, "write_indices")?,
        None => vec![0; shape[0]],
    };
    if starts.len() != shape[0] {
        return Err(format!(
            "write_indices has {} values for a batch of {}",
            starts.len(),
            shape[0]
        ));
    }
    let (cache_strides, update_strides) = (strides(&shape), strides(&update_shape));
    let capacity = shape[along];
    let mut writes = Vec::with_capacity(update_shape.iter().product());
    for k in 0..update_shape.iter().product::<usize>() {
        let mut target = 0;
        for a in 0..shape.len() {
            let mut coordinate = k / update_strides[a] % update_shape[a];
            if a == along {
                let start = starts[k / update_strides[0]];
                let position = start + coordinate as i64;
                coordinate = match (circular, usize::try_from(position)) {
                    (true, _) => position.rem_euclid(capacity as i64) as usize,
                    (false, Ok(p)) if p < capacity => p,
                    _ => {
                        return Err(format!(
                            "write index {start} puts the update past the cache's {capacity} positions"
                        ))
                    }
                };
            }
            target += coordinate * cache_strides[a];
        }
        writes.push((target, k));
    }
    apply_writes(cx, cache, update, &writes, Reduction::Replace)
}

/// MaxUnpool: zeros, with each X element written at its constant flat index (MaxPool's Indices
/// output, over the whole unpooled tensor).
fn max_unpool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let x_shape = cx.ty(x).shape.clone();
    if x_shape.len() < 3 {
        return Err(format!("input {} must have rank 3 or more", cx.ty(x)));
    }
    let n = x_shape.len() - 2;
    let kernel = super::conv::pool_kernel(cx, n)?;
    let strides_attr = super::conv::per_axis(cx, "strides", n)?;
    let pads = cx.attr_ints("pads")?.unwrap_or_else(|| vec![0; 2 * n]);
    if pads.len() != 2 * n {
        return Err(format!("pads {pads:?} must hold {} values", 2 * n));
    }
    let pads = super::non_negative(&pads, "pads")?;
    // Indices count in the unpooled size `(in − 1)·stride − pads + kernel`; a larger output_shape
    // keeps each element's coordinates and leaves zeros at the end (as onnxruntime).
    let mut unpooled = x_shape[..2].to_vec();
    for i in 0..n {
        let full = (x_shape[2 + i] - 1) * strides_attr[i] + kernel[i];
        let size = full
            .checked_sub(pads[i] + pads[i + n])
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("pads {pads:?} leave no output on spatial axis {i}"))?;
        unpooled.push(size);
    }
    let out_shape = match cx.input(2) {
        Some(_) => {
            let requested = super::positive(&cx.const_ints(2, "output_shape")?, "output_shape")?;
            let fits = requested.len() == unpooled.len()
                && requested[..2] == unpooled[..2]
                && requested.iter().zip(&unpooled).all(|(r, u)| r >= u);
            if !fits {
                return Err(format!(
                    "output_shape {requested:?} must keep batch and channels and hold the unpooled {unpooled:?}"
                ));
            }
            requested
        }
        None => unpooled.clone(),
    };
    let indices = constant_indices(cx, 1, "indices")?;
    if indices.len() != x_shape.iter().product::<usize>() {
        return Err(format!("indices must have the input's shape {x_shape:?}"));
    }
    let (unpooled_strides, out_strides) = (strides(&unpooled), strides(&out_shape));
    let unpooled_total: usize = unpooled.iter().product();
    let total: usize = out_shape.iter().product();
    let writes = indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let flat = usize::try_from(i)
                .ok()
                .filter(|&t| t < unpooled_total)
                .ok_or_else(|| format!("index {i} is outside the unpooled output's {unpooled_total} elements"))?;
            let target = (0..unpooled.len())
                .map(|a| flat / unpooled_strides[a] % unpooled[a] * out_strides[a])
                .sum();
            Ok((target, k))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let zeros = Tensor::from_f32(out_shape.clone(), &vec![0.0; total]).cast(dtype);
    let zeros = cx.add_const_step(zeros, "zeros");
    apply_writes(cx, zeros, x, &writes, Reduction::Replace)
}
