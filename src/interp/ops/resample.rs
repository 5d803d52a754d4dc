//! Rearranging and resampling images: `depth_to_space`, `pixel_shuffle`, `space_to_depth`
//! (coremltools iOS15 `tensor_transformation.py`) and `upsample_nearest_neighbor`,
//! `upsample_bilinear`, `resize_bilinear` (iOS15/16 `image_resizing.py`).
//!
//! coremltools documents shapes, not element order, for the depth/space ops; the order here
//! is the one its frontends rely on: `depth_to_space` and `space_to_depth` are TensorFlow's
//! (the TF frontend maps them one to one, "DCR"), `pixel_shuffle` is PyTorch's ("CRD").
//!
//! The bilinear ops sample the last two axes on the grids their docstrings give (positions
//! clamped to `[0, in - 1]`), interpolating between the two neighbouring pixels of each axis;
//! a grid whose formula divides by zero is refused, except on a one-pixel axis, which has only
//! one position to read. `upsample_nearest_neighbor` reads `x[floor(i / scale)]`.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, Buf, OpResult, Tensor};
use super::shape::take;
use super::OpFn;
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[
    ("depth_to_space", depth_to_space),
    ("pixel_shuffle", pixel_shuffle),
    ("space_to_depth", space_to_depth),
    ("upsample_nearest_neighbor", upsample_nearest_neighbor),
    ("upsample_bilinear", upsample_bilinear),
    ("resize_bilinear", resize_bilinear),
];

/// `x` as `[n, c, h, w]` and a block size of at least 1 from parameter `name`.
fn block_input(ctx: &OpCtx, name: &str) -> OpResult<(Tensor, [usize; 4], usize)> {
    let x = ctx.get("x")?;
    let [n, c, h, w] = x.shape[..] else {
        return Err(format!("x must have rank 4, got {}", x.type_string()));
    };
    let b = usize::try_from(ctx.int_or(name, 0)?)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{name} must be positive"))?;
    Ok((x, [n, c, h, w], b))
}

/// Depth to space: output `[n, c/b², h·b, w·b]` where the block offset `(i, j)` of output
/// channel `k` is read from input channel `channel(k, i·b + j)`.
fn unfold(ctx: &OpCtx, param: &str, channel: fn(usize, usize, usize, usize) -> usize) -> OpResult<Vec<Tensor>> {
    let (x, [n, c, h, w], b) = block_input(ctx, param)?;
    if c % (b * b) != 0 {
        return Err(format!("{c} channels do not split into {b}x{b} blocks"));
    }
    let (oc, oh, ow) = (c / (b * b), h * b, w * b);
    let total = n * oc * oh * ow;
    let buf = take(
        &x.buf,
        total,
        |i| {
            let (xo, yo) = (i % ow, i / ow % oh);
            let (k, batch) = (i / (ow * oh) % oc, i / (ow * oh * oc));
            let ci = channel(k, (yo % b) * b + xo % b, oc, b);
            Some(((batch * c + ci) * h + yo / b) * w + xo / b)
        },
        0.0,
    );
    Ok(vec![Tensor {
        dtype: x.dtype,
        shape: vec![n, oc, oh, ow],
        buf,
    }])
}

/// DCR: channel `(i·b + j)·C + k`.
fn depth_to_space(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unfold(ctx, "block_size", |k, offset, oc, _| offset * oc + k)
}

/// CRD: channel `k·b² + i·b + j`.
fn pixel_shuffle(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unfold(ctx, "upscale_factor", |k, offset, _, b| k * b * b + offset)
}

