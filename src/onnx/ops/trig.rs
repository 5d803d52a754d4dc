//! Trigonometric and hyperbolic functions. Each is one MIL op, except Asinh and Acosh, which MIL
//! lacks and which are built from `log` and `sqrt` in their cancellation-free forms.

use super::decomposed::scalar;
use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BinaryOp, Op, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("Sin", sin),
    ("Cos", cos),
    ("Tan", tan),
    ("Asin", asin),
    ("Acos", acos),
    ("Atan", atan),
    ("Sinh", sinh),
    ("Cosh", cosh),
    ("Tanh", tanh),
    ("Atanh", atanh),
    ("Asinh", asinh),
    ("Acosh", acosh),
];

fn unary(cx: &mut NodeCx, op: UnaryOp) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    cx.add(Op::Unary(op), vec![x])
}

fn sin(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Sin)
}

fn cos(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Cos)
}

fn tan(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Tan)
}

fn asin(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Asin)
}

fn acos(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Acos)
}

fn atan(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Atan)
}

fn sinh(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Sinh)
}

fn cosh(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Cosh)
}

fn tanh(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Tanh)
}

fn atanh(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Atanh)
}

/// `sign(x) · log(|x| + sqrt(x² + 1))`: the odd form, since `x + sqrt(x² + 1)` cancels to 0 for
/// large negative x. Like any `x²` form it overflows for |x| above 2^64 in fp32 (256 in fp16).
fn asinh(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let magnitude = cx.add_step(Op::Unary(UnaryOp::Abs), vec![x], "abs")?;
    let square = cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, x], "square")?;
    let one = scalar(cx, 1.0, dtype, "one");
    let shifted = cx.add_step(Op::Binary(BinaryOp::Add), vec![square, one], "square_plus_one")?;
    let root = cx.add_step(Op::Unary(UnaryOp::Sqrt), vec![shifted], "sqrt")?;
    let sum = cx.add_step(Op::Binary(BinaryOp::Add), vec![magnitude, root], "sum")?;
    let log = cx.add_step(Op::Unary(UnaryOp::Log), vec![sum], "log")?;
    let sign = cx.add_step(Op::Unary(UnaryOp::Sign), vec![x], "sign")?;
    cx.add(Op::Binary(BinaryOp::Mul), vec![sign, log])
}

/// `log(x + sqrt((x − 1)(x + 1)))`, NaN below 1 as in ONNX; the factored `x² − 1` keeps its
/// precision near 1.
fn acosh(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let one = scalar(cx, 1.0, dtype, "one");
    let below = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, one], "minus_one")?;
    let above = cx.add_step(Op::Binary(BinaryOp::Add), vec![x, one], "plus_one")?;
    let product = cx.add_step(Op::Binary(BinaryOp::Mul), vec![below, above], "product")?;
    let root = cx.add_step(Op::Unary(UnaryOp::Sqrt), vec![product], "sqrt")?;
    let sum = cx.add_step(Op::Binary(BinaryOp::Add), vec![x, root], "sum")?;
    cx.add(Op::Unary(UnaryOp::Log), vec![sum])
}
