//! Ops MIL has no op for (or none that matches ONNX's definition), built from IR ops: the
//! activations Softsign, ThresholdedRelu, Shrink, Celu, Swish and SwiGLU; Hardmax; and float Mod.
//! Each follows the ONNX definition term by term, so fp32 results match onnxruntime to rounding.

use super::{Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{ArgKind, BinaryOp, CompareOp, LogicalOp, Op, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("Softsign", softsign),
    ("ThresholdedRelu", thresholded_relu),
    ("Shrink", shrink),
    ("Celu", celu),
    ("Swish", swish),
    ("SwiGLU", swiglu),
    ("Hardmax", hardmax),
    ("Mod", modulo),
];

/// A scalar constant of `dtype`, named `<output>_<suffix>`.
pub(super) fn scalar(cx: &mut NodeCx, value: f32, dtype: DType, suffix: &str) -> ValueId {
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
    let gate = sigmoid_gate(cx, x, dtype, alpha)?;
    cx.add(Op::Binary(BinaryOp::Mul), vec![x, gate])
}

/// `sigmoid(alpha · x)`.
fn sigmoid_gate(cx: &mut NodeCx, x: ValueId, dtype: DType, alpha: f32) -> Result<ValueId, String> {
    let alpha = scalar(cx, alpha, dtype, "alpha");
    let scaled = cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, alpha], "scaled")?;
    cx.add_step(Op::Sigmoid, vec![scaled], "gate")
}

/// SwiGLU (opset 28): `swish_alpha(a) · b`, with a and b of one shape (no broadcasting).
fn swiglu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (a, dtype) = cx.float_input(0)?;
    let (b, _) = cx.float_input(1)?;
    if cx.ty(a) != cx.ty(b) {
        return Err(format!(
            "A {} and B {} must have one type and shape",
            cx.ty(a),
            cx.ty(b)
        ));
    }
    let alpha = cx.attr_float("alpha", 1.0)?;
    let swish = if alpha == 1.0 {
        cx.add_step(Op::Unary(UnaryOp::Silu), vec![a], "swish")?
    } else {
        let gate = sigmoid_gate(cx, a, dtype, alpha)?;
        cx.add_step(Op::Binary(BinaryOp::Mul), vec![a, gate], "swish")?
    };
    cx.add(Op::Binary(BinaryOp::Mul), vec![swish, b])
}

/// Hardmax: 1 at the first maximum along the axis, 0 elsewhere. The argmax, kept as a size-1
/// axis, is compared with each position along the axis. Before opset 13 the input is viewed as
/// 2-D, as for Softmax.
fn hardmax(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (_, dtype) = cx.float_input(0)?;
    super::norm::along_softmax_axis(cx, |cx, x, axis, last| {
        let shape = cx.ty(x).shape.clone();
        let argmax = Op::ArgReduce {
            kind: ArgKind::Max,
            axis,
            keep_dims: true,
        };
        let first_max = cx.add_step(argmax, vec![x], "argmax")?;
        let mut positions_shape = vec![1; shape.len()];
        positions_shape[axis] = shape[axis];
        let positions: Vec<i64> = (0..shape[axis] as i64).collect();
        let positions = cx.add_const_step(
            Tensor::from_i64(positions_shape, &positions).cast(DType::I32),
            "positions",
        );
        let hit = cx.add_step(Op::Compare(CompareOp::Equal), vec![first_max, positions], "hit")?;
        let cast = Op::Cast { to: dtype };
        if last {
            Ok(cx.add(cast, vec![hit])?[0])
        } else {
            cx.add_step(cast, vec![hit], "hardmax")
        }
    })
}

/// Float Mod: `x − floor(x / y) · y` (fmod 0, the sign of y) or `x − trunc(x / y) · y` (fmod 1,
/// the sign of x), with ONNX's special case for an infinite y and a finite x, where the formula
/// gives NaN: x, or (fmod 0, signs differing and x non-zero) y. The other special cases (x
/// infinite, y zero, NaN) are NaN by the formula already. Integer Mod is not built: MIL's
/// integer division floors, and its `mod` documents no sign convention.
fn modulo(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let y = cx.required_input(1)?;
    let dtype = cx.ty(x).dtype;
    if !dtype.is_float() || cx.ty(y).dtype != dtype {
        return Err(format!(
            "Mod of {} and {} is not supported (float operands of one type only)",
            cx.ty(x),
            cx.ty(y)
        ));
    }
    let fmod = match cx.attr_int("fmod", 0)? {
        0 => false,
        1 => true,
        other => return Err(format!("fmod must be 0 or 1, got {other}")),
    };
    let quotient = cx.add_step(Op::Binary(BinaryOp::Div), vec![x, y], "quotient")?;
    let floor = cx.add_step(Op::Unary(UnaryOp::Floor), vec![quotient], "floor")?;
    let whole = if fmod {
        let ceil = cx.add_step(Op::Unary(UnaryOp::Ceil), vec![quotient], "ceil")?;
        let zero = scalar(cx, 0.0, dtype, "zero");
        let negative = cx.add_step(Op::Compare(CompareOp::Less), vec![quotient, zero], "negative")?;
        cx.add_step(Op::Select, vec![negative, ceil, floor], "trunc")?
    } else {
        floor
    };
    let multiple = cx.add_step(Op::Binary(BinaryOp::Mul), vec![whole, y], "multiple")?;
    let remainder = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, multiple], "remainder")?;

    let infinity = scalar(cx, f32::INFINITY, dtype, "infinity");
    let y_size = cx.add_step(Op::Unary(UnaryOp::Abs), vec![y], "y_abs")?;
    let x_size = cx.add_step(Op::Unary(UnaryOp::Abs), vec![x], "x_abs")?;
    let y_infinite = cx.add_step(Op::Compare(CompareOp::Equal), vec![y_size, infinity], "y_infinite")?;
    let x_finite = cx.add_step(Op::Compare(CompareOp::Less), vec![x_size, infinity], "x_finite")?;
    let special = cx.add_step(Op::Logical(LogicalOp::And), vec![y_infinite, x_finite], "special")?;
    let special_value = if fmod {
        x
    } else {
        // x when x is 0 or has y's sign, else y.
        let y_sign = cx.add_step(Op::Unary(UnaryOp::Sign), vec![y], "y_sign")?;
        let signed = cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, y_sign], "signed")?;
        let zero = scalar(cx, 0.0, dtype, "special_zero");
        let keeps_x = cx.add_step(Op::Compare(CompareOp::GreaterEqual), vec![signed, zero], "keeps_x")?;
        cx.add_step(Op::Select, vec![keeps_x, x, y], "special_value")?
    };
    cx.add(Op::Select, vec![special, special_value, remainder])
}