/// The inverse of `depth_to_space`: output channel `(i·b + j)·C + k` holds the pixels at block
/// offset `(i, j)` of input channel `k`.
fn space_to_depth(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (x, [n, c, h, w], b) = block_input(ctx, "block_size")?;
    if h % b != 0 || w % b != 0 {
        return Err(format!("{h}x{w} does not split into {b}x{b} blocks"));
    }
    let (oc, oh, ow) = (c * b * b, h / b, w / b);
    let total = n * oc * oh * ow;
    let buf = take(
        &x.buf,
        total,
        |i| {
            let (xo, yo) = (i % ow, i / ow % oh);
            let (co, batch) = (i / (ow * oh) % oc, i / (ow * oh * oc));
            let (offset, k) = (co / c, co % c);
            let (bi, bj) = (offset / b, offset % b);
            Some(((batch * c + k) * h + yo * b + bi) * w + xo * b + bj)
        },
        0.0,
    );
    Ok(vec![Tensor {
        dtype: x.dtype,
        shape: vec![n, oc, oh, ow],
        buf,
    }])
}

/// A scale factor parameter (int32 or float scalar), default 1.
fn scale_factor(ctx: &OpCtx, name: &str) -> OpResult<f64> {
    let s = match ctx.opt(name)? {
        None => 1.0,
        Some(t) => match &t.buf {
            Buf::I(v) if v.len() == 1 => f64::from(v[0]),
            Buf::F(v) if v.len() == 1 => f64::from(v[0]),
            _ => return Err(format!("{name} must be a scalar, got {}", t.type_string())),
        },
    };
    if s > 0.0 {
        Ok(s)
    } else {
        Err(format!("{name} must be positive, got {s}"))
    }
}

/// `x` (rank >= 3) and its last two dims.
fn image(ctx: &OpCtx) -> OpResult<(Tensor, [usize; 2])> {
    let x = ctx.get("x")?;
    let r = x.rank();
    if r < 3 {
        return Err(format!("x must have rank 3 or more, got {}", x.type_string()));
    }
    let hw = [x.shape[r - 2], x.shape[r - 1]];
    Ok((x, hw))
}

/// `floor(in · scale)`, in f32 as coremltools' type inference computes it.
fn scaled_size(input: usize, scale: f64) -> OpResult<usize> {
    let out = (scale as f32 * input as f32).floor();
    if out >= 1.0 {
        Ok(out as usize)
    } else {
        Err(format!("scale {scale} leaves nothing of {input}"))
    }
}

fn upsample_nearest_neighbor(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (x, [h, w]) = image(ctx)?;
    let (sh, sw) = (
        scale_factor(ctx, "scale_factor_height")?,
        scale_factor(ctx, "scale_factor_width")?,
    );
    let (oh, ow) = (scaled_size(h, sh)?, scaled_size(w, sw)?);
    let source = |i: usize, s: f64, n: usize| ((i as f64 / s).floor() as usize).min(n - 1);
    let rows: Vec<usize> = (0..oh).map(|i| source(i, sh, h)).collect();
    let cols: Vec<usize> = (0..ow).map(|i| source(i, sw, w)).collect();
    let planes = numel(&x.shape[..x.rank() - 2]);
    let buf = take(
        &x.buf,
        planes * oh * ow,
        |i| {
            let (p, y, xo) = (i / (oh * ow), i / ow % oh, i % ow);
            Some((p * h + rows[y]) * w + cols[xo])
        },
        0.0,
    );
    let mut shape = x.shape.clone();
    let r = shape.len();
    shape[r - 2] = oh;
    shape[r - 1] = ow;
    Ok(vec![Tensor {
        dtype: x.dtype,
        shape,
        buf,
    }])
}

/// `start + i·spacing` for `output` samples, clamped to an axis of `input` pixels.
fn grid(input: usize, output: usize, start: f64, spacing: f64, what: &str) -> OpResult<Vec<f64>> {
    if input == 1 {
        return Ok(vec![0.0; output]);
    }
    if !start.is_finite() || !spacing.is_finite() {
        return Err(format!(
            "{what} sampling is undefined for {input} -> {output} (division by zero)"
        ));
    }
    Ok((0..output)
        .map(|i| (start + i as f64 * spacing).clamp(0.0, (input - 1) as f64))
        .collect())
}

