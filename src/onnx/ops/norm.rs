//! Normalisation: BatchNormalization (inference), LayerNormalization, Softmax, LRN; and
//! LogSoftmax, InstanceNormalization, GroupNormalization, RMSNormalization,
//! MeanVarianceNormalization and LpNormalization, built from existing IR ops.

use super::{axes, axis, Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{broadcast_shapes, BinaryOp, CompareOp, Op, ReduceKind, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[
    ("BatchNormalization", batch_norm),
    ("LayerNormalization", layer_norm),
    ("Softmax", softmax),
    ("LogSoftmax", log_softmax),
    ("InstanceNormalization", instance_norm),
    ("GroupNormalization", group_norm),
    ("LRN", lrn),
    ("RMSNormalization", rms_norm),
    ("MeanVarianceNormalization", mean_variance_norm),
    ("LpNormalization", lp_norm),
];

/// LRN → `local_response_norm` (same formula; MIL calls the bias `k`).
fn lrn(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let size = cx.attr_int("size", 0)?;
    if size <= 0 {
        return Err(format!("attribute \"size\" must be positive, got {size}"));
    }
    if size % 2 == 0 {
        // ONNX puts the extra channel after the centre; Core ML's window is symmetric.
        return Err(format!("an even size ({size}) is not supported"));
    }
    let op = Op::LocalResponseNorm {
        size: size as usize,
        alpha: cx.attr_float("alpha", 1e-4)?,
        beta: cx.attr_float("beta", 0.75)?,
        bias: cx.attr_float("bias", 1.0)?,
    };
    cx.add(op, vec![x])
}

fn batch_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if cx.attr_int("training_mode", 0)? != 0 {
        return batch_norm_training(cx);
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
    along_softmax_axis(cx, |cx, x, axis, last| {
        let op = Op::Softmax { axis };
        if last {
            Ok(cx.add(op, vec![x])?[0])
        } else {
            cx.add_step(op, vec![x], "softmax")
        }
    })
}

/// Apply `along(cx, x, axis, last)` on the axis Softmax-like ops normalise: the `axis`
/// attribute from opset 13, else the second axis of the input viewed as 2-D (reshaped there
/// and back). `last` says whether the result is the node's output.
pub(super) fn along_softmax_axis(
    cx: &mut NodeCx,
    along: impl FnOnce(&mut NodeCx, ValueId, usize, bool) -> Result<ValueId, String>,
) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let ty = cx.ty(x).clone();
    let rank = ty.rank();
    let default_axis = if cx.opset < 13 { 1 } else { -1 };
    let a = axis(cx.attr_int("axis", default_axis)?, rank)?;
    if cx.opset >= 13 || a + 1 == rank {
        return along(cx, x, a, true).map(|y| vec![y]);
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
    let y = along(cx, flat, 1, false)?;
    cx.add(Op::Reshape { shape: ty.shape }, vec![y])
}

/// LayerNormalization over `axis..rank`. Core ML wants gamma and beta as constants shaped like
/// the normalised axes: broadcastable constants are expanded, runtime ones applied afterwards
/// with a multiply and an add.
///
/// The optional Mean and InvStdDev outputs, when used, are computed beside it (see
/// [`layer_norm_stats`]); the fused layer_norm still produces Y.
fn layer_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
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
    let stats = (1..3).any(|i| cx.has_output(i));
    let op = Op::LayerNorm {
        axes: axes.clone(),
        epsilon,
    };
    let mut y = if after.is_empty() {
        cx.add(op, vec![x, gamma, beta])?[0]
    } else {
        cx.add_step(op, vec![x, gamma, beta], "normalized")?
    };
    let last = after.len().saturating_sub(1);
    for (k, (op, v)) in after.into_iter().enumerate() {
        y = if k == last {
            cx.add(Op::Binary(op), vec![y, v])?[0]
        } else {
            cx.add_step(Op::Binary(op), vec![y, v], "scaled")?
        };
    }
    if !stats {
        return Ok(vec![y]);
    }
    let (mean, inv_std_dev) = layer_norm_stats(cx, x, axes, epsilon)?;
    Ok(vec![y, mean, inv_std_dev])
}

/// LayerNormalization's Mean and InvStdDev outputs (ONNX computes them for training): the mean
/// over `axes` with those axes kept as 1, and `1 / sqrt(mean((x - mean)^2) + epsilon)`, both in
/// fp32 as stash_type 1 asks (an fp16 input is cast first). Core ML's layer_norm returns
/// neither, so they are reductions of their own.
fn layer_norm_stats(cx: &mut NodeCx, x: ValueId, axes: Vec<usize>, epsilon: f32) -> Result<(ValueId, ValueId), String> {
    let x = if cx.ty(x).dtype == DType::F32 {
        x
    } else {
        cx.add_step(Op::Cast { to: DType::F32 }, vec![x], "stash")?
    };
    let mean = if cx.has_output(1) {
        cx.add_output(1, mean_over(&axes), vec![x])?
    } else {
        cx.add_step(mean_over(&axes), vec![x], "mean")?
    };
    let centered = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, mean], "centered")?;
    let squared = cx.add_step(Op::Binary(BinaryOp::Mul), vec![centered, centered], "squared")?;
    let var = cx.add_step(mean_over(&axes), vec![squared], "var")?;
    let eps = cx.add_const_step(Tensor::scalar_f32(epsilon), "epsilon");
    let var = cx.add_step(Op::Binary(BinaryOp::Add), vec![var, eps], "var_eps")?;
    let std_dev = cx.add_step(Op::Unary(UnaryOp::Sqrt), vec![var], "std_dev")?;
    let inv = Op::Unary(UnaryOp::Reciprocal);
    let inv_std_dev = if cx.has_output(2) {
        cx.add_output(2, inv, vec![std_dev])?
    } else {
        cx.add_step(inv, vec![std_dev], "inv_std_dev")?
    };
    Ok((mean, inv_std_dev))
}

