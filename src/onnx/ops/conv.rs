//! Convolution and pooling: Conv, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

use super::{positive, Importer, NodeCx};
use edgec_passes::ir::{TensorType, ValueId};
use edgec_passes::op::{BinaryOp, ConvAttrs, Op, PoolAttrs, PoolKind, ReduceKind};

pub const OPS: &[(&str, Importer)] = &[
    ("Conv", conv),
    ("MaxPool", max_pool),
    ("AveragePool", average_pool),
    ("GlobalAveragePool", global_average_pool),
    ("GlobalMaxPool", global_max_pool),
];

/// `[begin, end]` pads per spatial axis from `pads`/`auto_pad`, with SAME_* computed from the
/// static input size (MIL's own `same` padding is not documented to match ONNX).
pub(super) fn spatial_pads(
    cx: &NodeCx,
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
) -> Result<Vec<[usize; 2]>, String> {
    let n = kernel.len();
    let auto_pad = cx.attr_string("auto_pad", "NOTSET")?;
    match auto_pad.as_str() {
        "NOTSET" => {
            let pads = cx.attr_ints("pads")?.unwrap_or_else(|| vec![0; 2 * n]);
            if pads.len() != 2 * n {
                return Err(format!("pads {pads:?} must hold {} non-negative values", 2 * n));
            }
            let pads = super::non_negative(&pads, "pads")?;
            Ok((0..n).map(|i| [pads[i], pads[i + n]]).collect())
        }
        "VALID" => Ok(vec![[0, 0]; n]),
        "SAME_UPPER" | "SAME_LOWER" => Ok((0..n)
            .map(|i| {
                let out = input[i].div_ceil(strides[i]);
                let window = (kernel[i] - 1) * dilations[i] + 1;
                let total = ((out - 1) * strides[i] + window).saturating_sub(input[i]);
                let small = total / 2;
                if auto_pad == "SAME_UPPER" {
                    [small, total - small]
                } else {
                    [total - small, small]
                }
            })
            .collect()),
        other => Err(format!(
            "auto_pad {other:?} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
        )),
    }
}

/// A positive per-spatial-axis attribute (strides, dilations), 1 on every axis by default.
pub(super) fn per_axis(cx: &NodeCx, name: &str, n: usize) -> Result<Vec<usize>, String> {
    match cx.attr_ints(name)? {
        Some(v) if v.len() == n => positive(&v, name),
        Some(v) => Err(format!("{name} {v:?} must have {n} values")),
        None => Ok(vec![1; n]),
    }
}

/// A pooling node's required `kernel_shape`: `n` positive sizes.
pub(super) fn pool_kernel(cx: &NodeCx, n: usize) -> Result<Vec<usize>, String> {
    let kernel = positive(
        &cx.attr_ints("kernel_shape")?.ok_or("kernel_shape is required")?,
        "kernel_shape",
    )?;
    if kernel.len() != n {
        return Err(format!("kernel_shape {kernel:?} must have {n} values"));
    }
    Ok(kernel)
}

/// The kernel's spatial size, from the weight; a `kernel_shape` attribute must agree with it.
pub(super) fn kernel(cx: &NodeCx, w_ty: &TensorType) -> Result<Vec<usize>, String> {
    let kernel = w_ty.shape[2..].to_vec();
    if let Some(k) = cx.attr_ints("kernel_shape")? {
        if k.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel {
            return Err(format!("kernel_shape {k:?} disagrees with the weight {w_ty}"));
        }
    }
    Ok(kernel)
}

/// A Conv node's (or ConvInteger's) attributes for input `x_ty` and weight `w_ty`.
pub(super) fn conv_attrs(cx: &NodeCx, x_ty: &TensorType, w_ty: &TensorType) -> Result<ConvAttrs, String> {
    if x_ty.rank() < 3 || w_ty.rank() != x_ty.rank() {
        return Err(format!("input {x_ty} and weight {w_ty} must both have rank 3..=5"));
    }
    let n = x_ty.rank() - 2;
    let kernel = kernel(cx, w_ty)?;
    let strides = per_axis(cx, "strides", n)?;
    let dilations = per_axis(cx, "dilations", n)?;
    let groups = positive(&[cx.attr_int("group", 1)?], "group")?[0];
    let pads = spatial_pads(cx, &x_ty.shape[2..], &kernel, &strides, &dilations)?;
    Ok(ConvAttrs {
        strides,
        dilations,
        pads,
        groups,
    })
}