fn upsample_bilinear(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (x, [h, w]) = image(ctx)?;
    let (sh, sw) = (
        scale_factor(ctx, "scale_factor_height")?,
        scale_factor(ctx, "scale_factor_width")?,
    );
    let align_corners = ctx.bool_or("align_corners", true)?;
    let half_pixel_centers = ctx.bool_or("half_pixel_centers", !align_corners)?;
    if align_corners && half_pixel_centers {
        return Err("align_corners and half_pixel_centers together are not defined".into());
    }
    let (oh, ow) = (scaled_size(h, sh)?, scaled_size(w, sw)?);
    // The scale is recomputed from the output size (coremltools: recompute_scale_factor).
    let axis_grid = |input: usize, output: usize| -> OpResult<Vec<f64>> {
        let (xin, xout) = (input as f64, output as f64);
        if align_corners {
            grid(input, output, 0.0, (xin - 1.0) / (xout - 1.0), "align_corners")
        } else if half_pixel_centers {
            let spacing = xin / xout;
            grid(input, output, 0.5 * spacing - 0.5, spacing, "half_pixel_centers")
        } else {
            grid(input, output, 0.0, xin / xout, "upsample_bilinear")
        }
    };
    let rows = axis_grid(h, oh)?;
    let cols = axis_grid(w, ow)?;
    Ok(vec![bilinear(&x, [h, w], &rows, &cols)?])
}

fn resize_bilinear(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (x, [h, w]) = image(ctx)?;
    let size = |name: &str| -> OpResult<usize> {
        usize::try_from(ctx.int_or(name, 1)?)
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("{name} must be positive"))
    };
    let (oh, ow) = (size("target_size_height")?, size("target_size_width")?);
    let mode = ctx.string_or("sampling_mode", "DEFAULT")?;
    let axis_grid = |input: usize, output: usize| -> OpResult<Vec<f64>> {
        let (xin, xout) = (input as f64, output as f64);
        match mode.as_str() {
            "STRICT_ALIGN_CORNERS" => grid(input, output, 0.0, (xin - 1.0) / (xout - 1.0), &mode),
            "ALIGN_CORNERS" if output == 1 => grid(input, output, (xin - 1.0) / 2.0, 0.0, &mode),
            "ALIGN_CORNERS" => grid(input, output, 0.0, (xin - 1.0) / (xout - 1.0), &mode),
            "DEFAULT" => grid(input, output, 0.0, (xin - xin / xout) / (xout - 1.0), &mode),
            "OFFSET_CORNERS" => {
                let delta = (xin - 1.0).max(1.0) / xout;
                grid(input, output, 0.5 * delta, delta, &mode)
            }
            "UNALIGN_CORNERS" => {
                let spacing = xin / xout;
                grid(input, output, 0.5 * spacing - 0.5, spacing, &mode)
            }
            other => Err(format!("unknown sampling_mode {other:?}")),
        }
    };
    let rows = axis_grid(h, oh)?;
    let cols = axis_grid(w, ow)?;
    Ok(vec![bilinear(&x, [h, w], &rows, &cols)?])
}

