//! `max_pool` and `avg_pool`: 1-3 spatial dims, every `pad_type`, `ceil_mode`, and
//! `exclude_padding_from_average` (coremltools iOS15 `pool.py`).
//!
//! Window semantics follow PyTorch, which coremltools mirrors: padding never wins a max; an
//! average divides by the window's in-bounds count when padding is excluded, otherwise by the
//! part of the window inside the padded input (so a ceil-mode window hanging past the trailing
//! padding is not charged for the overhang).

use super::super::eval::OpCtx;
use super::super::tensor::{OpResult, Tensor};
use super::{to_usizes, OpFn, Window};
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[("max_pool", max_pool), ("avg_pool", avg_pool)];

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Pool {
    Max,
    Avg { exclude_padding: bool },
}

fn max_pool(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    pool(ctx, Pool::Max)
}

fn avg_pool(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let exclude_padding = ctx.bool_or("exclude_padding_from_average", false)?;
    pool(ctx, Pool::Avg { exclude_padding })
}

fn pool(ctx: &OpCtx, kind: Pool) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let rank = x.rank();
    if !(3..=5).contains(&rank) {
        return Err(format!("x must have rank 3 to 5, got {}", x.type_string()));
    }
    let sd = rank - 2;
    let kernel = to_usizes(ctx.get("kernel_sizes")?.ints()?, "kernel_sizes")?;
    let strides = to_usizes(&ctx.ints_or("strides", || vec![1; sd])?, "strides")?;
    let pad_type = ctx.string_or("pad_type", "valid")?;
    let pad = to_usizes(&ctx.ints_or("pad", || vec![0; 2 * sd])?, "pad")?;
    let ceil_mode = ctx.bool_or("ceil_mode", false)?;
    let win = Window::new(
        &x.shape[2..],
        &kernel,
        &strides,
        &vec![1; sd],
        &pad_type,
        &pad,
        ceil_mode,
    )?;
    let out = pool_f32(&win, kind, x.floats()?);
    let mut shape = x.shape[..2].to_vec();
    shape.extend(win.output_dims(sd));
    Ok(vec![Tensor::float(x.dtype, shape, out)])
}

