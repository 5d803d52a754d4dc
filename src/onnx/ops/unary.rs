//! Elementwise unary float ops: Sqrt, Exp, Log, Erf, Abs, Neg, Reciprocal, Floor, Ceil, Round,
//! Sign, Softplus, Elu, LeakyRelu, Gelu; and Pow (binary, but mostly used with a constant exponent).

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BinaryOp, GeluMode, Op, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("Sqrt", sqrt),
    ("Exp", exp),
    ("Log", log),
    ("Erf", erf),
    ("Abs", abs),
    ("Neg", neg),
    ("Reciprocal", reciprocal),
    ("Floor", floor),
    ("Ceil", ceil),
    ("Round", round),
    ("Sign", sign),
    ("Softplus", softplus),
    ("Elu", elu),
    ("LeakyRelu", leaky_relu),
    ("Gelu", gelu),
    ("Pow", pow),
];

fn unary(cx: &mut NodeCx, op: UnaryOp) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    cx.add(Op::Unary(op), vec![x])
}

fn sqrt(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Sqrt)
}

fn exp(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Exp)
}

fn log(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Log)
}

fn erf(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Erf)
}

fn abs(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Abs)
}

fn neg(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Neg)
}

fn reciprocal(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Reciprocal)
}

fn floor(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Floor)
}

fn ceil(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Ceil)
}

/// Ties to even, in ONNX and in MIL `round`.
fn round(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    cx.add(Op::Unary(UnaryOp::Round), vec![x])
}

/// Float only: MIL's `sign` takes no integers.
fn sign(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    cx.add(Op::Unary(UnaryOp::Sign), vec![x])
}

fn softplus(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    unary(cx, UnaryOp::Softplus)
}

fn elu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let alpha = cx.attr_float("alpha", 1.0)?;
    unary(cx, UnaryOp::Elu { alpha })
}

fn leaky_relu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let alpha = cx.attr_float("alpha", 0.01)?;
    unary(cx, UnaryOp::LeakyRelu { alpha })
}

/// Opset 20: `approximate` is "none" (exact, erf form) or "tanh".
fn gelu(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let mode = match cx.attr_string("approximate", "none")?.as_str() {
        "none" => GeluMode::Exact,
        "tanh" => GeluMode::Tanh,
        other => return Err(format!("approximate {other:?} is not \"none\" or \"tanh\"")),
    };
    unary(cx, UnaryOp::Gelu { mode })
}

/// MIL `pow` needs both operands in one float type: the exponent is cast to the base's type.
/// A constant scalar exponent of 2, 0.5 or 1 becomes `mul(x, x)`, `sqrt(x)` or identity (exact,
/// and defined for negative bases where `pow` with a float exponent is not).
fn pow(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let y = cx.required_input(1)?;
    let x_ty = cx.ty(x).clone();
    if !x_ty.dtype.is_float() {
        return Err(format!("Pow of an integer base ({x_ty}) is not supported"));
    }
    let y_ty = cx.ty(y).clone();
    if let Some(t) = cx.const_input(1) {
        let v = t.to_f32_vec();
        if v.len() == 1 && y_ty.rank() <= x_ty.rank() {
            let e = v[0];
            if e == 2.0 {
                return cx.add(Op::Binary(BinaryOp::Mul), vec![x, x]);
            } else if e == 0.5 {
                return cx.add(Op::Unary(UnaryOp::Sqrt), vec![x]);
            } else if e == 1.0 {
                return cx.add(Op::Identity, vec![x]);
            }
        }
    }
    let y = if y_ty.dtype == x_ty.dtype {
        y
    } else if let Some(t) = cx.const_input(1) {
        let cast = t.cast(x_ty.dtype);
        let name = format!("{}_exponent", cx.node.output.first().cloned().unwrap_or_default());
        cx.graph.add_const(name, cast)
    } else {
        cx.add_step(Op::Cast { to: x_ty.dtype }, vec![y], "exponent")?
    };
    cx.add(Op::Binary(BinaryOp::Pow), vec![x, y])
}