fn conv(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let w = cx.required_input(1)?;
    let (x_ty, w_ty) = (cx.ty(x).clone(), cx.ty(w).clone());
    let attrs = conv_attrs(cx, &x_ty, &w_ty)?;
    let n = x_ty.rank() - 2;
    match cx.input(2) {
        None => cx.add(Op::Conv(attrs), vec![x, w]),
        Some(b) if cx.const_input(2).is_some() => cx.add(Op::Conv(attrs), vec![x, w, b]),
        // MIL's conv takes its bias only as a constant: add a runtime bias per channel instead.
        Some(b) => {
            let unbiased = cx.add_step(Op::Conv(attrs), vec![x, w], "unbiased")?;
            let mut per_channel = vec![w_ty.shape[0]];
            per_channel.extend(std::iter::repeat_n(1, n));
            let bias = cx.add_step(Op::Reshape { shape: per_channel }, vec![b], "bias")?;
            cx.add(Op::Binary(BinaryOp::Add), vec![unbiased, bias])
        }
    }
}

fn pool(cx: &mut NodeCx, kind: PoolKind) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let x_ty = cx.ty(x).clone();
    if x_ty.rank() < 3 {
        return Err(format!("input {x_ty} must have rank 3..=5"));
    }
    let n = x_ty.rank() - 2;
    let kernel = pool_kernel(cx, n)?;
    let strides = per_axis(cx, "strides", n)?;
    let dilations = per_axis(cx, "dilations", n)?;
    if dilations.iter().any(|&d| d != 1) {
        return Err(format!(
            "dilations {dilations:?} are not supported (Core ML pools have no dilation)"
        ));
    }
    if cx.attr_int("storage_order", 0)? != 0 {
        return Err("storage_order=1 is not supported".into());
    }
    let pads = spatial_pads(cx, &x_ty.shape[2..], &kernel, &strides, &dilations)?;
    let mut ceil_mode = cx.attr_int("ceil_mode", 0)? != 0;
    // Drop ceil mode wherever it gives the floor size: MIL's ceil mode needs symmetric pads and
    // does not drop a last window that would start in the end padding, as ONNX does (and that
    // dropped window is exactly when ceil and floor agree again).
    let same = (0..n).all(|i| {
        let floor = pool_size(x_ty.shape[2 + i], kernel[i], strides[i], pads[i], false);
        let ceil = pool_size(x_ty.shape[2 + i], kernel[i], strides[i], pads[i], true);
        floor == ceil
    });
    if ceil_mode && same {
        ceil_mode = false;
    }
    if ceil_mode && pads.iter().any(|p| p[0] != p[1]) {
        return Err("ceil_mode=1 with asymmetric pads is not supported".into());
    }
    cx.add(
        Op::Pool(PoolAttrs {
            kind,
            kernel,
            strides,
            pads,
            ceil_mode,
        }),
        vec![x],
    )
}

fn pool_size(input: usize, kernel: usize, stride: usize, pads: [usize; 2], ceil: bool) -> Option<usize> {
    edgec_passes::op::pool_output_size(input, kernel, stride, pads, ceil).ok()
}

fn max_pool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    if cx.attr_ints("dilations")?.is_some_and(|d| d.iter().any(|&v| v != 1)) {
        return super::window::dilated_max_pool(cx);
    }
    pool(cx, PoolKind::Max)
}

fn average_pool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let exclude_padding = cx.attr_int("count_include_pad", 0)? == 0;
    if cx.attr_ints("dilations")?.is_some_and(|d| d.iter().any(|&v| v != 1)) {
        return super::window::dilated_average_pool(cx, !exclude_padding);
    }
    pool(cx, PoolKind::Avg { exclude_padding })
}

fn global_pool(cx: &mut NodeCx, kind: ReduceKind) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    let rank = cx.ty(x).rank();
    if rank < 3 {
        return Err(format!("input {} must have rank 3 or more", cx.ty(x)));
    }
    cx.add(
        Op::Reduce {
            kind,
            axes: (2..rank).collect(),
            keep_dims: true,
        },
        vec![x],
    )
}

fn global_average_pool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    global_pool(cx, ReduceKind::Mean)
}

fn global_max_pool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    global_pool(cx, ReduceKind::Max)
}
