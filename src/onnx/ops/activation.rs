//! Activations: Relu, Sigmoid, HardSigmoid, HardSwish, Clip.

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::Op;

pub const OPS: &[(&str, Importer)] = &[
    ("Relu", relu),
    ("Sigmoid", sigmoid),
    ("HardSigmoid", hard_sigmoid),
    ("HardSwish", hard_swish),
    ("Clip", clip),
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