/// Pool every `[D, H, W]` plane of `x`.
pub(crate) fn pool_f32(win: &Window, kind: Pool, x: &[f32]) -> Vec<f32> {
    let (isz, osz) = (win.input_size(), win.output_size());
    let planes = x.len().checked_div(isz).unwrap_or(0);
    let mut out = vec![0f32; planes * osz];
    if osz == 0 {
        return out;
    }
    // Per axis and output index: the clipped input range and the padded-window length.
    let ranges: Vec<Vec<(usize, usize, usize)>> = (0..3)
        .map(|a| {
            let (inp, pb, pa) = (
                win.input[a] as isize,
                win.pad_before[a] as isize,
                win.pad_after[a] as isize,
            );
            (0..win.output[a])
                .map(|o| {
                    let start = (o * win.strides[a]) as isize - pb;
                    let end = start + win.kernel[a] as isize;
                    let padded_len = (end.min(inp + pa) - start).max(0) as usize;
                    let lo = start.clamp(0, inp) as usize;
                    let hi = end.clamp(0, inp) as usize;
                    (lo, hi, padded_len)
                })
                .collect()
        })
        .collect();
    let [_, ih, iw] = win.input;
    out.par_chunks_mut(osz).zip(x.par_chunks(isz)).for_each(|(o, plane)| {
        let mut p = 0;
        for &(d0, d1, dl) in &ranges[0] {
            for &(h0, h1, hl) in &ranges[1] {
                for &(w0, w1, wl) in &ranges[2] {
                    let mut acc = match kind {
                        Pool::Max => f32::NEG_INFINITY,
                        Pool::Avg { .. } => 0.0,
                    };
                    for d in d0..d1 {
                        for h in h0..h1 {
                            let row = &plane[(d * ih + h) * iw..][w0..w1];
                            match kind {
                                Pool::Max => acc = row.iter().fold(acc, |m, &v| m.max(v)),
                                Pool::Avg { .. } => acc += row.iter().sum::<f32>(),
                            }
                        }
                    }
                    o[p] = match kind {
                        Pool::Max => acc,
                        Pool::Avg { exclude_padding } => {
                            let count = if exclude_padding {
                                (d1 - d0) * (h1 - h0) * (w1 - w0)
                            } else {
                                dl * hl * wl
                            };
                            if count == 0 {
                                0.0
                            } else {
                                acc / count as f32
                            }
                        }
                    };
                    p += 1;
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win2(h: usize, w: usize, k: usize, s: usize, pad: [usize; 4], ceil: bool) -> Window {
        Window::new(&[h, w], &[k, k], &[s, s], &[1, 1], "custom", &pad, ceil).unwrap()
    }

    #[test]
    fn ceil_mode_max_pool_keeps_the_partial_window() {
        // 1×4 input, k2 s2 would give 2 columns; on 1×5, ceil mode gives 3, the last window
        // holding only the fifth column.
        let win = Window::new(&[1, 5], &[1, 2], &[1, 2], &[1, 1], "custom", &[0; 4], true).unwrap();
        assert_eq!(win.output_dims(2), vec![1, 3]);
        let y = pool_f32(&win, Pool::Max, &[1.0, 5.0, -2.0, -3.0, -7.0]);
        assert_eq!(y, vec![5.0, -2.0, -7.0]);
        let y = pool_f32(
            &win,
            Pool::Avg { exclude_padding: false },
            &[1.0, 5.0, -2.0, -3.0, -7.0],
        );
        assert_eq!(y, vec![3.0, -2.5, -7.0]);
    }

    #[test]
    fn padding_never_wins_a_max() {
        let win = win2(2, 2, 3, 1, [1, 1, 1, 1], false);
        let y = pool_f32(&win, Pool::Max, &[-1.0, -2.0, -3.0, -4.0]);
        assert_eq!(y, vec![-1.0; 4]);
    }

    #[test]
    fn exclude_padding_changes_only_the_divisor() {
        // 3×3 of ones, k3 s2 p1 → 2×2; corners see 4 real values of a 9-tap window.
        let x = vec![1.0f32; 9];
        let win = win2(3, 3, 3, 2, [1, 1, 1, 1], false);
        assert_eq!(win.output_dims(2), vec![2, 2]);
        assert_eq!(pool_f32(&win, Pool::Avg { exclude_padding: true }, &x), vec![1.0; 4]);
        assert_eq!(
            pool_f32(&win, Pool::Avg { exclude_padding: false }, &x),
            vec![4.0 / 9.0; 4]
        );
        // Asymmetric padding [top 0, bottom 1, left 1, right 0] on 2×2 = [[1,2],[3,4]], k2 s1.
        let win = win2(2, 2, 2, 1, [0, 1, 1, 0], false);
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(pool_f32(&win, Pool::Max, &x), vec![3.0, 4.0, 3.0, 4.0]);
        assert_eq!(
            pool_f32(&win, Pool::Avg { exclude_padding: false }, &x),
            vec![1.0, 2.5, 0.75, 1.75]
        );
        assert_eq!(
            pool_f32(&win, Pool::Avg { exclude_padding: true }, &x),
            vec![2.0, 2.5, 3.0, 3.5]
        );
    }

    #[test]
    fn one_and_three_d_pooling() {
        let win = Window::new(&[6], &[3], &[3], &[1], "valid", &[], false).unwrap();
        assert_eq!(
            pool_f32(&win, Pool::Max, &[1.0, 3.0, 2.0, 0.0, -1.0, 4.0]),
            vec![3.0, 4.0]
        );
        let win = Window::new(&[2, 2, 2], &[2, 2, 2], &[1, 1, 1], &[1, 1, 1], "valid", &[], false).unwrap();
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        assert_eq!(pool_f32(&win, Pool::Avg { exclude_padding: false }, &x), vec![3.5]);
    }
}
