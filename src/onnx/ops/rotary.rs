//! RotaryEmbedding (opset 23): rotary position embeddings built from slices, multiplies and
//! concats, with the caches gathered by position ids when there are any.

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BinaryOp, Op, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[("RotaryEmbedding", rotary_embedding)];

/// `x[..., begin..end:stride]` on the last axis of a rank-4 value.
fn last_axis(
    cx: &mut NodeCx,
    x: ValueId,
    begin: usize,
    end: usize,
    stride: i64,
    what: &str,
) -> Result<ValueId, String> {
    let shape = cx.ty(x).shape.clone();
    let mut axes: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
    axes[3] = SliceAxis {
        begin,
        end: Some(end),
        stride,
    };
    cx.add_step(Op::Slice { axes }, vec![x], what)
}

/// The input seen as `[batch, sequence, heads, head_size]`: a 4-D `[B, H, S, D]` input is
/// transposed, a 3-D `[B, S, hidden]` one split into `num_heads`.
fn rotary_embedding(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    let (cos, _) = cx.float_input(1)?;
    let (sin, _) = cx.float_input(2)?;
    let shape = cx.ty(x).shape.clone();
    let interleaved = cx.attr_int("interleaved", 0)? != 0;
    let heads = cx.attr_int("num_heads", 0)?;
    let seen = match shape.len() {
        4 => cx.add_step(Op::Transpose { perm: vec![0, 2, 1, 3] }, vec![x], "bshd")?,
        3 => {
            let heads = usize::try_from(heads)
                .ok()
                .filter(|&h| h > 0 && shape[2] % h == 0)
                .ok_or_else(|| {
                    format!(
                        "num_heads {heads} must divide the hidden size {} of a 3-D input",
                        shape[2]
                    )
                })?;
            let split = vec![shape[0], shape[1], heads, shape[2] / heads];
            cx.add_step(Op::Reshape { shape: split }, vec![x], "bshd")?
        }
        _ => return Err(format!("input {} must have rank 3 or 4", cx.ty(x))),
    };
    let bshd = cx.ty(seen).shape.clone();
    let head_size = bshd[3];
    let rotated = match cx.attr_int("rotary_embedding_dim", 0)? {
        0 => head_size,
        d => usize::try_from(d)
            .ok()
            .filter(|&d| d <= head_size && d % 2 == 0)
            .ok_or_else(|| format!("rotary_embedding_dim {d} must be even and at most the head size {head_size}"))?,
    };
    let half = rotated / 2;
    // Caches per (batch, position): gathered by position ids, or given that way.
    let (cos, sin) = if cx.input(3).is_some() {
        let positions = cx.ty(cos).shape[0];
        let ids = super::indexing::indices_for(cx, 3, positions)?;
        let cos = cx.add_step(Op::Gather { axis: 0 }, vec![cos, ids], "cos_at")?;
        let sin = cx.add_step(Op::Gather { axis: 0 }, vec![sin, ids], "sin_at")?;
        (cos, sin)
    } else {
        (cos, sin)
    };
    for (cache, what) in [(cos, "cos_cache"), (sin, "sin_cache")] {
        let s = &cx.ty(cache).shape;
        if s.len() != 3 || s[2] != half {
            return Err(format!(
                "{what} {} must be [batch, sequence, {half}] per position",
                cx.ty(cache)
            ));
        }
    }
    let expand = |cx: &mut NodeCx, cache: ValueId, what: &str| {
        let s = cx.ty(cache).shape.clone();
        cx.add_step(
            Op::Reshape {
                shape: vec![s[0], s[1], 1, s[2]],
            },
            vec![cache],
            what,
        )
    };
    let cos = expand(cx, cos, "cos")?;
    let sin = expand(cx, sin, "sin")?;
    let (x1, x2) = if interleaved {
        (
            last_axis(cx, seen, 0, rotated, 2, "x1")?,
            last_axis(cx, seen, 1, rotated, 2, "x2")?,
        )
    } else {
        (
            last_axis(cx, seen, 0, half, 1, "x1")?,
            last_axis(cx, seen, half, rotated, 1, "x2")?,
        )
    };
    let mul = |cx: &mut NodeCx, a, b, what: &str| cx.add_step(Op::Binary(BinaryOp::Mul), vec![a, b], what);
    let cos_x1 = mul(cx, cos, x1, "cos_x1")?;
    let sin_x2 = mul(cx, sin, x2, "sin_x2")?;
    let sin_x1 = mul(cx, sin, x1, "sin_x1")?;
    let cos_x2 = mul(cx, cos, x2, "cos_x2")?;
    let real = cx.add_step(Op::Binary(BinaryOp::Sub), vec![cos_x1, sin_x2], "real")?;
    let imag = cx.add_step(Op::Binary(BinaryOp::Add), vec![sin_x1, cos_x2], "imag")?;
    let mut rotated_shape = bshd.clone();
    rotated_shape[3] = rotated;
    let turned = if interleaved {
        let mut pair_shape = bshd.clone();
        pair_shape[3] = half;
        pair_shape.push(1);
        let real = cx.add_step(
            Op::Reshape {
                shape: pair_shape.clone(),
            },
            vec![real],
            "real_pairs",
        )?;
        let imag = cx.add_step(Op::Reshape { shape: pair_shape }, vec![imag], "imag_pairs")?;
        let pairs = cx.add_step(Op::Concat { axis: 4 }, vec![real, imag], "pairs")?;
        cx.add_step(Op::Reshape { shape: rotated_shape }, vec![pairs], "rotated")?
    } else {
        cx.add_step(Op::Concat { axis: 3 }, vec![real, imag], "rotated")?
    };
    let whole = if rotated < head_size {
        let kept = last_axis(cx, seen, rotated, head_size, 1, "kept")?;
        cx.add_step(Op::Concat { axis: 3 }, vec![turned, kept], "embedded")?
    } else {
        turned
    };
    match shape.len() {
        4 => cx.add(Op::Transpose { perm: vec![0, 2, 1, 3] }, vec![whole]),
        _ => cx.add(Op::Reshape { shape }, vec![whole]),
    }
}
