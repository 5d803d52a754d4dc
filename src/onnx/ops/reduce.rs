//! Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL2; and, built
//! on them, ReduceL1 (`sum |x|`), ReduceSumSquare (`sum x²`), ReduceLogSum (`log sum x`) and
//! ReduceLogSumExp (`max + log sum exp(x − max)`, shifted so large inputs do not overflow).
//!
//! A reduction of an empty tensor (a zero-sized axis, which edgec holds only as a constant) is
//! the constant ONNX defines for the empty set: 0 for sums and norms, 1 for ReduceProd, −∞ for
//! ReduceMax, ReduceLogSum and ReduceLogSumExp, +∞ for ReduceMin. The mean of nothing is
//! undefined and refused.
//!
//! `axes` is an attribute before opset 18 (ReduceSum: 13) and an optional constant input from
//! then on, where `noop_with_empty_axes` also appears. No axes means every axis (or, with
//! `noop_with_empty_axes`, the identity). `keepdims` defaults to 1 in ONNX; the IR always
//! carries it (MIL's default is false).

use super::{axis, Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{BinaryOp, Op, ReduceKind, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("ReduceMean", reduce_mean),
    ("ReduceSum", reduce_sum),
    ("ReduceMax", reduce_max),
    ("ReduceMin", reduce_min),
    ("ReduceProd", reduce_prod),
    ("ReduceL2", reduce_l2),
    ("ReduceL1", reduce_l1),
    ("ReduceSumSquare", reduce_sum_square),
    ("ReduceLogSum", reduce_log_sum),
    ("ReduceLogSumExp", reduce_log_sum_exp),
];

fn reduce_mean(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Mean, 18, None)
}

fn reduce_sum(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Sum, 13, Some(0.0))
}

fn reduce_max(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Max, 18, Some(f32::NEG_INFINITY))
}

fn reduce_min(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Min, 18, Some(f32::INFINITY))
}

fn reduce_prod(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Prod, 18, Some(1.0))
}

fn reduce_l2(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::L2, 18, Some(0.0))
}

/// `sum |x|`.
fn reduce_l1(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, axes) = reduction(cx, 18)?;
    if let Some(empty) = of_empty_set(cx, x, &axes, Some(0.0))? {
        return Ok(empty);
    }
    let abs = cx.add_step(Op::Unary(UnaryOp::Abs), vec![x], "abs")?;
    finish(cx, ReduceKind::Sum, abs, axes)
}

/// `sum x²`.
fn reduce_sum_square(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, axes) = reduction(cx, 18)?;
    if let Some(empty) = of_empty_set(cx, x, &axes, Some(0.0))? {
        return Ok(empty);
    }
    let square = cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, x], "square")?;
    finish(cx, ReduceKind::Sum, square, axes)
}

/// `log sum x`.
fn reduce_log_sum(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, axes) = reduction(cx, 18)?;
    if let Some(empty) = of_empty_set(cx, x, &axes, Some(f32::NEG_INFINITY))? {
        return Ok(empty);
    }
    let sum = step(cx, ReduceKind::Sum, x, axes, "sum")?;
    cx.add(Op::Unary(UnaryOp::Log), vec![sum])
}

/// `max + log sum exp(x − max)`, the max kept over the reduced axes so it broadcasts back.
fn reduce_log_sum_exp(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, axes) = reduction(cx, 18)?;
    if let Some(empty) = of_empty_set(cx, x, &axes, Some(f32::NEG_INFINITY))? {
        return Ok(empty);
    }
    let Some(Reduction { axes, keep_dims }) = axes else {
        // log(exp(x)) over no axis.
        return cx.add(Op::Identity, vec![x]);
    };
    let kept = || {
        Some(Reduction {
            axes: axes.clone(),
            keep_dims: true,
        })
    };
    let max = step(cx, ReduceKind::Max, x, kept(), "max")?;
    let shifted = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, max], "shifted")?;
    let exp = cx.add_step(Op::Unary(UnaryOp::Exp), vec![shifted], "exp")?;
    let sum = step(cx, ReduceKind::Sum, exp, kept(), "sum")?;
    let log = cx.add_step(Op::Unary(UnaryOp::Log), vec![sum], "log")?;
    if keep_dims {
        return cx.add(Op::Binary(BinaryOp::Add), vec![log, max]);
    }
    let kept_shape = cx.add_step(Op::Binary(BinaryOp::Add), vec![log, max], "kept")?;
    let shape = cx
        .ty(kept_shape)
        .shape
        .iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &n)| n)
        .collect();
    cx.add(Op::Reshape { shape }, vec![kept_shape])
}

