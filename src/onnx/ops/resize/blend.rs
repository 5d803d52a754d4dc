//! Blending resizes as matrices: a separable resize is linear along each axis, so each resized
//! axis is one matmul with a constant `[output, input]` matrix of ONNX's tap weights (linear
//! or cubic kernels, antialiased or not, with or without `exclude_outside`), and
//! `tf_crop_and_resize`'s extrapolation value is added where a sample falls outside the input.

use super::{step, Axis, Coords};
use crate::onnx::ops::NodeCx;
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{BinaryOp, Op};

/// The interpolation kernel of a blending mode, as a function of the distance in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kernel {
    Linear,
    /// Keys' cubic convolution with coefficient `a` (`cubic_coeff_a`).
    Cubic(f64),
}

impl Kernel {
    /// The half-width of the kernel's support.
    pub(super) fn radius(self) -> f64 {
        match self {
            Kernel::Linear => 1.0,
            Kernel::Cubic(_) => 2.0,
        }
    }

    pub(super) fn weight(self, distance: f64) -> f64 {
        let d = distance.abs();
        match self {
            Kernel::Linear => (1.0 - d).clamp(0.0, 1.0),
            Kernel::Cubic(a) if d <= 1.0 => ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0,
            Kernel::Cubic(a) if d < 2.0 => ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a,
            Kernel::Cubic(_) => 0.0,
        }
    }
}

/// How a blending mode weighs the input around each sample position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Filter {
    pub kernel: Kernel,
    /// When downsampling, stretch the kernel by 1 / scale (a low-pass filter).
    pub antialias: bool,
    /// Give taps outside the input no weight (renormalising the others) instead of edge
    /// values.
    pub exclude_outside: bool,
}

impl Axis {
    /// The `[output, input]` matrix of ONNX's tap weights (its reference implementation's
    /// rule, in f64), and which outputs fall outside the region of interest (their rows are
    /// zero). Output `i` samples position `p`: taps `k` in `[k0, 1 − k0]` around the pixel
    /// `left` just before `p` (at `p − 1` when `p` is whole), weighted by the kernel at
    /// `s · (k − (p − left))`, where `s` is the scale when antialiasing a downsample and 1
    /// otherwise; taps past the edge read the edge pixel, or are dropped with
    /// `exclude_outside`.
    pub(super) fn interpolation_matrix(&self, coords: Coords, filter: Filter) -> (Vec<f64>, Vec<bool>) {
        let (n_in, n_out) = (self.input, self.output);
        let stretch = if filter.antialias { self.scale.min(1.0) } else { 1.0 };
        let first = (-filter.kernel.radius() / stretch).floor() as i64 + 1;
        let taps = (2 - 2 * first) as usize;
        let pad = (taps / 2) as i64;
        let mut matrix = vec![0.0; n_out * n_in];
        let mut outside = vec![false; n_out];
        for i in 0..n_out {
            let p = self.position(coords, i);
            if coords == Coords::TfCropAndResize && (p < 0.0 || p > (n_in - 1) as f64) {
                outside[i] = true;
                continue;
            }
            let (left, ratio) = if p == p.floor() {
                (p as i64 - 1, 1.0)
            } else {
                (p.floor() as i64, p - p.floor())
            };
            // The reference takes the `taps` pixels nearest `p` of the input padded by `pad`
            // edge pixels on each side: a window that stops at the padded ends.
            let window = (left + 1).clamp(0, n_in as i64) - pad;
            let mut weights: Vec<(i64, f64)> = (0..taps as i64)
                .map(|t| {
                    let k = first + t;
                    (window + t, filter.kernel.weight(stretch * (k as f64 - ratio)))
                })
                .collect();
            if filter.exclude_outside {
                for (index, w) in &mut weights {
                    if *index < 0 || *index >= n_in as i64 {
                        *w = 0.0;
                    }
                }
            }
            if filter.antialias || filter.exclude_outside {
                let total: f64 = weights.iter().map(|(_, w)| w).sum();
                if total != 0.0 {
                    weights.iter_mut().for_each(|(_, w)| *w /= total);
                }
            }
            for (index, w) in weights {
                let j = index.clamp(0, n_in as i64 - 1) as usize;
                matrix[i * n_in + j] += w;
            }
        }
        (matrix, outside)
    }
}

/// The largest interpolation matrix edgec builds for one axis, in elements (64 MiB of f32).
const MAX_MATRIX_ELEMENTS: usize = 1 << 24;

