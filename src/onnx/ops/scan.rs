//! Scans and selections along one axis: CumSum, CumProd (unrolled: MIL has no cumulative
//! product), TopK.
//!
//! The axis and `K` are operands in ONNX but compile-time parameters in MIL, so they must be
//! constants. TopK's indices come out of Core ML as int32; they are widened to ONNX's int64 by
//! a Cast that `narrow_int64` removes again, as for ArgMax.

use super::{axis, tensor_axis, Importer, NodeCx};
use edgec_passes::ir::Tensor;
use edgec_passes::ir::{DType, ValueId};
use edgec_passes::op::{BinaryOp, Op, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[("CumSum", cumsum), ("CumProd", cumprod), ("TopK", top_k)];

/// The longest axis CumProd unrolls (one slice and one multiply per step).
const MAX_CUMPROD_STEPS: usize = 4096;

/// A scalar integer operand (a 0-D or one-element tensor) that must be constant.
fn const_scalar(cx: &NodeCx, input: usize, what: &str) -> Result<i64, String> {
    match cx.const_ints(input, what)?.as_slice() {
        [v] => Ok(*v),
        v => Err(format!("{what} (input {input}) must hold one value, got {v:?}")),
    }
}

fn cumsum(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    if !(x_ty.dtype.is_float() || matches!(x_ty.dtype, DType::I32 | DType::I64)) {
        return Err(format!(
            "input {x_ty} must be float, int32 or int64 (Core ML's cumsum has no other types)"
        ));
    }
    let a = axis(const_scalar(cx, 1, "axis")?, x_ty.rank())?;
    let exclusive = cx.attr_int("exclusive", 0)? != 0;
    let reverse = cx.attr_int("reverse", 0)? != 0;
    cx.add(
        Op::CumSum {
            axis: a,
            exclusive,
            reverse,
        },
        vec![x],
    )
}

/// CumProd (opset 26): the running product along the axis, unrolled into one slice and one
/// multiply per step and concatenated; `exclusive` starts from 1, `reverse` runs from the end.
fn cumprod(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let dtype = cx.ty(x).dtype;
    if !(dtype.is_float() || matches!(dtype, DType::I32 | DType::I64)) {
        return Err(format!("input {} must be float, int32 or int64", cx.ty(x)));
    }
    let shape = cx.ty(x).shape.clone();
    let along = axis(const_scalar(cx, 1, "axis")?, shape.len())?;
    let exclusive = cx.attr_int("exclusive", 0)? != 0;
    let reverse = cx.attr_int("reverse", 0)? != 0;
    let steps = shape[along];
    if steps > MAX_CUMPROD_STEPS {
        return Err(format!(
            "an axis of {steps} is longer than the {MAX_CUMPROD_STEPS} steps CumProd unrolls"
        ));
    }
    let mut step_shape = shape.clone();
    step_shape[along] = 1;
    let ones = Tensor::from_f32(step_shape.clone(), &vec![1.0; step_shape.iter().product()]).cast(dtype);
    let ones = cx.add_const_step(ones, "ones");
    let order: Vec<usize> = if reverse {
        (0..steps).rev().collect()
    } else {
        (0..steps).collect()
    };
    let mut running: Option<ValueId> = None;
    let mut results = vec![ones; steps];
    for (k, &position) in order.iter().enumerate() {
        let mut axes: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
        axes[along] = SliceAxis {
            begin: position,
            end: Some(position + 1),
            stride: 1,
        };
        let element = cx.add_step(Op::Slice { axes }, vec![x], &format!("step{k}"))?;
        let product = match running {
            None => element,
            Some(r) => cx.add_step(Op::Binary(BinaryOp::Mul), vec![r, element], &format!("product{k}"))?,
        };
        results[position] = if exclusive { running.unwrap_or(ones) } else { product };
        running = Some(product);
    }
    if steps == 1 {
        return cx.add(Op::Identity, vec![results[0]]);
    }
    cx.add(Op::Concat { axis: along }, results)
}

/// TopK: `k` from the attribute (opset 1) or the constant input `K`; the result is always
/// sorted (ONNX leaves the order free when `sorted=0`), ties in index order.
fn top_k(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    if !(x_ty.dtype.is_float() || matches!(x_ty.dtype, DType::I32 | DType::I64)) {
        return Err(format!(
            "input {x_ty} must be float, int32 or int64 (Core ML's topk has no other types)"
        ));
    }
    let a = tensor_axis(cx.attr_int("axis", -1)?, x_ty.rank())?;
    let k = if cx.opset < 10 {
        cx.attr_int("k", 0)?
    } else {
        const_scalar(cx, 1, "K")?
    };
    let dim = x_ty.shape[a];
    let k = usize::try_from(k)
        .ok()
        .filter(|k| (1..=dim).contains(k))
        .ok_or_else(|| format!("K={k} must be in 1..={dim} (zero-sized outputs are not supported)"))?;
    let largest = cx.attr_int("largest", 1)? != 0;
    let values_name = cx.node.output.first().cloned().unwrap_or_default();
    let indices_name = cx.node.output.get(1).cloned().unwrap_or_default();
    let origin = cx.node.name.clone();
    let outputs = cx
        .graph
        .add_node(
            Op::TopK { k, axis: a, largest },
            vec![x],
            &[values_name, format!("{indices_name}_i32")],
            origin,
        )
        .map_err(|e| e.0)?;
    let indices = cx.add_output(1, Op::Cast { to: DType::I64 }, vec![outputs[1]])?;
    Ok(vec![outputs[0], indices])
}