/// What a reduction node asks for: the axes (sorted, distinct) and keepdims, or `None` for no
/// reduction at all (no axes with `noop_with_empty_axes`, or a scalar).
struct Reduction {
    axes: Vec<usize>,
    keep_dims: bool,
}

/// `kind` over `axes` of `v` as the node's output (the identity for no reduction).
fn finish(cx: &mut NodeCx, kind: ReduceKind, v: ValueId, axes: Option<Reduction>) -> Result<Vec<ValueId>, String> {
    match axes {
        Some(Reduction { axes, keep_dims }) => cx.add(Op::Reduce { kind, axes, keep_dims }, vec![v]),
        None => cx.add(Op::Identity, vec![v]),
    }
}

/// `kind` over `axes` of `v` as an intermediate value.
fn step(
    cx: &mut NodeCx,
    kind: ReduceKind,
    v: ValueId,
    axes: Option<Reduction>,
    suffix: &str,
) -> Result<ValueId, String> {
    match axes {
        Some(Reduction { axes, keep_dims }) => cx.add_step(Op::Reduce { kind, axes, keep_dims }, vec![v], suffix),
        None => Ok(v),
    }
}

/// `identity`: the reduction of the empty set (`None`: undefined).
fn reduce(
    cx: &mut NodeCx,
    kind: ReduceKind,
    axes_input_since: i64,
    identity: Option<f32>,
) -> Result<Vec<ValueId>, String> {
    let (x, axes) = reduction(cx, axes_input_since)?;
    if let Some(empty) = of_empty_set(cx, x, &axes, identity)? {
        return Ok(empty);
    }
    finish(cx, kind, x, axes)
}

/// When `x` is empty, the node's output as a constant: `identity` wherever the reduced axes
/// held nothing (all of the output), or `x` itself for no reduction. `None` for a non-empty `x`.
fn of_empty_set(
    cx: &mut NodeCx,
    x: ValueId,
    axes: &Option<Reduction>,
    identity: Option<f32>,
) -> Result<Option<Vec<ValueId>>, String> {
    let ty = cx.ty(x).clone();
    if ty.num_elements() > 0 {
        return Ok(None);
    }
    let Some(Reduction { axes, keep_dims }) = axes else {
        return Ok(Some(vec![x]));
    };
    let identity = identity.ok_or_else(|| format!("the reduction of an empty tensor ({ty}) is undefined"))?;
    let shape: Vec<usize> = ty
        .shape
        .iter()
        .enumerate()
        .filter_map(|(d, &n)| match axes.contains(&d) {
            true if *keep_dims => Some(1),
            true => None,
            false => Some(n),
        })
        .collect();
    let count = shape.iter().product();
    let filled = Tensor::from_f32(shape, &vec![identity; count]).cast(ty.dtype);
    Ok(Some(vec![cx.add_const_output(0, filled)]))
}

/// The float input and the reduction the node asks for. `axes_input_since`: the first opset
/// where `axes` is an input rather than an attribute.
fn reduction(cx: &mut NodeCx, axes_input_since: i64) -> Result<(ValueId, Option<Reduction>), String> {
    let x = cx.required_input(0)?;
    let ty = cx.ty(x).clone();
    if !ty.dtype.is_float() {
        return Err(format!("reductions of {ty} are not supported (float inputs only)"));
    }
    let keep_dims = cx.attr_int("keepdims", 1)? != 0;
    let (axes, noop) = if cx.opset < axes_input_since {
        (cx.attr_ints("axes")?.unwrap_or_default(), false)
    } else {
        let axes = match cx.input(1) {
            Some(_) => cx.const_ints(1, "axes")?,
            None => Vec::new(),
        };
        (axes, cx.attr_int("noop_with_empty_axes", 0)? != 0)
    };
    let mut axes = if axes.is_empty() {
        if noop || ty.rank() == 0 {
            return Ok((x, None));
        }
        (0..ty.rank()).collect()
    } else {
        axes.iter()
            .map(|&a| axis(a, ty.rank()))
            .collect::<Result<Vec<_>, _>>()?
    };
    axes.sort_unstable();
    axes.dedup();
    Ok((x, Some(Reduction { axes, keep_dims })))
}
