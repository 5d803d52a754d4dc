//! Shape and data movement: Reshape, Flatten, Squeeze, Unsqueeze, Expand, Tile, Transpose,
//! Concat, Pad, Cast, and the pass-throughs Identity, Dropout and Constant.
//!
//! Shapes are static, so Squeeze, Unsqueeze and Flatten are reshapes.

use super::{axis, Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{broadcast_shapes, Op, PadMode};

pub const OPS: &[(&str, Importer)] = &[
    ("Reshape", reshape),
    ("Flatten", flatten),
    ("Squeeze", squeeze),
    ("Unsqueeze", unsqueeze),
    ("Expand", expand),
    ("Tile", tile),
    ("Transpose", transpose),
    ("Concat", concat),
    ("Pad", pad),
    ("Identity", identity),
    ("Cast", cast),
    ("CastLike", cast_like),
    ("Dropout", dropout),
    ("Constant", constant),
];

/// Resolve ONNX reshape semantics (`0` copies the input dim unless `allowzero`, one `-1` is
/// inferred) to a fully positive static shape.
pub fn resolve_reshape(input: &[usize], target: &[i64], allow_zero: bool) -> Result<Vec<usize>, String> {
    let count: usize = input.iter().product();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer_at = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer_at.is_none() => {
                infer_at = Some(i);
                shape.push(1);
            }
            -1 => return Err(format!("shape {target:?} has more than one -1")),
            0 if !allow_zero => shape.push(
                *input
                    .get(i)
                    .ok_or_else(|| format!("shape {target:?} copies dim {i}, which the input lacks"))?,
            ),
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(format!("shape {target:?} has an invalid dimension {d}")),
        }
    }
    let too_many = || format!("shape {target:?} does not hold the input's {count} elements ({input:?})");
    let known = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_many)?;
    if let Some(i) = infer_at {
        if known == 0 || count % known != 0 {
            return Err(format!(
                "cannot infer -1 in {target:?} for an input of {count} elements"
            ));
        }
        shape[i] = count / known;
    }
    if infer_at.is_none() && known != count {
        return Err(too_many());
    }
    if shape.contains(&0) {
        return Err("zero-sized tensors are not supported".into());
    }
    Ok(shape)
}

fn reshape(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let target = if cx.opset < 5 {
        cx.attr_ints("shape")?.ok_or("attribute \"shape\" is required")?
    } else {
        cx.const_ints(1, "shape")?
    };
    let allow_zero = cx.attr_int("allowzero", 0)? != 0;
    let shape = resolve_reshape(&cx.ty(x).shape, &target, allow_zero)?;
    cx.add(Op::Reshape { shape }, vec![x])
}

fn flatten(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    // Flatten's axis may equal the rank.
    let raw = cx.attr_int("axis", 1)?;
    let a = if raw == shape.len() as i64 {
        shape.len()
    } else {
        axis(raw, shape.len())?
    };
    let outer: usize = shape[..a].iter().product();
    let inner: usize = shape[a..].iter().product();
    cx.add(
        Op::Reshape {
            shape: vec![outer, inner],
        },
        vec![x],
    )
}

/// Axes from the attribute (before opset 13) or the optional constant input 1.
fn axes_operand(cx: &NodeCx) -> Result<Option<Vec<i64>>, String> {
    if cx.opset < 13 {
        cx.attr_ints("axes")
    } else {
        cx.opt_const_ints(1, "axes")
    }
}

fn squeeze(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let drop = match axes_operand(cx)? {
        Some(a) => super::axes(&a, shape.len())?,
        None => (0..shape.len()).filter(|&i| shape[i] == 1).collect(),
    };
    if let Some(&a) = drop.iter().find(|&&a| shape[a] != 1) {
        return Err(format!("cannot squeeze axis {a} of size {}", shape[a]));
    }
    let shape = shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, &d)| d)
        .collect();
    cx.add(Op::Reshape { shape }, vec![x])
}

/// Insert size-1 axes at the given positions of the output.
fn unsqueeze(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let raw = axes_operand(cx)?.ok_or("axes are required")?;
    let rank = shape.len() + raw.len();
    let inserted = super::axes(&raw, rank)?;
    let mut dims = shape.into_iter();
    let shape = (0..rank)
        .map(|i| {
            if inserted.contains(&i) {
                1
            } else {
                dims.next().unwrap_or(1)
            }
        })
        .collect();
    cx.add(Op::Reshape { shape }, vec![x])
}

