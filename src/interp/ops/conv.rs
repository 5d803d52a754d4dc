//! `conv`: 1-3 spatial dims, groups, dilations, every `pad_type` (coremltools iOS15 `conv.py`).
//!
//! Three strategies, all exact f32 sums of the same products:
//! * depthwise-like (`C_in / groups == 1`): a direct loop per output channel;
//! * 1×1, stride 1, unpadded: the input planes already are the im2col matrix, one sgemm;
//! * otherwise im2col over blocks of output positions, each block one sgemm, with rayon over
//!   (batch, group) and blocks so big layers use every core with bounded scratch memory.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, OpResult, Tensor};
use super::linalg::{gemm, gemm_par, Mat};
use super::{to_usizes, OpFn, Window};
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[("conv", conv)];

/// Upper bound on one im2col block, in floats (4 MiB).
const MAX_COL_BLOCK: usize = 1 << 20;

/// Parameters of one convolution, in the normalised 3-D form.
pub(crate) struct ConvGeom {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    pub win: Window,
}

/// The parameters `conv` and `conv_transpose` share, read with MIL's defaults.
pub(super) struct ConvParams {
    /// Number of spatial dims (1 to 3).
    pub spatial: usize,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pad_type: String,
    pub pad: Vec<usize>,
    pub groups: usize,
}

/// Read the shared parameters of a convolution of `x` by `weight`, checking the ranks.
pub(super) fn conv_params(ctx: &OpCtx, x: &Tensor, w: &Tensor) -> OpResult<ConvParams> {
    let rank = x.rank();
    if !(3..=5).contains(&rank) || w.rank() != rank {
        return Err(format!(
            "x must have rank 3 to 5 and weight the same rank; got {} and {}",
            x.type_string(),
            w.type_string()
        ));
    }
    let sd = rank - 2;
    Ok(ConvParams {
        spatial: sd,
        strides: to_usizes(&ctx.ints_or("strides", || vec![1; sd])?, "strides")?,
        dilations: to_usizes(&ctx.ints_or("dilations", || vec![1; sd])?, "dilations")?,
        pad_type: ctx.string_or("pad_type", "valid")?,
        pad: to_usizes(&ctx.ints_or("pad", || vec![0; 2 * sd])?, "pad")?,
        groups: usize::try_from(ctx.int_or("groups", 1)?)
            .ok()
            .filter(|&g| g > 0)
            .ok_or("groups must be positive")?,
    })
}

fn conv(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let w = ctx.get("weight")?;
    if x.dtype != w.dtype {
        return Err(format!("x is {} but weight is {}", x.type_string(), w.type_string()));
    }
    let ConvParams {
        spatial: sd,
        strides,
        dilations,
        pad_type,
        pad,
        groups,
    } = conv_params(ctx, &x, &w)?;
    let (n, cin) = (x.shape[0], x.shape[1]);
    let cout = w.shape[0];
    if cin % groups != 0 || cout % groups != 0 || w.shape[1] * groups != cin {
        return Err(format!(
            "x {:?}, weight {:?} and groups {groups} do not agree",
            x.shape, w.shape
        ));
    }
    let win = Window::new(
        &x.shape[2..],
        &w.shape[2..],
        &strides,
        &dilations,
        &pad_type,
        &pad,
        false,
    )?;
    let bias = match ctx.opt("bias")? {
        Some(b) => {
            let v = b.floats()?.to_vec();
            if v.len() != cout {
                return Err(format!("bias has {} values for {cout} output channels", v.len()));
            }
            Some(v)
        }
        None => None,
    };
    let geom = ConvGeom {
        n,
        cin,
        cout,
        groups,
        win,
    };
    let out = conv_f32(&geom, x.floats()?, w.floats()?, bias.as_deref())?;
    let mut shape = vec![n, cout];
    shape.extend(geom.win.output_dims(sd));
    debug_assert_eq!(numel(&shape), out.len());
    Ok(vec![Tensor::float(x.dtype, shape, out)])
}