/// LogSoftmax as `d - log(sum(exp(d)))` with `d = x - max(x)` along the axis: MIL has no
/// log_softmax, and the shift keeps `exp` finite and `log` away from zero where
/// `log(softmax(x))` would not. Before opset 13 the input is viewed as 2-D, as for Softmax.
fn log_softmax(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    cx.float_input(0)?;
    along_softmax_axis(cx, log_softmax_along)
}

/// The log-softmax of `x` along `axis`; `last`: the result is the node's output.
fn log_softmax_along(cx: &mut NodeCx, x: ValueId, axis: usize, last: bool) -> Result<ValueId, String> {
    let reduce = |kind| Op::Reduce {
        kind,
        axes: vec![axis],
        keep_dims: true,
    };
    let max = cx.add_step(reduce(ReduceKind::Max), vec![x], "max")?;
    let shifted = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, max], "shifted")?;
    let exp = cx.add_step(Op::Unary(UnaryOp::Exp), vec![shifted], "exp")?;
    let sum = cx.add_step(reduce(ReduceKind::Sum), vec![exp], "sum")?;
    let log_sum = cx.add_step(Op::Unary(UnaryOp::Log), vec![sum], "log_sum")?;
    let sub = Op::Binary(BinaryOp::Sub);
    if last {
        Ok(cx.add(sub, vec![shifted, log_sum])?[0])
    } else {
        cx.add_step(sub, vec![shifted, log_sum], "log_softmax")
    }
}

/// InstanceNormalization: layer_norm over the spatial axes `2..` with neutral gamma and beta,
/// then the per-channel scale and bias (`[C]`, reshaped to `[C, 1, ...]`) as a multiply and an
/// add. Constant scale and bias are reshaped at import.
fn instance_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let ty = cx.ty(x).clone();
    if !ty.dtype.is_float() || ty.rank() < 3 {
        return Err(format!(
            "InstanceNormalization needs a float input [N, C, D1, ...], got {ty}"
        ));
    }
    let epsilon = cx.attr_float("epsilon", 1e-5)?;
    let (scale, bias) = (cx.required_input(1)?, cx.required_input(2)?);
    check_channel_param(cx, scale, "scale", ty.dtype, ty.shape[1])?;
    check_channel_param(cx, bias, "B", ty.dtype, ty.shape[1])?;
    let normalized = normalize(cx, x, (2..ty.rank()).collect(), epsilon)?;
    channel_affine(cx, normalized, scale, bias, ty.rank())
}