/// Broadcast to a shape (bidirectionally, as NumPy does): a reshape to the target rank, then
/// a tile of the size-1 axes.
fn expand(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let dims = cx.const_ints(1, "shape")?;
    let requested =
        super::positive(&dims, "shape").map_err(|e| format!("{e} (zero-sized tensors are not supported)"))?;
    let shape = cx.ty(x).shape.clone();
    let target = broadcast_shapes(&shape, &requested).map_err(|e| e.0)?;
    if target == shape {
        return cx.add(Op::Identity, vec![x]);
    }
    let (aligned, reps) = broadcast_plan(&shape, &target);
    let x = match aligned {
        Some(shape) => cx.add_step(Op::Reshape { shape }, vec![x], "aligned")?,
        None => x,
    };
    cx.add(Op::Tile { reps }, vec![x])
}

/// How to broadcast `shape` to `target` (which it broadcasts to): the reshape to the target's
/// rank, if one is needed, and the tile repeats.
fn broadcast_plan(shape: &[usize], target: &[usize]) -> (Option<Vec<usize>>, Vec<usize>) {
    let mut aligned = vec![1; target.len() - shape.len()];
    aligned.extend_from_slice(shape);
    let reps = target.iter().zip(&aligned).map(|(t, a)| t / a).collect();
    let reshape = (aligned != shape).then_some(aligned);
    (reshape, reps)
}

/// `x` broadcast to `target` as an intermediate value named `<output>_<suffix>`.
pub fn broadcast_to(cx: &mut NodeCx, x: ValueId, target: &[usize], suffix: &str) -> Result<ValueId, String> {
    let shape = cx.ty(x).shape.clone();
    if shape == target {
        return Ok(x);
    }
    let (aligned, reps) = broadcast_plan(&shape, target);
    let x = match aligned {
        Some(shape) => cx.add_step(Op::Reshape { shape }, vec![x], &format!("{suffix}_aligned"))?,
        None => x,
    };
    cx.add_step(Op::Tile { reps }, vec![x], suffix)
}

fn tile(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let repeats = cx.const_ints(1, "repeats")?;
    let reps =
        super::positive(&repeats, "repeats").map_err(|e| format!("{e} (zero-sized tensors are not supported)"))?;
    if reps.len() != cx.ty(x).rank() {
        return Err(format!(
            "repeats {repeats:?} must have one entry per axis of {}",
            cx.ty(x)
        ));
    }
    if reps.iter().all(|&r| r == 1) {
        return cx.add(Op::Identity, vec![x]);
    }
    cx.add(Op::Tile { reps }, vec![x])
}

fn transpose(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let rank = cx.ty(x).rank();
    let perm = match cx.attr_ints("perm")? {
        Some(p) => p.iter().map(|&a| axis(a, rank)).collect::<Result<Vec<_>, _>>()?,
        None => (0..rank).rev().collect(),
    };
    cx.add(Op::Transpose { perm }, vec![x])
}

fn concat(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let inputs: Vec<ValueId> = (0..cx.input_count()).filter_map(|i| cx.input(i)).collect();
    let first = *inputs.first().ok_or("needs at least one input")?;
    let rank = cx.ty(first).rank();
    let raw_axis = match (cx.has_attr("axis"), cx.opset < 4) {
        (true, _) => cx.attr_int("axis", 0)?,
        (false, true) => 1,
        (false, false) => return Err("attribute \"axis\" is required".into()),
    };
    let a = axis(raw_axis, rank)?;
    // Zero-length inputs contribute nothing, and MIL rejects them.
    let inputs: Vec<ValueId> = inputs
        .into_iter()
        .filter(|&v| cx.ty(v).shape.get(a) != Some(&0))
        .collect();
    match inputs.len() {
        // All empty: the result is empty too (a constant, as every empty value is).
        0 => cx.add(Op::Identity, vec![first]),
        1 => cx.add(Op::Identity, inputs),
        _ => cx.add(Op::Concat { axis: a }, inputs),
    }
}