/// The convolution itself: x `[n, cin, D, H, W]`, w `[cout, cin/groups, kD, kH, kW]`.
pub(crate) fn conv_f32(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> OpResult<Vec<f32>> {
    let win = &g.win;
    let (cin_g, cout_g) = (g.cin / g.groups, g.cout / g.groups);
    let (isz, osz, ksz) = (win.input_size(), win.output_size(), win.kernel_size());
    let kk = cin_g * ksz;
    if x.len() != g.n * g.cin * isz || w.len() != g.cout * kk {
        return Err(format!(
            "internal error: conv buffers ({} and {}) do not match the geometry",
            x.len(),
            w.len()
        ));
    }
    let mut out = vec![0f32; g.n * g.cout * osz];
    if osz == 0 || out.is_empty() {
        return Ok(out);
    }
    if cin_g == 1 {
        depthwise(g, x, w, &mut out);
    } else {
        let pointwise =
            win.kernel == [1, 1, 1] && win.strides == [1, 1, 1] && win.pad_before == [0; 3] && win.pad_after == [0; 3];
        // One (batch, group) block of the output is `cout_g` contiguous rows of `osz`.
        out.par_chunks_mut(cout_g * osz)
            .enumerate()
            .try_for_each(|(blk, o)| -> OpResult<()> {
                let (b, grp) = (blk / g.groups, blk % g.groups);
                let xin = &x[(b * g.cin + grp * cin_g) * isz..][..cin_g * isz];
                let wg = &w[grp * cout_g * kk..][..cout_g * kk];
                if pointwise {
                    return gemm_par(cout_g, cin_g, osz, Mat::rows(wg, kk), Mat::rows(xin, osz), o);
                }
                let threads = rayon::current_num_threads();
                let cols = osz
                    .div_ceil(2 * threads)
                    .min((MAX_COL_BLOCK / kk).max(16))
                    .max(64)
                    .min(osz);
                let blocks: Vec<(usize, Vec<f32>)> = (0..osz.div_ceil(cols))
                    .into_par_iter()
                    .map(|bi| -> OpResult<(usize, Vec<f32>)> {
                        let p0 = bi * cols;
                        let pc = cols.min(osz - p0);
                        let mut col = vec![0f32; kk * pc];
                        im2col(win, xin, cin_g, p0, pc, &mut col);
                        let mut tmp = vec![0f32; cout_g * pc];
                        gemm(cout_g, kk, pc, Mat::rows(wg, kk), Mat::rows(&col, pc), &mut tmp)?;
                        Ok((p0, tmp))
                    })
                    .collect::<OpResult<_>>()?;
                for (p0, tmp) in blocks {
                    let pc = tmp.len() / cout_g;
                    for r in 0..cout_g {
                        o[r * osz + p0..r * osz + p0 + pc].copy_from_slice(&tmp[r * pc..(r + 1) * pc]);
                    }
                }
                Ok(())
            })?;
    }
    if let Some(bias) = bias {
        out.par_chunks_mut(osz).enumerate().for_each(|(plane, o)| {
            let b = bias[plane % g.cout];
            o.iter_mut().for_each(|v| *v += b);
        });
    }
    Ok(out)
}

/// Fill `col` (`cin_g·kD·kH·kW` rows × `pc` columns) with the input values under each kernel
/// tap for output positions `p0..p0+pc`; taps that fall in the padding read 0.
fn im2col(win: &Window, x: &[f32], cin_g: usize, p0: usize, pc: usize, col: &mut [f32]) {
    let [id, ih, iw] = win.input.map(|v| v as isize);
    let [_, oh, ow] = win.output;
    let isz = win.input_size();
    let mut row = 0;
    for c in 0..cin_g {
        let plane = &x[c * isz..(c + 1) * isz];
        for kd in 0..win.kernel[0] {
            for kh in 0..win.kernel[1] {
                for kw in 0..win.kernel[2] {
                    let dst = &mut col[row * pc..(row + 1) * pc];
                    row += 1;
                    let off_d = (kd * win.dilations[0]) as isize - win.pad_before[0] as isize;
                    let off_h = (kh * win.dilations[1]) as isize - win.pad_before[1] as isize;
                    let off_w = (kw * win.dilations[2]) as isize - win.pad_before[2] as isize;
                    let (sd, sh, sw) = (
                        win.strides[0] as isize,
                        win.strides[1] as isize,
                        win.strides[2] as isize,
                    );
                    let (mut d, mut h, mut wv) = (p0 / (oh * ow), p0 / ow % oh, p0 % ow);
                    for slot in dst.iter_mut() {
                        let zi = d as isize * sd + off_d;
                        let yi = h as isize * sh + off_h;
                        let xi = wv as isize * sw + off_w;
                        *slot = if zi >= 0 && zi < id && yi >= 0 && yi < ih && xi >= 0 && xi < iw {
                            plane[((zi * ih + yi) * iw + xi) as usize]
                        } else {
                            0.0
                        };
                        wv += 1;
                        if wv == ow {
                            wv = 0;
                            h += 1;
                            if h == oh {
                                h = 0;
                                d += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Convolution where each output channel reads one input channel (`cin / groups == 1`).
fn depthwise(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32]) {
    let win = &g.win;
    let cout_g = g.cout / g.groups;
    let (isz, osz, ksz) = (win.input_size(), win.output_size(), win.kernel_size());
    let [id, ih, iw] = win.input.map(|v| v as isize);
    let [od, oh, ow] = win.output;
    out.par_chunks_mut(osz).enumerate().for_each(|(plane, o)| {
        let (b, co) = (plane / g.cout, plane % g.cout);
        let ci = co / cout_g;
        let xin = &x[(b * g.cin + ci) * isz..][..isz];
        let wk = &w[co * ksz..][..ksz];
        let mut p = 0;
        for d in 0..od {
            for h in 0..oh {
                for wv in 0..ow {
                    let mut acc = 0f32;
                    let mut t = 0;
                    for kd in 0..win.kernel[0] {
                        let zi = (d * win.strides[0] + kd * win.dilations[0]) as isize - win.pad_before[0] as isize;
                        for kh in 0..win.kernel[1] {
                            let yi = (h * win.strides[1] + kh * win.dilations[1]) as isize - win.pad_before[1] as isize;
                            for kw in 0..win.kernel[2] {
                                let xi =
                                    (wv * win.strides[2] + kw * win.dilations[2]) as isize - win.pad_before[2] as isize;
                                if zi >= 0 && zi < id && yi >= 0 && yi < ih && xi >= 0 && xi < iw {
                                    acc += xin[((zi * ih + yi) * iw + xi) as usize] * wk[t];
                                }
                                t += 1;
                            }
                        }
                    }
                    o[p] = acc;
                    p += 1;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time, in f64.
    fn naive(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let win = &g.win;
        let (cin_g, cout_g) = (g.cin / g.groups, g.cout / g.groups);
        let [od, oh, ow] = win.output;
        let [id, ih, iw] = win.input;
        let [kd, kh, kw] = win.kernel;
        let mut out = Vec::new();
        for b in 0..g.n {
            for co in 0..g.cout {
                let grp = co / cout_g;
                for d in 0..od {
                    for h in 0..oh {
                        for wv in 0..ow {
                            let mut acc = bias.map_or(0.0, |b| f64::from(b[co]));
                            for c in 0..cin_g {
                                let ci = grp * cin_g + c;
                                for a in 0..kd {
                                    for bb in 0..kh {
                                        for cc in 0..kw {
                                            let z = (d * win.strides[0] + a * win.dilations[0]) as isize
                                                - win.pad_before[0] as isize;
                                            let y = (h * win.strides[1] + bb * win.dilations[1]) as isize
                                                - win.pad_before[1] as isize;
                                            let xx = (wv * win.strides[2] + cc * win.dilations[2]) as isize
                                                - win.pad_before[2] as isize;
                                            if z < 0 || y < 0 || xx < 0 {
                                                continue;
                                            }
                                            let (z, y, xx) = (z as usize, y as usize, xx as usize);
                                            if z >= id || y >= ih || xx >= iw {
                                                continue;
                                            }
                                            let xv = x[(((b * g.cin + ci) * id + z) * ih + y) * iw + xx];
                                            let wvv = w[(((co * cin_g + c) * kd + a) * kh + bb) * kw + cc];
                                            acc += f64::from(xv) * f64::from(wvv);
                                        }
                                    }
                                }
                            }
                            out.push(acc as f32);
                        }
                    }
                }
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        n: usize,
        cin: usize,
        cout: usize,
        groups: usize,
        spatial: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
        pad: &[usize],
    ) {
        let win = Window::new(spatial, kernel, strides, dilations, "custom", pad, false).unwrap();
        let g = ConvGeom {
            n,
            cin,
            cout,
            groups,
            win,
        };
        let xlen = n * cin * g.win.input_size();
        let wlen = cout * (cin / groups) * g.win.kernel_size();
        let x: Vec<f32> = (0..xlen).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let w: Vec<f32> = (0..wlen).map(|i| ((i * 53 % 67) as f32 - 33.0) / 30.0).collect();
        let bias: Vec<f32> = (0..cout).map(|i| i as f32 * 0.1 - 0.3).collect();
        let got = conv_f32(&g, &x, &w, Some(&bias)).unwrap();
        let want = naive(&g, &x, &w, Some(&bias));
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "element {i}: {a} vs {b}");
        }
    }

    #[test]
    fn grouped_dilated_strided_padded_conv_matches_naive() {
        // 2-D: groups 2, dilation 2, asymmetric pads, strides (2,1).
        check(1, 4, 6, 2, &[9, 8], &[3, 2], &[2, 1], &[2, 2], &[0, 2, 1, 1]);
        // Depthwise with multiplier 2 and padding.
        check(2, 3, 6, 3, &[7, 7], &[3, 3], &[1, 1], &[1, 1], &[1, 1, 1, 1]);
        // Pointwise and plain dense.
        check(1, 5, 4, 1, &[6, 5], &[1, 1], &[1, 1], &[1, 1], &[0, 0, 0, 0]);
        check(2, 3, 4, 1, &[10, 11], &[3, 3], &[2, 2], &[1, 1], &[1, 1, 1, 1]);
        // 1-D and 3-D.
        check(1, 3, 2, 1, &[16], &[3], &[2], &[1], &[1, 1]);
        check(
            1,
            2,
            4,
            2,
            &[5, 6, 4],
            &[2, 3, 2],
            &[1, 2, 1],
            &[2, 1, 1],
            &[1, 0, 1, 1, 0, 1],
        );
        // Many output positions, so im2col runs in several blocks.
        check(1, 8, 8, 1, &[64, 70], &[3, 3], &[1, 1], &[1, 1], &[1, 1, 1, 1]);
    }

    #[test]
    fn hand_checked_dilated_conv() {
        // x = 1..=5 (1-D), kernel [1, 1] dilated by 2, no padding: y[i] = x[i] + x[i+2].
        let win = Window::new(&[5], &[2], &[1], &[2], "valid", &[], false).unwrap();
        let g = ConvGeom {
            n: 1,
            cin: 1,
            cout: 1,
            groups: 1,
            win,
        };
        let y = conv_f32(&g, &[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0, 1.0], None).unwrap();
        assert_eq!(y, vec![4.0, 6.0, 8.0]);
    }
}