/// GroupNormalization: `x [N, C, *S]` viewed as `[N, G, C/G * prod(S)]`, layer_norm over the
/// last axis with neutral gamma and beta, viewed back, then the per-channel affine as for
/// InstanceNormalization. Opset 18 gives scale and bias per group (`[G]`): each value is
/// repeated for the group's C/G channels (a tile, folded when they are constants); opset 21
/// gives them per channel (`[C]`).
fn group_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if cx.attr_int("stash_type", 1)? != 1 {
        return Err("stash_type other than 1 (fp32) is not supported".into());
    }
    let x = cx.required_input(0)?;
    let ty = cx.ty(x).clone();
    if !ty.dtype.is_float() || ty.rank() < 2 {
        return Err(format!("GroupNormalization needs a float input [N, C, ...], got {ty}"));
    }
    if !cx.has_attr("num_groups") {
        return Err("attribute \"num_groups\" is required".into());
    }
    let groups = cx.attr_int("num_groups", 0)?;
    let channels = ty.shape[1];
    if groups <= 0 || channels % groups as usize != 0 {
        return Err(format!(
            "num_groups {groups} must be positive and divide the {channels} channels"
        ));
    }
    let groups = groups as usize;
    let epsilon = cx.attr_float("epsilon", 1e-5)?;
    let (mut scale, mut bias) = (cx.required_input(1)?, cx.required_input(2)?);
    let per_group = cx.opset < 21;
    let count = if per_group { groups } else { channels };
    check_channel_param(cx, scale, "scale", ty.dtype, count)?;
    check_channel_param(cx, bias, "bias", ty.dtype, count)?;

    let inner = ty.num_elements() / (ty.shape[0] * groups).max(1);
    let grouped = cx.add_step(
        Op::Reshape {
            shape: vec![ty.shape[0], groups, inner],
        },
        vec![x],
        "grouped",
    )?;
    let normalized = normalize(cx, grouped, vec![2], epsilon)?;
    let normalized = cx.add_step(
        Op::Reshape {
            shape: ty.shape.clone(),
        },
        vec![normalized],
        "ungrouped",
    )?;
    if per_group && groups != channels {
        let per = channels / groups;
        for (v, what) in [(&mut scale, "scale"), (&mut bias, "bias")] {
            let column = cx.add_step(
                Op::Reshape { shape: vec![groups, 1] },
                vec![*v],
                &format!("{what}_groups"),
            )?;
            *v = cx.add_step(
                Op::Tile { reps: vec![1, per] },
                vec![column],
                &format!("{what}_channels"),
            )?;
        }
    }
    channel_affine(cx, normalized, scale, bias, ty.rank())
}

/// A per-channel (or per-group) parameter must be `[count]` of the input's type.
fn check_channel_param(cx: &NodeCx, v: ValueId, what: &str, dtype: DType, count: usize) -> Result<(), String> {
    let t = cx.ty(v);
    if t.dtype != dtype || t.shape != [count] {
        return Err(format!("{what} {t} must be {dtype}[{count}]"));
    }
    Ok(())
}

/// layer_norm of `x` over `axes` with gamma = 1 and beta = 0 (constants shaped like those axes).
fn normalize(cx: &mut NodeCx, x: ValueId, axes: Vec<usize>, epsilon: f32) -> Result<ValueId, String> {
    let ty = cx.ty(x).clone();
    let shape: Vec<usize> = axes.iter().map(|&a| ty.shape[a]).collect();
    let count = shape.iter().product();
    let ones = Tensor::from_f32(shape.clone(), &vec![1.0; count]).cast(ty.dtype);
    let zeros = Tensor::from_f32(shape, &vec![0.0; count]).cast(ty.dtype);
    let gamma = cx.add_const_step(ones, "gamma");
    let beta = cx.add_const_step(zeros, "beta");
    cx.add_step(Op::LayerNorm { axes, epsilon }, vec![x, gamma, beta], "normalized")
}

/// `y * scale + bias` with `scale` and `bias` (C elements each) reshaped to `[C, 1, ...]` so they
/// broadcast over the channel axis of a rank-`rank` `y`; the add is the node's output.
fn channel_affine(
    cx: &mut NodeCx,
    y: ValueId,
    scale: ValueId,
    bias: ValueId,
    rank: usize,
) -> Result<Vec<ValueId>, String> {
    let mut shape = vec![cx.ty(scale).num_elements()];
    shape.resize(rank - 1, 1);
    let scale = cx.add_step(Op::Reshape { shape: shape.clone() }, vec![scale], "scale")?;
    let bias = cx.add_step(Op::Reshape { shape }, vec![bias], "bias")?;
    let scaled = cx.add_step(Op::Binary(BinaryOp::Mul), vec![y, scale], "scaled")?;
    cx.add(Op::Binary(BinaryOp::Add), vec![scaled, bias])
}

