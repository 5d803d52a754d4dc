//! The op registry: MIL op type → implementation.
//!
//! Each family file exports `OPS`, a table of `(op type, function)`. To add an op, write a
//! `fn(&OpCtx) -> OpResult<Vec<Tensor>>` in the right family (or a new file) and list it in
//! that table; the evaluator then checks the results against the types the program declares,
//! so an implementation only has to compute values.
//!
//! Weight-compression ops (`constexpr_*`, iOS16+/iOS18+) go in [`constexpr`]: their
//! parameters arrive through the same [`OpCtx`] accessors whether the package stores them as
//! attributes (iOS16/17) or as inline input bindings (iOS18).

mod attention;
mod constexpr;
mod conv;
mod conv_transpose;
mod elementwise;
mod linalg;
mod logic;
mod pool;
mod recurrent;
mod reduce;
mod resample;
mod scatter;
mod shape;
mod sort;

use super::eval::OpCtx;
use super::tensor::{OpResult, Tensor};
use std::collections::HashMap;
use std::sync::OnceLock;

pub(crate) type OpFn = fn(&OpCtx) -> OpResult<Vec<Tensor>>;

/// The implementation of MIL op `op_type`, if the interpreter has one.
pub(crate) fn lookup(op_type: &str) -> Option<OpFn> {
    static REGISTRY: OnceLock<HashMap<&'static str, OpFn>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            [
                attention::OPS,
                constexpr::OPS,
                conv::OPS,
                conv_transpose::OPS,
                elementwise::OPS,
                linalg::OPS,
                logic::OPS,
                pool::OPS,
                recurrent::OPS,
                reduce::OPS,
                resample::OPS,
                scatter::OPS,
                shape::OPS,
                sort::OPS,
            ]
            .iter()
            .flat_map(|t| t.iter().copied())
            .collect()
        })
        .get(op_type)
        .copied()
}

/// A non-negative axis for `axis` (which may count from the end) in a tensor of `rank`.
pub(crate) fn norm_axis(axis: i32, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    let a = i64::from(axis);
    let a = if a < 0 { a + r } else { a };
    if (0..r.max(1)).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} is out of range for rank {rank}"))
    }
}

/// Convert an int parameter to sizes, refusing negatives.
pub(crate) fn to_usizes(v: &[i32], what: &str) -> OpResult<Vec<usize>> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| format!("{what} must be non-negative, got {v:?}")))
        .collect()
}

/// Windowing parameters of conv and pooling, normalised to three spatial dims (a leading 1
/// is prepended for 1-D and 2-D ops) so one loop nest serves them all.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    /// Input spatial size (D, H, W).
    pub input: [usize; 3],
    pub kernel: [usize; 3],
    pub strides: [usize; 3],
    pub dilations: [usize; 3],
    /// Padding before each spatial axis.
    pub pad_before: [usize; 3],
    /// Padding after each spatial axis.
    pub pad_after: [usize; 3],
    pub output: [usize; 3],
}