/// Bilinear interpolation of the last two axes of `x` (`[h, w]`) at `rows` × `cols`.
fn bilinear(x: &Tensor, [h, w]: [usize; 2], rows: &[f64], cols: &[f64]) -> OpResult<Tensor> {
    // Each position as its two neighbours and the weight of the second.
    let taps = |g: &[f64], n: usize| -> Vec<(usize, usize, f64)> {
        g.iter()
            .map(|&p| {
                let lo = (p.floor() as usize).min(n - 1);
                (lo, (lo + 1).min(n - 1), p - lo as f64)
            })
            .collect()
    };
    let (ty, tx) = (taps(rows, h), taps(cols, w));
    let (oh, ow) = (rows.len(), cols.len());
    let xs = x.floats()?;
    let planes = numel(&x.shape[..x.rank() - 2]);
    let mut out = vec![0f32; planes * oh * ow];
    if !out.is_empty() {
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, o)| {
            let src = &xs[p * h * w..(p + 1) * h * w];
            for (yo, &(y0, y1, fy)) in ty.iter().enumerate() {
                for (xo, &(x0, x1, fx)) in tx.iter().enumerate() {
                    let at = |y: usize, xx: usize| f64::from(src[y * w + xx]);
                    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                    let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                    o[yo * ow + xo] = (top * (1.0 - fy) + bottom * fy) as f32;
                }
            }
        });
    }
    let mut shape = x.shape.clone();
    let r = shape.len();
    shape[r - 2] = oh;
    shape[r - 1] = ow;
    Ok(Tensor::float(x.dtype, shape, out))
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{bool_scalar, floats, ints, run_op, string};

    #[test]
    fn depth_space_round_trip_and_orders() {
        // 8 channels of one pixel, block 2: DCR takes the offset from the high channel bits.
        let x = floats(&[1, 8, 1, 1], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let dcr = run_op("depth_to_space", vec![("x", x.clone()), ("block_size", ints(&[2]))]).unwrap();
        assert_eq!(dcr.shape, vec![1, 2, 2, 2]);
        assert_eq!(dcr.floats().unwrap(), &[0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]);
        let crd = run_op("pixel_shuffle", vec![("x", x.clone()), ("upscale_factor", ints(&[2]))]).unwrap();
        assert_eq!(crd.floats().unwrap(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        let back = run_op("space_to_depth", vec![("x", dcr), ("block_size", ints(&[2]))]).unwrap();
        assert_eq!(back.shape, vec![1, 8, 1, 1]);
        assert_eq!(back.floats().unwrap(), x.floats().unwrap());
    }

    #[test]
    fn bilinear_grids_follow_the_docstrings() {
        // coremltools' own examples: Xin = 2 ([0, 1]) resampled to 5 (and 6).
        let x = floats(&[1, 1, 2], &[0.0, 1.0]);
        let resize = |mode: &str, out: i32| {
            let y = run_op(
                "resize_bilinear",
                vec![
                    ("x", x.clone()),
                    ("target_size_height", ints(&[1])),
                    ("target_size_width", ints(&[out])),
                    ("sampling_mode", string(mode)),
                ],
            )
            .unwrap();
            y.floats()
                .unwrap()
                .iter()
                .map(|v| (v * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(resize("UNALIGN_CORNERS", 5), [0.0, 0.1, 0.5, 0.9, 1.0]);
        assert_eq!(resize("STRICT_ALIGN_CORNERS", 5), [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(resize("DEFAULT", 5), [0.0, 0.4, 0.8, 1.0, 1.0]);
        assert_eq!(resize("OFFSET_CORNERS", 5), [0.1, 0.3, 0.5, 0.7, 0.9]);
        assert_eq!(resize("UNALIGN_CORNERS", 6), [0.0, 0.0, 0.33, 0.67, 1.0, 1.0]);
        assert_eq!(resize("DEFAULT", 6), [0.0, 0.33, 0.67, 1.0, 1.0, 1.0]);
        // upsample_bilinear recomputes the scale from the output size: 2.6 → 5 samples.
        let y = run_op(
            "upsample_bilinear",
            vec![
                ("x", x.clone()),
                ("scale_factor_width", floats(&[], &[2.6])),
                ("align_corners", bool_scalar(false)),
            ],
        )
        .unwrap();
        let got: Vec<f32> = y
            .floats()
            .unwrap()
            .iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect();
        assert_eq!(got, [0.0, 0.1, 0.5, 0.9, 1.0]);
        let y = run_op(
            "upsample_nearest_neighbor",
            vec![
                ("x", floats(&[1, 1, 3], &[1.5, 2.5, 3.5])),
                ("scale_factor_width", ints(&[2])),
            ],
        )
        .unwrap();
        assert_eq!(y.floats().unwrap(), &[1.5, 1.5, 2.5, 2.5, 3.5, 3.5]);
    }
}
