//! Indexing ops whose selection is known at compile time, each one MIL gather (or a slice and a
//! pad) with indices computed here: Compress (a constant condition), ReverseSequence (constant
//! lengths), CenterCropPad (a constant shape); and OneHot, a comparison with the positions along
//! the new axis, which also takes indices computed at run time.

use super::{axis, Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{BinaryOp, CompareOp, Op, PadMode, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[
    ("Compress", compress),
    ("ReverseSequence", reverse_sequence),
    ("CenterCropPad", center_crop_pad),
    ("OneHot", one_hot),
];

/// The elements of `input` along `axis` (of the flattened input without one) where the constant
/// condition is true; a condition shorter than the axis selects nothing past its end.
fn compress(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let condition = cx
        .const_input(1)
        .ok_or("condition must be a constant (Core ML needs the output's shape)")?
        .to_i64_vec();
    let (data, along) = if cx.has_attr("axis") {
        let a = axis(cx.attr_int("axis", 0)?, cx.ty(x).rank())?;
        (x, a)
    } else {
        let flat = cx.ty(x).num_elements();
        (cx.add_step(Op::Reshape { shape: vec![flat] }, vec![x], "flat")?, 0)
    };
    let dim = cx.ty(data).shape[along];
    if condition.len() > dim {
        return Err(format!(
            "condition has {} values for an axis of size {dim}",
            condition.len()
        ));
    }
    let picked: Vec<i64> = (0..condition.len() as i64)
        .filter(|&i| condition[i as usize] != 0)
        .collect();
    if picked.is_empty() {
        return Err("the condition selects nothing (zero-sized tensors are not supported)".into());
    }
    let indices = cx.add_const_step(Tensor::from_i64(vec![picked.len()], &picked), "indices");
    cx.add(Op::Gather { axis: along }, vec![data, indices])
}

/// Each batch entry's first `sequence_lens[b]` steps reversed, the rest kept: a gather along the
/// time axis with a constant index per element.
fn reverse_sequence(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let lengths = cx
        .const_input(1)
        .ok_or("sequence_lens must be a constant")?
        .to_i64_vec();
    let time = axis(cx.attr_int("time_axis", 0)?, shape.len())?;
    let batch = axis(cx.attr_int("batch_axis", 1)?, shape.len())?;
    if time == batch || time > 1 || batch > 1 {
        return Err(format!(
            "time_axis {time} and batch_axis {batch} must be 0 and 1 in some order"
        ));
    }
    if lengths.len() != shape[batch] {
        return Err(format!(
            "sequence_lens has {} values for a batch of {}",
            lengths.len(),
            shape[batch]
        ));
    }
    if let Some(bad) = lengths.iter().find(|&&l| l < 0 || l as usize > shape[time]) {
        return Err(format!("sequence length {bad} is outside 0..={}", shape[time]));
    }
    let inner: usize = shape[2..].iter().product();
    let mut indices = Vec::with_capacity(shape.iter().product());
    for outer in 0..shape[0] {
        for middle in 0..shape[1] {
            let (t, b) = if time == 0 { (outer, middle) } else { (middle, outer) };
            let length = lengths[b] as usize;
            let source = if t < length { length - 1 - t } else { t };
            indices.extend(std::iter::repeat_n(source as i64, inner));
        }
    }
    let indices = cx.add_const_step(Tensor::from_i64(shape, &indices), "indices");
    cx.add(Op::GatherElements { axis: time }, vec![x, indices])
}

/// Each listed axis cropped to, or zero-padded to, the constant target size, centred (an odd
/// difference leaves the extra element at the end, as in ONNX's reference).
fn center_crop_pad(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let targets = cx.const_ints(1, "shape")?;
    let axes = match cx.attr_ints("axes")? {
        Some(a) => super::axes(&a, shape.len())?,
        None => (0..shape.len()).collect(),
    };
    if targets.len() != axes.len() {
        return Err(format!(
            "shape {targets:?} must have one size per axis ({})",
            axes.len()
        ));
    }
    let targets = super::positive(&targets, "shape")?;
    let mut crop: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
    let mut pads = vec![[0, 0]; shape.len()];
    for (&a, &target) in axes.iter().zip(&targets) {
        let dim = shape[a];
        if target < dim {
            let begin = (dim - target) / 2;
            crop[a] = SliceAxis {
                begin,
                end: Some(begin + target),
                stride: 1,
            };
        } else if target > dim {
            let begin = (target - dim) / 2;
            pads[a] = [begin, target - dim - begin];
        }
    }
    let cropped = cx.add_step(Op::Slice { axes: crop }, vec![x], "cropped")?;
    if pads.iter().all(|p| *p == [0, 0]) {
        return cx.add(Op::Identity, vec![cropped]);
    }
    let pad = Op::Pad {
        pads,
        mode: PadMode::Constant,
        value: 0.0,
    };
    cx.add(pad, vec![cropped])
}

/// `values[1]` where the index (negative ones counting from `depth`) equals the position along
/// the new axis, `values[0]` elsewhere; an index out of range gives a row of `values[0]`.
fn one_hot(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let indices = cx.required_input(0)?;
    let depth = cx.const_input(1).ok_or("depth must be a constant")?.to_f32_vec();
    let depth = match depth[..] {
        [d] if d >= 1.0 && d.is_finite() => d as usize,
        _ => return Err(format!("depth must be one value of 1 or more, got {depth:?}")),
    };
    super::positive(&[depth as i64], "depth")?;
    let values = cx.required_input(2)?;
    if cx.ty(values).num_elements() != 2 {
        return Err(format!("values {} must hold two values (off, on)", cx.ty(values)));
    }
    let mut shape = cx.ty(indices).shape.clone();
    let rank = shape.len() + 1;
    let along = axis(cx.attr_int("axis", -1)?, rank)?;
    // Indices as int32 (float ones truncated, as ONNX casts them), negative ones wrapped.
    let index = if cx.ty(indices).dtype == DType::I32 {
        indices
    } else {
        cx.add_step(Op::Cast { to: DType::I32 }, vec![indices], "index")?
    };
    let zero = cx.add_const_step(Tensor::from_i64(Vec::new(), &[0]).cast(DType::I32), "zero");
    let size = cx.add_const_step(Tensor::from_i64(Vec::new(), &[depth as i64]).cast(DType::I32), "depth");
    let negative = cx.add_step(Op::Compare(CompareOp::Less), vec![index, zero], "negative")?;
    let wrapped = cx.add_step(Op::Binary(BinaryOp::Add), vec![index, size], "wrapped")?;
    let index = cx.add_step(Op::Select, vec![negative, wrapped, index], "wrapped_index")?;
    shape.insert(along, 1);
    let index = cx.add_step(Op::Reshape { shape }, vec![index], "expanded")?;
    let mut positions_shape = vec![1; rank];
    positions_shape[along] = depth;
    let positions: Vec<i64> = (0..depth as i64).collect();
    let positions = cx.add_const_step(
        Tensor::from_i64(positions_shape, &positions).cast(DType::I32),
        "positions",
    );
    let hit = cx.add_step(Op::Compare(CompareOp::Equal), vec![index, positions], "hit")?;
    let flat = cx.add_step(Op::Reshape { shape: vec![2] }, vec![values], "values")?;
    let pick = |cx: &mut NodeCx, i: usize, what: &str| {
        let axes = vec![SliceAxis {
            begin: i,
            end: Some(i + 1),
            stride: 1,
        }];
        cx.add_step(Op::Slice { axes }, vec![flat], what)
    };
    let off = pick(cx, 0, "off")?;
    let on = pick(cx, 1, "on")?;
    // A select's condition may not be wider than both its operands.
    let full = cx.ty(hit).shape.clone();
    let off = super::shape::broadcast_to(cx, off, &full, "off_full")?;
    cx.add(Op::Select, vec![hit, on, off])
}