fn mean_over(axes: &[usize]) -> Op {
    Op::Reduce {
        kind: ReduceKind::Mean,
        axes: axes.to_vec(),
        keep_dims: true,
    }
}

/// RMSNormalization (opset 23): `x / sqrt(mean(x²) + epsilon) · scale` over the axes from `axis`
/// on. An fp16 input is normalised in fp32, as stash_type 1 (the default) asks: its squares
/// overflow fp16 from |x| = 256.
fn rms_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if cx.attr_int("stash_type", 1)? != 1 {
        return Err("stash_type other than 1 (fp32) is not supported".into());
    }
    let (x, dtype) = cx.float_input(0)?;
    let (scale, scale_dtype) = cx.float_input(1)?;
    let rank = cx.ty(x).rank();
    let first = axis(cx.attr_int("axis", -1)?, rank)?;
    let axes: Vec<usize> = (first..rank).collect();
    let epsilon = cx.attr_float("epsilon", 1e-5)?;
    let x = if dtype == DType::F32 {
        x
    } else {
        cx.add_step(Op::Cast { to: DType::F32 }, vec![x], "stash")?
    };
    let square = cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, x], "square")?;
    let mean_square = cx.add_step(mean_over(&axes), vec![square], "mean_square")?;
    let epsilon = cx.add_const_step(Tensor::scalar_f32(epsilon), "epsilon");
    let shifted = cx.add_step(Op::Binary(BinaryOp::Add), vec![mean_square, epsilon], "mean_square_eps")?;
    let rms = cx.add_step(Op::Unary(UnaryOp::Sqrt), vec![shifted], "rms")?;
    let mut normalized = cx.add_step(Op::Binary(BinaryOp::Div), vec![x, rms], "normalized")?;
    if scale_dtype != DType::F32 {
        normalized = cx.add_step(Op::Cast { to: scale_dtype }, vec![normalized], "unstash")?;
    }
    cx.add(Op::Binary(BinaryOp::Mul), vec![normalized, scale])
}

/// MeanVarianceNormalization: `(x − mean) / (sqrt(var) + 1e-9)` over `axes` (default
/// `[0, 2, 3]`). The variance is the mean squared deviation, which equals ONNX's
/// `E[x²] − E[x]²` without its cancellation.
fn mean_variance_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let rank = cx.ty(x).rank();
    let requested = cx.attr_ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
    let mut axes = axes(&requested, rank)?;
    axes.sort_unstable();
    let mean = cx.add_step(mean_over(&axes), vec![x], "mean")?;
    let centered = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, mean], "centered")?;
    let squared = cx.add_step(Op::Binary(BinaryOp::Mul), vec![centered, centered], "squared")?;
    let var = cx.add_step(mean_over(&axes), vec![squared], "var")?;
    let std_dev = cx.add_step(Op::Unary(UnaryOp::Sqrt), vec![var], "std_dev")?;
    let epsilon = cx.add_const_step(Tensor::scalar_f32(1e-9).cast(dtype), "epsilon");
    let denominator = cx.add_step(Op::Binary(BinaryOp::Add), vec![std_dev, epsilon], "denominator")?;
    cx.add(Op::Binary(BinaryOp::Div), vec![centered, denominator])
}

/// LpNormalization: `x / ‖x‖_p` along `axis`, p 1 or 2, with no epsilon; 0 where the norm is 0
/// (as ONNX's reference and onnxruntime), not 0/0.
fn lp_norm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let along = axis(cx.attr_int("axis", -1)?, cx.ty(x).rank())?;
    let reduce = |kind| Op::Reduce {
        kind,
        axes: vec![along],
        keep_dims: true,
    };
    let norm = match cx.attr_int("p", 2)? {
        1 => {
            let magnitude = cx.add_step(Op::Unary(UnaryOp::Abs), vec![x], "abs")?;
            cx.add_step(reduce(ReduceKind::Sum), vec![magnitude], "norm")?
        }
        2 => cx.add_step(reduce(ReduceKind::L2), vec![x], "norm")?,
        p => return Err(format!("p must be 1 or 2, got {p}")),
    };
    let quotient = cx.add_step(Op::Binary(BinaryOp::Div), vec![x, norm], "quotient")?;
    let zero = cx.add_const_step(Tensor::scalar_f32(0.0).cast(dtype), "zero");
    let vanishes = cx.add_step(Op::Compare(CompareOp::Equal), vec![norm, zero], "norm_is_zero")?;
    cx.add(Op::Select, vec![vanishes, zero, quotient])
}

