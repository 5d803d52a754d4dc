//! Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL2.
//!
//! `axes` is an attribute before opset 18 (ReduceSum: 13) and an optional constant input from
//! then on, where `noop_with_empty_axes` also appears. No axes means every axis (or, with
//! `noop_with_empty_axes`, the identity). `keepdims` defaults to 1 in ONNX; the IR always
//! carries it (MIL's default is false).

use super::{axis, Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{Op, ReduceKind};

pub const OPS: &[(&str, Importer)] = &[
    ("ReduceMean", reduce_mean),
    ("ReduceSum", reduce_sum),
    ("ReduceMax", reduce_max),
    ("ReduceMin", reduce_min),
    ("ReduceProd", reduce_prod),
    ("ReduceL2", reduce_l2),
];

fn reduce_mean(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Mean, 18)
}

fn reduce_sum(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Sum, 13)
}

fn reduce_max(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Max, 18)
}

fn reduce_min(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Min, 18)
}

fn reduce_prod(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::Prod, 18)
}

fn reduce_l2(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    reduce(cx, ReduceKind::L2, 18)
}

/// `axes_input_since`: the first opset where `axes` is an input rather than an attribute.
fn reduce(cx: &mut NodeCx, kind: ReduceKind, axes_input_since: i64) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let ty = cx.ty(x).clone();
    if !ty.dtype.is_float() {
        return Err(format!("reductions of {ty} are not supported (float inputs only)"));
    }
    if ty.shape.contains(&0) {
        return Err(format!("reductions of an empty tensor ({ty}) are not supported"));
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
            return cx.add(Op::Identity, vec![x]);
        }
        (0..ty.rank()).collect()
    } else {
        axes.iter()
            .map(|&a| axis(a, ty.rank()))
            .collect::<Result<Vec<_>, _>>()?
    };
    axes.sort_unstable();
    axes.dedup();
    cx.add(Op::Reduce { kind, axes, keep_dims }, vec![x])
}
