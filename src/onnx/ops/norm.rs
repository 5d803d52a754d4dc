//! Normalisation: BatchNormalization (inference), LayerNormalization and Softmax.

use super::{axis, Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{broadcast_shapes, BinaryOp, Op};

pub const OPS: &[(&str, Importer)] = &[
    ("BatchNormalization", batch_norm),
    ("LayerNormalization", layer_norm),
    ("Softmax", softmax),
];

fn batch_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if cx.attr_int("training_mode", 0)? != 0 {
        return Err("training_mode=1 is not supported (inference only)".into());
    }
    if cx.opset < 9 && cx.attr_int("spatial", 1)? != 1 {
        return Err("spatial=0 is not supported".into());
    }
    let epsilon = cx.attr_float("epsilon", 1e-5)?;
    // ONNX order: X, scale, B, mean, var. MIL order: x, mean, variance, gamma, beta.
    let [x, scale, bias, mean, var] = [0, 1, 2, 3, 4].map(|i| cx.required_input(i));
    let (x, scale, bias, mean, var) = (x?, scale?, bias?, mean?, var?);
    if (1..5).any(|i| cx.const_input(i).is_none()) {
        return Err("scale, B, mean and var must be constants (Core ML's batch_norm takes them as parameters)".into());
    }
    cx.add(Op::BatchNorm { epsilon }, vec![x, mean, var, scale, bias])
}

/// From opset 13 Softmax normalises one axis; before it, the input is viewed as 2-D
/// `[prod(d[..axis]), prod(d[axis..])]` and normalised over the second dimension.
fn softmax(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let ty = cx.ty(x).clone();
    let rank = ty.rank();
    let default_axis = if cx.opset < 13 { 1 } else { -1 };
    let a = axis(cx.attr_int("axis", default_axis)?, rank)?;
    if cx.opset >= 13 || a + 1 == rank {
        return cx.add(Op::Softmax { axis: a }, vec![x]);
    }
    let outer: usize = ty.shape[..a].iter().product();
    let inner: usize = ty.shape[a..].iter().product();
    let flat = cx.add_step(
        Op::Reshape {
            shape: vec![outer, inner],
        },
        vec![x],
        "flat",
    )?;
    let soft = cx.add_step(Op::Softmax { axis: 1 }, vec![flat], "softmax")?;
    cx.add(
        Op::Reshape {
            shape: ty.shape.clone(),
        },
        vec![soft],
    )
}

/// LayerNormalization over `axis..rank`. Core ML wants gamma and beta as constants shaped like
/// the normalised axes: broadcastable constants are expanded, runtime ones applied afterwards
/// with a multiply and an add.
fn layer_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if (1..3).any(|i| cx.has_output(i)) {
        return Err("the Mean and InvStdDev outputs (training only) are not supported".into());
    }
    if cx.attr_int("stash_type", 1)? != 1 {
        return Err("stash_type other than 1 (fp32) is not supported".into());
    }
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    let first = axis(cx.attr_int("axis", -1)?, x_ty.rank())?;
    let axes: Vec<usize> = (first..x_ty.rank()).collect();
    let norm_shape = x_ty.shape[first..].to_vec();
    let epsilon = cx.attr_float("epsilon", 1e-5)?;
    let scale = cx.required_input(1)?;
    let bias = cx.input(2);

    let mut after = Vec::new();
    let mut param =
        |cx: &mut NodeCx, v: Option<ValueId>, fill: f32, what: &str, op: BinaryOp| -> Result<ValueId, String> {
            let count: usize = norm_shape.iter().product();
            let neutral = || Tensor::from_f32(norm_shape.clone(), &vec![fill; count]).cast(x_ty.dtype);
            let Some(v) = v else {
                return Ok(cx.add_const_step(neutral(), what));
            };
            if cx.ty(v).dtype != x_ty.dtype {
                return Err(format!("{what} {} must have the input's type {}", cx.ty(v), x_ty.dtype));
            }
            match cx.const_input(if what == "gamma" { 1 } else { 2 }) {
                Some(t) if t.ty.shape == norm_shape => Ok(v),
                Some(t) if broadcast_shapes(&t.ty.shape, &norm_shape).ok().as_ref() == Some(&norm_shape) => {
                    // Expand by adding to the neutral constant; folds immediately.
                    let zeros = Tensor::from_f32(norm_shape.clone(), &vec![0.0; count]).cast(x_ty.dtype);
                    let zeros = cx.add_const_step(zeros, &format!("{what}_zeros"));
                    cx.add_step(Op::Binary(BinaryOp::Add), vec![v, zeros], what)
                }
                _ => {
                    after.push((op, v));
                    Ok(cx.add_const_step(neutral(), what))
                }
            }
        };
    let gamma = param(cx, Some(scale), 1.0, "gamma", BinaryOp::Mul)?;
    let beta = param(cx, bias, 0.0, "beta", BinaryOp::Add)?;
    let op = Op::LayerNorm { axes, epsilon };
    if after.is_empty() {
        return cx.add(op, vec![x, gamma, beta]);
    }
    let mut y = cx.add_step(op, vec![x, gamma, beta], "normalized")?;
    let last = after.len() - 1;
    for (k, (op, v)) in after.into_iter().enumerate() {
        y = if k == last {
            cx.add(Op::Binary(op), vec![y, v])?[0]
        } else {
            cx.add_step(Op::Binary(op), vec![y, v], "scaled")?
        };
    }
    Ok(vec![y])
}
