//! Activations: Relu, Sigmoid, HardSigmoid, HardSwish, Clip; and Selu, Mish and PRelu, built
//! from existing IR ops.

use super::{Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{broadcast_shapes, BinaryOp, CompareOp, Op, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("Relu", relu),
    ("Sigmoid", sigmoid),
    ("HardSigmoid", hard_sigmoid),
    ("HardSwish", hard_swish),
    ("Clip", clip),
    ("Selu", selu),
    ("Mish", mish),
    ("PRelu", prelu),
];

fn unary(cx: &mut NodeCx, op: Op) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    cx.add(op, vec![x])
}

fn relu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, Op::Relu)
}

fn sigmoid(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, Op::Sigmoid)
}

fn hard_sigmoid(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let alpha = cx.attr_float("alpha", 0.2)?;
    let beta = cx.attr_float("beta", 0.5)?;
    unary(cx, Op::HardSigmoid { alpha, beta })
}

fn hard_swish(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, Op::HardSwish)
}

/// Bounds come from attributes before opset 11 and from optional constant inputs after.
fn clip(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (min, max) = if cx.opset < 11 {
        let min = cx.attr_float("min", f32::NEG_INFINITY)?;
        let max = cx.attr_float("max", f32::INFINITY)?;
        (Some(min).filter(|v| v.is_finite()), Some(max).filter(|v| v.is_finite()))
    } else {
        let bound = |i: usize| -> Result<Option<f32>, String> {
            match cx.input(i) {
                None => Ok(None),
                Some(_) => {
                    let t = cx
                        .const_input(i)
                        .ok_or_else(|| format!("bound (input {i}) must be a constant"))?;
                    let v = t.to_f32_vec();
                    if v.len() != 1 {
                        return Err(format!("bound (input {i}) must be a scalar"));
                    }
                    Ok(Some(v[0]))
                }
            }
        };
        (bound(1)?, bound(2)?)
    };
    unary(cx, Op::Clip { min, max })
}

/// `gamma * elu(x, alpha)`: MIL has no selu, and the two agree on both sides of zero.
fn selu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let alpha = cx.attr_float("alpha", 1.673_263_2)?;
    let gamma = cx.attr_float("gamma", 1.050_701)?;
    let elu = cx.add_step(Op::Unary(UnaryOp::Elu { alpha }), vec![x], "elu")?;
    let gamma = cx.add_const_step(Tensor::scalar_f32(gamma).cast(dtype), "gamma");
    cx.add(Op::Binary(BinaryOp::Mul), vec![elu, gamma])
}

/// `x * tanh(softplus(x))`, the definition; MIL has no mish.
fn mish(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    let softplus = cx.add_step(Op::Unary(UnaryOp::Softplus), vec![x], "softplus")?;
    let tanh = cx.add_step(Op::Unary(UnaryOp::Tanh), vec![softplus], "tanh")?;
    cx.add(Op::Binary(BinaryOp::Mul), vec![x, tanh])
}

/// A constant slope with one distinct value is a leaky relu; any other slope (broadcast to X,
/// unidirectionally) gives `max(x, 0) + slope * min(x, 0)`.
fn prelu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let slope = cx.required_input(1)?;
    let (x_ty, slope_ty) = (cx.ty(x).clone(), cx.ty(slope).clone());
    if slope_ty.dtype != x_ty.dtype {
        return Err(format!("slope {slope_ty} must have the input's type {}", x_ty.dtype));
    }
    if broadcast_shapes(&slope_ty.shape, &x_ty.shape).ok().as_ref() != Some(&x_ty.shape) {
        return Err(format!("slope {slope_ty} does not broadcast to the input {x_ty}"));
    }
    if cx.opset < 7 && slope_ty.num_elements() != 1 {
        return Err(format!(
            "opset {} PRelu (legacy broadcasting) with a non-scalar slope {slope_ty} is not supported",
            cx.opset
        ));
    }
    if x_ty.dtype.is_float() {
        if let Some(t) = cx.const_input(1) {
            let values = t.to_f32_vec();
            if let Some(&alpha) = values.first().filter(|&&a| values.iter().all(|&v| v == a)) {
                return cx.add(Op::Unary(UnaryOp::LeakyRelu { alpha }), vec![x]);
            }
        }
    }
    // ONNX's own definition, `x < 0 ? slope * x : x`: exact even for infinite slopes (the
    // `max + slope * min` form would give inf * 0 = NaN for x >= 0).
    let zero = cx.add_const_step(Tensor::scalar_f32(0.0).cast(x_ty.dtype), "zero");
    let negative = cx.add_step(Op::Compare(CompareOp::Less), vec![x, zero], "negative")?;
    let scaled = cx.add_step(Op::Binary(BinaryOp::Mul), vec![slope, x], "scaled")?;
    cx.add(Op::Select, vec![negative, scaled, x])
}