/// BatchNormalization with training_mode 1 (opset 14+): Y normalised with the batch's own mean
/// and (population) variance over every axis but the channels, and the running statistics
/// `running · momentum + batch · (1 − momentum)` as outputs 1 and 2 when they are used.
fn batch_norm_training(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let rank = cx.ty(x).rank();
    if rank < 2 {
        return Err(format!("input {} must have a channel axis", cx.ty(x)));
    }
    let epsilon = cx.attr_float("epsilon", 1e-5)?;
    let momentum = cx.attr_float("momentum", 0.9)?;
    let [scale, bias, running_mean, running_var] = [1, 2, 3, 4].map(|i| cx.float_input(i).map(|(v, _)| v));
    let (scale, bias, running_mean, running_var) = (scale?, bias?, running_mean?, running_var?);
    let axes: Vec<usize> = std::iter::once(0).chain(2..rank).collect();
    let mean = cx.add_step(mean_over(&axes), vec![x], "batch_mean")?;
    let centered = cx.add_step(Op::Binary(BinaryOp::Sub), vec![x, mean], "centered")?;
    let squared = cx.add_step(Op::Binary(BinaryOp::Mul), vec![centered, centered], "squared")?;
    let var = cx.add_step(mean_over(&axes), vec![squared], "batch_var")?;
    let epsilon = cx.add_const_step(Tensor::scalar_f32(epsilon).cast(dtype), "epsilon");
    let shifted = cx.add_step(Op::Binary(BinaryOp::Add), vec![var, epsilon], "var_eps")?;
    let std_dev = cx.add_step(Op::Unary(UnaryOp::Sqrt), vec![shifted], "std_dev")?;
    let normalized = cx.add_step(Op::Binary(BinaryOp::Div), vec![centered, std_dev], "normalized")?;
    let mut channel_shape = vec![1, cx.ty(x).shape[1]];
    channel_shape.resize(rank, 1);
    let per_channel = |cx: &mut NodeCx, v: ValueId, what: &str| {
        cx.add_step(
            Op::Reshape {
                shape: channel_shape.clone(),
            },
            vec![v],
            what,
        )
    };
    let scale = per_channel(cx, scale, "scale")?;
    let bias = per_channel(cx, bias, "bias")?;
    let scaled = cx.add_step(Op::Binary(BinaryOp::Mul), vec![normalized, scale], "scaled")?;
    let y = cx.add_output(0, Op::Binary(BinaryOp::Add), vec![scaled, bias])?;
    let mut outputs = vec![y];
    let kept = cx.add_const_step(Tensor::scalar_f32(momentum).cast(dtype), "momentum");
    let taken = cx.add_const_step(Tensor::scalar_f32(1.0 - momentum).cast(dtype), "one_minus_momentum");
    // Outputs are positional: the mean is built whenever the variance is used.
    let last_used = (1..3).filter(|&i| cx.has_output(i)).max().unwrap_or(0);
    for (index, running, batch, what) in [(1, running_mean, mean, "mean"), (2, running_var, var, "var")] {
        if index > last_used {
            break;
        }
        let channels = cx.ty(running).shape.clone();
        let batch = cx.add_step(
            Op::Reshape { shape: channels },
            vec![batch],
            &format!("batch_{what}_flat"),
        )?;
        let old = cx.add_step(Op::Binary(BinaryOp::Mul), vec![running, kept], &format!("kept_{what}"))?;
        let new = cx.add_step(Op::Binary(BinaryOp::Mul), vec![batch, taken], &format!("taken_{what}"))?;
        outputs.push(cx.add_output(index, Op::Binary(BinaryOp::Add), vec![old, new])?);
    }
    Ok(outputs)
}