fn pad(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    if !cx.ty(x).dtype.is_float() {
        return Err(format!("Core ML's pad takes only float tensors, not {}", cx.ty(x)));
    }
    let rank = cx.ty(x).rank();
    let mode = match cx.attr_string("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        other => {
            return Err(format!(
                "mode {other:?} is not supported (constant, reflect and edge are)"
            ))
        }
    };
    let (raw, value, axes) = if cx.opset < 11 {
        let pads = cx.attr_ints("pads")?.ok_or("attribute \"pads\" is required")?;
        (pads, cx.attr_float("value", 0.0)?, None)
    } else {
        let pads = cx.const_ints(1, "pads")?;
        let value = match cx.input(2) {
            Some(_) => {
                let t = cx.const_input(2).ok_or("constant_value (input 2) must be a constant")?;
                t.to_f32_vec().first().copied().unwrap_or(0.0)
            }
            None => 0.0,
        };
        let axes = match cx.input(3) {
            Some(_) => Some(cx.const_ints(3, "axes")?),
            None => None,
        };
        (pads, value, axes)
    };
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&v| axis(v, rank)).collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    let n = axes.len();
    if raw.len() != 2 * n {
        return Err(format!("pads {raw:?} must hold {} values", 2 * n));
    }
    if raw.iter().any(|&p| p < 0) {
        return Err(format!("negative pads {raw:?} (cropping) are not supported"));
    }
    let raw = super::non_negative(&raw, "pads")?;
    let mut pads = vec![[0usize; 2]; rank];
    for (k, &a) in axes.iter().enumerate() {
        pads[a] = [raw[k], raw[k + n]];
    }
    // Reflection mirrors about the edge element, so it reaches at most size - 1 elements out
    // (onnxruntime refuses wider ones too); edge and reflect have nothing to repeat in an
    // empty axis. Wider edge pads are fine: the back end chains them.
    let shape = &cx.ty(x).shape;
    for (a, (&[before, after], &size)) in pads.iter().zip(shape).enumerate() {
        let widest = before.max(after);
        let refused = match mode {
            PadMode::Constant => false,
            PadMode::Reflect => widest > 0 && widest >= size,
            PadMode::Edge => widest > 0 && size == 0,
        };
        if refused {
            return Err(format!(
                "{} padding of {before} and {after} on axis {a} of size {size}: {}",
                cx.attr_string("mode", "constant")?,
                match mode {
                    PadMode::Reflect => "reflect pads at most size - 1 on each side",
                    _ => "an empty axis has no edge to repeat",
                }
            ));
        }
    }
    cx.add(Op::Pad { pads, mode, value }, vec![x])
}

fn identity(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    cx.add(Op::Identity, vec![x])
}

/// Cast to another element type. Doubles become fp32 (Core ML has no f64); int64 stays int64
/// here and is narrowed with everything else by the `narrow_int64` pass.
fn cast(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let to = cx.attr_int("to", 0)?;
    let to = if to == crate::proto::onnx::tensor_proto::DataType::Double as i64 {
        edgec_passes::DType::F32
    } else {
        super::super::tensor::dtype_of(to as i32)?
    };
    cx.add(Op::Cast { to }, vec![x])
}

/// Cast to the element type of the second input (only its type matters).
fn cast_like(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let like = cx.required_input(1)?;
    let to = cx.ty(like).dtype;
    cx.add(Op::Cast { to }, vec![x])
}

/// Inference-mode Dropout is the identity; its mask output is not supported.
fn dropout(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if let Some(t) = cx.const_input(2) {
        if t.to_i64_vec().first().copied().unwrap_or(0) != 0 {
            return Err("training_mode=true is not supported".into());
        }
    } else if cx.input(2).is_some() {
        return Err("training_mode must be a constant".into());
    }
    identity(cx)
}

fn constant(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let tensor = if let Some(t) = cx.attr_tensor("value")? {
        t
    } else if cx.has_attr("value_float") {
        Tensor::scalar_f32(cx.attr_float("value_float", 0.0)?)
    } else if let Some(v) = cx.attr_floats("value_floats")? {
        Tensor::from_f32(vec![v.len()], &v)
    } else if cx.has_attr("value_int") {
        Tensor::from_i64(Vec::new(), &[cx.attr_int("value_int", 0)?])
    } else if let Some(v) = cx.attr_ints("value_ints")? {
        Tensor::from_i64(vec![v.len()], &v)
    } else {
        return Err("only value, value_float(s) and value_int(s) are supported".into());
    };
    let name = cx.node.output.first().cloned().unwrap_or_default();
    Ok(vec![cx.graph.add_const(name, tensor)])
}
