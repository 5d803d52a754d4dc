//! Elementwise binary ops with NumPy broadcasting: Add, Sub, Mul, Div, Max, Min.

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BinaryOp, Op};

pub const OPS: &[(&str, Importer)] = &[
    ("Add", add),
    ("Sub", sub),
    ("Mul", mul),
    ("Div", div),
    ("Max", max),
    ("Min", min),
];

fn binary(cx: &mut NodeCx, op: BinaryOp) -> Result<Vec<ValueId>, String> {
    let a = cx.required_input(0)?;
    let b = cx.required_input(1)?;
    if cx.opset < 7 && cx.has_attr("broadcast") {
        return Err("legacy broadcast/axis attributes (opset < 7) are not supported".into());
    }
    cx.add(Op::Binary(op), vec![a, b])
}

fn add(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    binary(cx, BinaryOp::Add)
}

fn sub(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    binary(cx, BinaryOp::Sub)
}

fn mul(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    binary(cx, BinaryOp::Mul)
}

fn div(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let a = cx.required_input(0)?;
    let integer = !cx.ty(a).dtype.is_float();
    let constant = cx.const_input(0).is_some() && cx.const_input(1).is_some();
    if integer && !constant {
        // ONNX truncates toward zero; MIL's floor_div floors. Only constants fold exactly.
        return Err("integer division of non-constant tensors is not supported".into());
    }
    binary(cx, BinaryOp::Div)
}

/// Variadic Max/Min: a chain of binary ops.
fn variadic(cx: &mut NodeCx, op: BinaryOp) -> Result<Vec<ValueId>, String> {
    let inputs: Vec<ValueId> = (0..cx.input_count()).filter_map(|i| cx.input(i)).collect();
    match inputs.len() {
        0 => Err("needs at least one input".into()),
        1 => cx.add(Op::Identity, inputs),
        n => {
            let mut acc = inputs[0];
            for (k, &next) in inputs[1..n - 1].iter().enumerate() {
                acc = cx.add_step(Op::Binary(op), vec![acc, next], &format!("partial{k}"))?;
            }
            cx.add(Op::Binary(op), vec![acc, inputs[n - 1]])
        }
    }
}

fn max(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    variadic(cx, BinaryOp::Maximum)
}

fn min(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    variadic(cx, BinaryOp::Minimum)
}
