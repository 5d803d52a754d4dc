//! ConvTranspose (1 to 3 spatial axes).
//!
//! ONNX describes the output as a window onto the *full* transposed convolution (length
//! `(in - 1)·s + (k - 1)·d + 1` per axis): it starts `pad_begin` in and ends `pad_end` before
//! the end, extended by `output_padding` (pads and output padding may also come from
//! `auto_pad` or `output_shape`). MIL's `conv_transpose` crops with its own pads, but Core ML
//! has given device-dependent results for asymmetric pads (onnxruntime's CoreML provider), so
//! only symmetric crops go to `conv_transpose`; anything else runs it unpadded and crops with
//! a slice, and a window reaching past the full result is padded with zeros (to which the bias
//! is then added, as ONNX adds it to every output element).
//!
//! MIL needs the weight as a constant (before iOS 17); it is required to be one here.

use super::conv::{kernel, per_axis};
use super::{positive, Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BinaryOp, ConvAttrs, Op, PadMode, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[("ConvTranspose", conv_transpose)];

/// Where the ONNX output lies in the full result of one axis: `begin` (negative: zeros before
/// it) and `end` (past `full`: zeros after it), as signed offsets.
struct Window {
    begin: i64,
    end: i64,
}

/// Split a total padding as ONNX does for `auto_pad`/`output_shape`: SAME_UPPER puts the
/// smaller half first, everything else the larger.
fn split_total(total: i64, same_upper: bool) -> (i64, i64) {
    let small = total.div_euclid(2);
    if same_upper {
        (small, total - small)
    } else {
        (total - small, small)
    }
}

fn conv_transpose(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let w = cx.required_input(1)?;
    let (x_ty, w_ty) = (cx.ty(x).clone(), cx.ty(w).clone());
    if !(3..=5).contains(&x_ty.rank()) || w_ty.rank() != x_ty.rank() {
        return Err(format!("input {x_ty} and weight {w_ty} must both have rank 3..=5"));
    }
    if cx.const_input(1).is_none() {
        return Err(
            "the weight (input 1) must be a constant (Core ML's conv_transpose needs it at compile time)".into(),
        );
    }
    let n = x_ty.rank() - 2;
    let kernel = kernel(cx, &w_ty)?;
    let strides = per_axis(cx, "strides", n)?;
    let dilations = per_axis(cx, "dilations", n)?;
    let groups = positive(&[cx.attr_int("group", 1)?], "group")?[0];
    if x_ty.shape[1] != w_ty.shape[0] || x_ty.shape[1] % groups != 0 {
        return Err(format!(
            "input {x_ty}, weight {w_ty} and group {groups} do not agree (weight is [C_in, C_out/group, *K])"
        ));
    }
    let c_out = w_ty.shape[1] * groups;
    let output_padding = match cx.attr_ints("output_padding")? {
        Some(v) if v.len() == n && v.iter().all(|&p| p >= 0) => {
            super::non_negative(&v, "output_padding")?;
            v
        }
        Some(v) => return Err(format!("output_padding {v:?} must hold {n} non-negative values")),
        None => vec![0; n],
    };
    let full: Vec<i64> = (0..n)
        .map(|i| ((x_ty.shape[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1) as i64)
        .collect();

    let auto_pad = cx.attr_string("auto_pad", "NOTSET")?;
    let same_upper = auto_pad == "SAME_UPPER";
    let output_shape = cx.attr_ints("output_shape")?;
    let windows: Vec<Window> = if let Some(out) = output_shape.filter(|o| !o.is_empty()) {
        // [H, W] or [N, C, H, W]: the spatial sizes are the last n.
        if out.len() < n {
            return Err(format!("output_shape {out:?} must give {n} spatial sizes"));
        }
        let out = &out[out.len() - n..];
        super::positive(out, "output_shape")?;
        (0..n)
            .map(|i| {
                let (b, e) = split_total(full[i] + output_padding[i] - out[i], same_upper);
                Window {
                    begin: b,
                    end: full[i] + output_padding[i] - e,
                }
            })
            .collect()
    } else {
        match auto_pad.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => (0..n)
                .map(|i| {
                    let out = (x_ty.shape[2 + i] * strides[i]) as i64;
                    let (b, e) = split_total(full[i] + output_padding[i] - out, same_upper);
                    Window {
                        begin: b,
                        end: full[i] + output_padding[i] - e,
                    }
                })
                .collect(),
            "NOTSET" | "VALID" => {
                let pads = match cx.attr_ints("pads")? {
                    Some(p) if auto_pad == "NOTSET" => p,
                    _ => vec![0; 2 * n],
                };
                if pads.len() != 2 * n || pads.iter().any(|&p| p < 0) {
                    return Err(format!("pads {pads:?} must hold {} non-negative values", 2 * n));
                }
                (0..n)
                    .map(|i| Window {
                        begin: pads[i],
                        end: full[i] + output_padding[i] - pads[n + i],
                    })
                    .collect()
            }
            other => {
                return Err(format!(
                    "auto_pad {other:?} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER"
                ))
            }
        }
    };
    if let Some(i) = (0..n).find(|&i| windows[i].end <= windows[i].begin.max(0) || windows[i].begin >= full[i]) {
        return Err(format!(
            "spatial axis {i}: the output window {}..{} misses the result (0..{})",
            windows[i].begin, windows[i].end, full[i]
        ));
    }

    let symmetric = (0..n).all(|i| {
        let (b, e) = (windows[i].begin, full[i] - windows[i].end);
        b >= 0 && b == e
    });
    let zero_fill = windows.iter().zip(&full).any(|(win, &f)| win.begin < 0 || win.end > f);
    let bias = cx.input(2);
    // The bias goes into conv_transpose when it is a constant and no zero fill follows.
    let bias_inside = bias.filter(|_| cx.const_input(2).is_some() && !zero_fill);
    let attrs = |pads: Vec<[usize; 2]>| {
        Op::ConvTranspose(ConvAttrs {
            strides: strides.clone(),
            dilations: dilations.clone(),
            pads,
            groups,
        })
    };
    let mut inputs = vec![x, w];
    inputs.extend(bias_inside);
    let bias_after = bias.filter(|_| bias_inside.is_none());
    if symmetric {
        let pads = windows.iter().map(|win| [win.begin as usize; 2]).collect();
        let y = step(cx, bias_after.is_none(), attrs(pads), inputs, "unbiased")?;
        return finish(cx, y, bias_after, c_out, n);
    }

    // Unpadded, then cropped (slice) and/or extended with zeros (pad).
    let mut axes: Vec<SliceAxis> = Vec::new();
    let mut fill = vec![[0, 0]; 2];
    for i in 0..n {
        let (b, e) = (windows[i].begin.max(0), windows[i].end.min(full[i]));
        axes.push(SliceAxis {
            begin: b as usize,
            end: Some(e as usize),
            stride: 1,
        });
        fill.push([
            (-windows[i].begin).max(0) as usize,
            (windows[i].end - full[i]).max(0) as usize,
        ]);
    }
    let crop = axes.iter().zip(&full).any(|(s, &f)| !s.is_full(f as usize));
    let mut y = step(cx, false, attrs(vec![[0, 0]; n]), inputs, "full")?;
    if crop {
        let c = cx.ty(y).shape[1];
        let mut all = vec![SliceAxis::full(x_ty.shape[0]), SliceAxis::full(c)];
        all.extend(axes);
        let last = !zero_fill && bias_after.is_none();
        y = step(cx, last, Op::Slice { axes: all }, vec![y], "cropped")?;
    }
    if zero_fill {
        let op = Op::Pad {
            pads: fill,
            mode: PadMode::Constant,
            value: 0.0,
        };
        y = step(cx, bias_after.is_none(), op, vec![y], "filled")?;
    }
    finish(cx, y, bias_after, c_out, n)
}

/// Add `op` as an intermediate step, or, when it is the `last`, as the node's output.
fn step(cx: &mut NodeCx, last: bool, op: Op, inputs: Vec<ValueId>, suffix: &str) -> Result<ValueId, String> {
    if last {
        Ok(cx.add(op, inputs)?[0])
    } else {
        cx.add_step(op, inputs, suffix)
    }
}

/// The node's result: `y` itself, or `y + bias` with the bias broadcast per channel
/// (`[C_out, 1, ...]`).
fn finish(cx: &mut NodeCx, y: ValueId, bias: Option<ValueId>, c_out: usize, n: usize) -> Result<Vec<ValueId>, String> {
    let Some(b) = bias else {
        return Ok(vec![y]);
    };
    let mut per_channel = vec![c_out];
    per_channel.extend(std::iter::repeat_n(1, n));
    let b = cx.add_step(Op::Reshape { shape: per_channel }, vec![b], "bias")?;
    cx.add(Op::Binary(BinaryOp::Add), vec![y, b])
}