/// Resample each non-identity axis with one matmul by its constant interpolation matrix, then
/// add `extrapolation` where `tf_crop_and_resize` samples outside the input.
pub(super) fn by_matrices(
    cx: &mut NodeCx,
    x: ValueId,
    axes: &[Axis],
    coords: Coords,
    filter: Filter,
    extrapolation: f32,
) -> Result<Vec<ValueId>, String> {
    let x_ty = cx.ty(x).clone();
    if !x_ty.dtype.is_float() {
        return Err(format!("a blending resize needs a float input, got {x_ty}"));
    }
    let rank = axes.len();
    let mut matrices = Vec::new();
    let mut outside_by_axis = vec![Vec::new(); rank];
    for (a, axis) in axes.iter().enumerate().filter(|(_, axis)| !axis.is_identity()) {
        if axis.input * axis.output > MAX_MATRIX_ELEMENTS {
            return Err(format!(
                "resizing axis {a} from {} to {} needs a {}x{} interpolation matrix, more than edgec builds ({MAX_MATRIX_ELEMENTS} elements)",
                axis.input, axis.output, axis.output, axis.input
            ));
        }
        let (matrix, outside) = axis.interpolation_matrix(coords, filter);
        outside_by_axis[a] = outside;
        matrices.push((a, matrix));
    }
    let extrapolates = extrapolation != 0.0 && outside_by_axis.iter().flatten().any(|&o| o);
    let mut y = x;
    let count = matrices.len();
    for (n, (a, matrix)) in matrices.into_iter().enumerate() {
        let axis = &axes[a];
        let last = n + 1 == count && !extrapolates;
        let matrix: Vec<f32> = matrix.iter().map(|&w| w as f32).collect();
        let weights = cx.add_const_step(
            Tensor::from_f32(vec![axis.output, axis.input], &matrix).cast(x_ty.dtype),
            &format!("weights{a}"),
        );
        let shape = cx.ty(y).shape.clone();
        y = if a + 1 == rank {
            // [..., in] x [out, in]ᵀ.
            let product = Op::MatMul {
                transpose_a: false,
                transpose_b: true,
            };
            step(cx, last, product, vec![y, weights], &format!("resized{a}"))?
        } else {
            // [out, in] x [outer, in, inner], broadcast over the outer axes.
            let outer: usize = shape[..a].iter().product();
            let inner: usize = shape[a + 1..].iter().product();
            let fold = Op::Reshape {
                shape: vec![outer, axis.input, inner],
            };
            let folded = cx.add_step(fold, vec![y], &format!("folded{a}"))?;
            let product = Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            };
            let blended = cx.add_step(product, vec![weights, folded], &format!("blended{a}"))?;
            let mut unfolded = shape;
            unfolded[a] = axis.output;
            step(
                cx,
                last,
                Op::Reshape { shape: unfolded },
                vec![blended],
                &format!("resized{a}"),
            )?
        };
    }
    if !extrapolates {
        return Ok(vec![y]);
    }
    // The rows of outputs outside the region are zero: add the extrapolation value there.
    let fill_shape: Vec<usize> = outside_by_axis.iter().map(|o| o.len().max(1)).collect();
    let fill: Vec<f32> = (0..fill_shape.iter().product())
        .map(|flat: usize| {
            let mut rest = flat;
            let mut outside = false;
            for a in (0..rank).rev() {
                outside |= outside_by_axis[a].get(rest % fill_shape[a]).copied().unwrap_or(false);
                rest /= fill_shape[a];
            }
            if outside {
                extrapolation
            } else {
                0.0
            }
        })
        .collect();
    let fill = cx.add_const_step(Tensor::from_f32(fill_shape, &fill).cast(x_ty.dtype), "extrapolated");
    cx.add(Op::Binary(BinaryOp::Add), vec![y, fill])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::ops::resize::Coords;

    /// The reference's rule spelled out the slow way: the `n` taps are the `n` pixels nearest
    /// the position in the input padded with `ceil(n / 2)` edge pixels (ties to the smaller
    /// index), weighed in order by the coefficients for the position's fraction.
    fn slow_row(axis: &Axis, coords: Coords, filter: Filter, i: usize) -> Vec<f64> {
        let n_in = axis.input as i64;
        let p = axis.position(coords, i);
        let ratio = if p == p.floor() { 1.0 } else { p - p.floor() };
        let stretch = if filter.antialias { axis.scale.min(1.0) } else { 1.0 };
        let first = (-filter.kernel.radius() / stretch).floor() as i64 + 1;
        let mut coeffs: Vec<f64> = (first..=1 - first)
            .map(|k| filter.kernel.weight(stretch * (k as f64 - ratio)))
            .collect();
        let n = coeffs.len() as i64;
        let pad = (n + 1) / 2;
        let mut padded: Vec<i64> = (0..n_in + 2 * pad).collect();
        padded.sort_by(|&a, &b| {
            let da = (p + pad as f64 - a as f64).abs();
            let db = (p + pad as f64 - b as f64).abs();
            da.total_cmp(&db).then(a.cmp(&b))
        });
        let mut taps: Vec<i64> = padded[..n as usize].iter().map(|&t| t - pad).collect();
        taps.sort_unstable();
        if filter.exclude_outside {
            for (c, &t) in coeffs.iter_mut().zip(&taps) {
                if t < 0 || t >= n_in {
                    *c = 0.0;
                }
            }
        }
        if filter.antialias || filter.exclude_outside {
            let total: f64 = coeffs.iter().sum();
            coeffs.iter_mut().for_each(|c| *c /= total);
        }
        let mut row = vec![0.0; axis.input];
        for (c, t) in coeffs.iter().zip(taps) {
            row[t.clamp(0, n_in - 1) as usize] += c;
        }
        row
    }

    #[test]
    fn interpolation_matrices_take_the_reference_taps() {
        let kernels = [Kernel::Linear, Kernel::Cubic(-0.75), Kernel::Cubic(-0.5)];
        let coords = [
            Coords::HalfPixel,
            Coords::AlignCorners,
            Coords::Asymmetric,
            Coords::PytorchHalfPixel,
            Coords::HalfPixelSymmetric,
        ];
        let mut checked = 0;
        for (input, output) in [(1, 3), (2, 5), (4, 3), (5, 2), (7, 16), (16, 5), (9, 9)] {
            let axis = Axis {
                input,
                output,
                scale: output as f64 / input as f64,
                roi: (0.0, 1.0),
            };
            for kernel in kernels {
                for antialias in [false, true] {
                    for exclude_outside in [false, true] {
                        let filter = Filter {
                            kernel,
                            antialias,
                            exclude_outside,
                        };
                        for c in coords {
                            let (matrix, outside) = axis.interpolation_matrix(c, filter);
                            assert!(outside.iter().all(|&o| !o));
                            for i in 0..output {
                                let want = slow_row(&axis, c, filter, i);
                                let got = &matrix[i * input..(i + 1) * input];
                                for (g, w) in got.iter().zip(&want) {
                                    assert!(
                                        (g - w).abs() < 1e-12,
                                        "{input}->{output} {filter:?} {c:?} row {i}: {got:?} vs {want:?}"
                                    );
                                }
                                // Every row is a weighted average: it reproduces constants.
                                assert!((got.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{got:?}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn crop_and_resize_marks_samples_outside_the_input() {
        // The region [0.4, 1.2] of 5 pixels, sampled 4 times: positions 1.6, 2.67, 3.73, 4.8.
        let axis = Axis {
            input: 5,
            output: 4,
            scale: 0.8,
            roi: (0.4, 1.2),
        };
        let filter = Filter {
            kernel: Kernel::Linear,
            antialias: false,
            exclude_outside: false,
        };
        let (matrix, outside) = axis.interpolation_matrix(Coords::TfCropAndResize, filter);
        let span = 0.8 * 4.0;
        let positions: Vec<f64> = (0..4).map(|i| i as f64 * span / 3.0 + 1.6).collect();
        let expected: Vec<bool> = positions.iter().map(|&p| p > 4.0).collect();
        assert_eq!(outside, expected);
        assert_eq!(outside.iter().filter(|&&o| o).count(), 1);
        // Inside rows blend the two pixels around the position; outside rows are empty.
        for (i, &p) in positions.iter().enumerate() {
            let row = &matrix[i * 5..(i + 1) * 5];
            if outside[i] {
                assert!(row.iter().all(|&w| w == 0.0));
            } else {
                let left = p.floor() as usize;
                assert!((row[left] - (1.0 - (p - p.floor()))).abs() < 1e-9, "{row:?}");
                assert!((row[left + 1] - (p - p.floor())).abs() < 1e-9, "{row:?}");
            }
        }
    }
}
