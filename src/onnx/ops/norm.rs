//! Normalisation: BatchNormalization (inference) and Softmax.

use super::{axis, Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::Op;

pub const OPS: &[(&str, Importer)] = &[("BatchNormalization", batch_norm), ("Softmax", softmax)];

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
