//! Sampling grids: AffineGrid, a constant grid of normalised coordinates times each batch
//! entry's affine matrix (one matmul).

use super::{Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::Op;

pub const OPS: &[(&str, Importer)] = &[("AffineGrid", affine_grid)];

/// The normalised coordinates of `size` positions in [-1, 1]: pixel centres, or with
/// `align_corners` the first and last pixels at ±1.
fn coordinates(size: usize, align_corners: bool) -> Vec<f32> {
    (0..size)
        .map(|i| {
            if align_corners {
                if size == 1 {
                    0.0
                } else {
                    -1.0 + 2.0 * i as f32 / (size - 1) as f32
                }
            } else {
                (2 * i + 1) as f32 / size as f32 - 1.0
            }
        })
        .collect()
}

/// AffineGrid: theta `[N, 2, 3]` (or `[N, 3, 4]`) and a constant size `[N, C, H, W]` (or
/// `[N, C, D, H, W]`) give the grid `[N, H, W, 2]` (or `[N, D, H, W, 3]`): every position's
/// homogeneous coordinates `(x, y[, z], 1)`, x along the last axis, times theta transposed.
fn affine_grid(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (theta, dtype) = cx.float_input(0)?;
    let size = super::positive(&cx.const_ints(1, "size")?, "size")?;
    let align_corners = cx.attr_int("align_corners", 0)? != 0;
    let spatial = match size.len() {
        4 | 5 => &size[2..],
        _ => return Err(format!("size {size:?} must be [N, C, H, W] or [N, C, D, H, W]")),
    };
    let dims = spatial.len();
    let expected = vec![size[0], dims, dims + 1];
    if cx.ty(theta).shape != expected {
        return Err(format!("theta {} must have shape {expected:?}", cx.ty(theta)));
    }
    // Positions in row-major order over (D,) H, W; coordinates listed x first.
    let axes: Vec<Vec<f32>> = spatial.iter().map(|&s| coordinates(s, align_corners)).collect();
    let positions: usize = spatial.iter().product();
    let mut base = Vec::with_capacity(positions * (dims + 1));
    for p in 0..positions {
        let mut rest = p;
        let mut index = vec![0; dims];
        for a in (0..dims).rev() {
            index[a] = rest % spatial[a];
            rest /= spatial[a];
        }
        base.extend((0..dims).rev().map(|a| axes[a][index[a]]));
        base.push(1.0);
    }
    let base = cx.add_const_step(
        Tensor::from_f32(vec![positions, dims + 1], &base).cast(dtype),
        "base_grid",
    );
    let product = Op::MatMul {
        transpose_a: false,
        transpose_b: true,
    };
    let grid = cx.add_step(product, vec![base, theta], "grid_flat")?;
    let mut shape = vec![size[0]];
    shape.extend(spatial);
    shape.push(dims);
    cx.add(Op::Reshape { shape }, vec![grid])
}
