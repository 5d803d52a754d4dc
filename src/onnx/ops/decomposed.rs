//! Activations MIL has no op for (or none that matches ONNX's definition), built from IR ops:
//! Softsign, ThresholdedRelu, Shrink, Celu, Swish. Each follows the ONNX definition term by
//! term, so fp32 results match onnxruntime to rounding.

use super::{Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{BinaryOp, CompareOp, Op, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("Softsign", softsign),
    ("ThresholdedRelu", thresholded_relu),
    ("Shrink", shrink),
    ("Celu", celu),
    ("Swish", swish),
];

fn scalar(cx: &mut NodeCx, value: f32, dtype: DType, suffix: &str) -> ValueId {
    cx.add_const_step(Tensor::scalar_f32(value).cast(dtype), suffix)
}

/// `x / (1 + |x|)`.
fn softsign(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let abs = cx.add_step(Op::Unary(UnaryOp::Abs), vec![x], "abs")?;
    let one = scalar(cx, 1.0, dtype, "one");
    let denominator = cx.add_step(Op::Binary(BinaryOp::Add), vec![abs, one], "denominator")?;
    cx.add(Op::Binary(BinaryOp::Div), vec![x, denominator])
}

/// `x > alpha ? x : 0`.
fn thresholded_relu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let alpha = cx.attr_float("alpha", 1.0)?;
    let alpha = scalar(cx, alpha, dtype, "alpha");
    let zero = scalar(cx, 0.0, dtype, "zero");
    let above = cx.add_step(Op::Compare(CompareOp::Greater), vec![x, alpha], "above")?;
    cx.add(Op::Select, vec![above, x, zero])
}

/// `x < -lambd ? x + bias : (x > lambd ? x - bias : 0)`.
fn shrink(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let lambd = cx.attr_float("lambd", 0.5)?;
    let bias = cx.attr_float("bias", 0.0)?;
    let low = scalar(cx, -lambd, dtype, "low");
    let high = scalar(cx, lambd, dtype, "high");
    let bias = scalar(cx, bias, dtype, "bias");
    let zero = scalar(cx, 0.0, dtype, "zero");
    let below = cx.add_step(Op::Compare(CompareOp::Less), vec![x, low], "below")?;
    let above = cx.add_step(Op::Compare(CompareOp::Greater), vec![x, high], "above")?;
    let raised = cx.add_step(Op::Binary(BinaryOp::Add), vec![x, bias], "raised")?;
    let lowered = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, bias], "lowered")?;
    let upper = cx.add_step(Op::Select, vec![above, lowered, zero], "upper")?;
    cx.add(Op::Select, vec![below, raised, upper])
}

/// `max(0, x) + min(0, alpha·(exp(x/alpha) − 1))`, which is `alpha · elu(x / alpha)` with elu's
/// alpha 1.
fn celu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let alpha = cx.attr_float("alpha", 1.0)?;
    if alpha == 0.0 || !alpha.is_finite() {
        return Err(format!("alpha {alpha} must be finite and non-zero"));
    }
    let alpha = scalar(cx, alpha, dtype, "alpha");
    let scaled = cx.add_step(Op::Binary(BinaryOp::Div), vec![x, alpha], "scaled")?;
    let elu = cx.add_step(Op::Unary(UnaryOp::Elu { alpha: 1.0 }), vec![scaled], "elu")?;
    cx.add(Op::Binary(BinaryOp::Mul), vec![elu, alpha])
}

/// `x · sigmoid(alpha · x)` (opset 24); with alpha 1 it is MIL's `silu`.
fn swish(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let alpha = cx.attr_float("alpha", 1.0)?;
    if alpha == 1.0 {
        return cx.add(Op::Unary(UnaryOp::Silu), vec![x]);
    }
    let alpha = scalar(cx, alpha, dtype, "alpha");
    let scaled = cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, alpha], "scaled")?;
    let gate = cx.add_step(Op::Sigmoid, vec![scaled], "gate")?;
    cx.add(Op::Binary(BinaryOp::Mul), vec![x, gate])
}
