//! Elementwise binary ops with NumPy broadcasting: Add, Sub, Mul, Div; and the variadic Max,
//! Min, Sum and Mean.

use super::{Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{BinaryOp, Op};

pub const OPS: &[(&str, Importer)] = &[
    ("Add", add),
    ("Sub", sub),
    ("Mul", mul),
    ("Div", div),
    ("Max", max),
    ("Min", min),
    ("Sum", sum),
    ("Mean", mean),
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

/// The inputs of a variadic node (absent ones skipped), at least one.
fn variadic_inputs(cx: &NodeCx) -> Result<Vec<ValueId>, String> {
    let inputs: Vec<ValueId> = (0..cx.input_count()).filter_map(|i| cx.input(i)).collect();
    if inputs.is_empty() {
        return Err("needs at least one input".into());
    }
    Ok(inputs)
}

/// `op` folded left over `inputs` (NumPy broadcasting at each step); every step but the last is
/// named `<output>_<step>k`.
fn chain(cx: &mut NodeCx, op: BinaryOp, inputs: &[ValueId], step: &str) -> Result<ValueId, String> {
    let mut acc = inputs[0];
    for (k, &next) in inputs[1..].iter().enumerate() {
        acc = cx.add_step(Op::Binary(op), vec![acc, next], &format!("{step}{k}"))?;
    }
    Ok(acc)
}

/// Variadic Max/Min/Sum: a chain of binary ops.
fn variadic(cx: &mut NodeCx, op: BinaryOp) -> Result<Vec<ValueId>, String> {
    let inputs = variadic_inputs(cx)?;
    match inputs.split_last() {
        Some((&last, rest)) if !rest.is_empty() => {
            let acc = chain(cx, op, rest, "partial")?;
            cx.add(Op::Binary(op), vec![acc, last])
        }
        _ => cx.add(Op::Identity, inputs),
    }
}

fn sum(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    variadic(cx, BinaryOp::Add)
}

/// The inputs' sum times 1/n (float only, as in ONNX).
fn mean(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let inputs = variadic_inputs(cx)?;
    let dtype = cx.ty(inputs[0]).dtype;
    if !dtype.is_float() {
        return Err(format!("Mean takes float inputs, got {dtype}"));
    }
    if inputs.len() == 1 {
        return cx.add(Op::Identity, inputs);
    }
    let total = chain(cx, BinaryOp::Add, &inputs, "sum")?;
    let scale = cx.add_const_step(
        Tensor::scalar_f32(1.0 / inputs.len() as f32).cast(dtype),
        "inverse_count",
    );
    cx.add(Op::Binary(BinaryOp::Mul), vec![total, scale])
}

fn max(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    variadic(cx, BinaryOp::Maximum)
}

fn min(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    variadic(cx, BinaryOp::Minimum)
}