impl Window {
    /// Resolve `pad_type`/`pad`/`ceil_mode` as coremltools' `spatial_dimensions_out_shape`
    /// and `aggregated_pad` do (ops/defs/_utils.py).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
        pad_type: &str,
        pad: &[usize],
        ceil_mode: bool,
    ) -> OpResult<Window> {
        let n = input.len();
        if !(1..=3).contains(&n) {
            return Err(format!("{n} spatial dimensions (1 to 3 are supported)"));
        }
        if kernel.len() != n || strides.len() != n || dilations.len() != n {
            return Err(format!(
                "kernel {kernel:?}, strides {strides:?} and dilations {dilations:?} must each have {n} values"
            ));
        }
        if kernel.contains(&0) || strides.contains(&0) || dilations.contains(&0) {
            return Err(format!(
                "kernel {kernel:?}, strides {strides:?} and dilations {dilations:?} must be positive"
            ));
        }
        let mut w = Window {
            input: [1; 3],
            kernel: [1; 3],
            strides: [1; 3],
            dilations: [1; 3],
            pad_before: [0; 3],
            pad_after: [0; 3],
            output: [1; 3],
        };
        let off = 3 - n;
        for i in 0..n {
            let eff = (kernel[i] - 1) * dilations[i] + 1;
            let (before, after) = match pad_type {
                "valid" => (0, 0),
                "custom" => {
                    if pad.len() != 2 * n {
                        return Err(format!("pad {pad:?} must have {} values", 2 * n));
                    }
                    (pad[2 * i], pad[2 * i + 1])
                }
                "same" | "same_lower" => {
                    let (inp, s) = (input[i], strides[i]);
                    let total = (s * inp.div_ceil(s) + eff).saturating_sub(inp + s);
                    let small = total / 2;
                    if pad_type == "same" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                }
                other => return Err(format!("unknown pad_type {other:?}")),
            };
            let padded = input[i] + before + after;
            if padded < eff {
                return Err(format!(
                    "the window ({eff}) is larger than the padded input ({padded}) on spatial axis {i}"
                ));
            }
            let span = padded - eff;
            let mut out = if ceil_mode {
                span.div_ceil(strides[i]) + 1
            } else {
                span / strides[i] + 1
            };
            // As PyTorch (and coremltools): the last window must start inside the input or
            // the leading padding, never only in the trailing padding.
            if ceil_mode && before + after > 0 && (out - 1) * strides[i] >= input[i] + before {
                out -= 1;
            }
            w.input[off + i] = input[i];
            w.kernel[off + i] = kernel[i];
            w.strides[off + i] = strides[i];
            w.dilations[off + i] = dilations[i];
            w.pad_before[off + i] = before;
            w.pad_after[off + i] = after;
            w.output[off + i] = out;
        }
        Ok(w)
    }

    /// The output spatial shape for `n` spatial dims (dropping the normalisation's leading 1s).
    pub(crate) fn output_dims(&self, n: usize) -> Vec<usize> {
        self.output[3 - n..].to_vec()
    }

    pub(crate) fn input_size(&self) -> usize {
        self.input.iter().product()
    }

    pub(crate) fn output_size(&self) -> usize {
        self.output.iter().product()
    }

    pub(crate) fn kernel_size(&self) -> usize {
        self.kernel.iter().product()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_shapes_follow_coremltools() {
        // ceil_mode: k3 s2 on 8 → floor 3, ceil 4 (maxpool_ceil).
        let w = Window::new(&[8, 10], &[3, 3], &[2, 2], &[1, 1], "custom", &[0, 0, 0, 0], true).unwrap();
        assert_eq!(w.output_dims(2), vec![4, 5]);
        // ceil_mode with padding: the last window would start in the trailing padding → dropped.
        // in 5, k2 s2 p1: span 5 → ceil 3+1=4, but (4-1)*2=6 >= 5+1 → 3.
        let w = Window::new(&[5], &[2], &[2], &[1], "custom", &[1, 1], true).unwrap();
        assert_eq!(w.output_dims(1), vec![3]);
        // same / same_lower on 7 with k4 s2: total pad 3.
        let w = Window::new(&[7], &[4], &[2], &[1], "same", &[], false).unwrap();
        assert_eq!((w.pad_before[2], w.pad_after[2], w.output[2]), (1, 2, 4));
        let w = Window::new(&[7], &[4], &[2], &[1], "same_lower", &[], false).unwrap();
        assert_eq!((w.pad_before[2], w.pad_after[2], w.output[2]), (2, 1, 4));
        // Dilation widens the window: k3 d2 → 5 on 9 with pad 2 each side → 9.
        let w = Window::new(&[9], &[3], &[1], &[2], "custom", &[2, 2], false).unwrap();
        assert_eq!(w.output[2], 9);
    }
}
