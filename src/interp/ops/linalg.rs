//! Matrix ops: `matmul` (NumPy batch broadcasting, `transpose_x/y`, 1-D promotion) and
//! `linear` (`x · weightᵀ + bias`), plus the shared sgemm helpers that `conv` uses too.
//!
//! All float products go through `matrixmultiply::sgemm`, which takes arbitrary row and column
//! strides, so transposes cost nothing; rayon splits big products across threads. int32 matmul
//! (MIL allows it) is a plain loop with wrapping arithmetic, as int32 hardware computes it.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, strides, DType, OpResult, Tensor};
use super::elementwise::broadcast_shape;
use super::OpFn;
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[("matmul", matmul), ("linear", linear)];

/// A read-only matrix view: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T = f32> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub(crate) fn rows(data: &'a [T], cols: usize) -> Mat<'a, T> {
        Mat { data, rs: cols, cs: 1 }
    }

    /// The transpose of a row-major `rows × cols` matrix (so `cols × rows`).
    pub(crate) fn transposed(data: &'a [T], cols: usize) -> Mat<'a, T> {
        Mat { data, rs: 1, cs: cols }
    }

    /// A row-major `cols`-wide matrix `offset` elements into `data`, transposed if asked.
    fn at(data: &'a [T], offset: usize, cols: usize, transpose: bool) -> Mat<'a, T> {
        let data = &data[offset.min(data.len())..];
        if transpose {
            Mat::transposed(data, cols)
        } else {
            Mat::rows(data, cols)
        }
    }

    /// Does an `r × c` view fit in `data`?
    fn fits(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.rs + (c - 1) * self.cs < self.data.len()
    }

    /// The view starting `rows` rows further down.
    fn skip_rows(&self, rows: usize) -> Mat<'a, T> {
        Mat {
            data: &self.data[(rows * self.rs).min(self.data.len())..],
            ..*self
        }
    }

    fn skip_cols(&self, cols: usize) -> Mat<'a, T> {
        Mat {
            data: &self.data[(cols * self.cs).min(self.data.len())..],
            ..*self
        }
    }
}

/// `c = a · b` for `a` m×k and `b` k×n; `c` is m×n, row-major, overwritten. Single-threaded.
pub(crate) fn gemm(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32]) -> OpResult<()> {
    if !a.fits(m, k) || !b.fits(k, n) || c.len() < m * n {
        return Err(format!("internal error: gemm operands too small for {m}x{k} · {k}x{n}"));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return Ok(());
    }
    // SAFETY: the checks above guarantee every (i, p) of a, (p, j) of b and (i, j) of c that
    // sgemm touches is inside its slice; with beta = 0, c is written and never read.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    Ok(())
}

/// `c = a · b` in int32 with wrapping arithmetic; shapes as for [`gemm`].
fn gemm_i32(m: usize, k: usize, n: usize, a: Mat<i32>, b: Mat<i32>, c: &mut [i32]) -> OpResult<()> {
    if !a.fits(m, k) || !b.fits(k, n) || c.len() < m * n {
        return Err(format!(
            "internal error: matmul operands too small for {m}x{k} · {k}x{n}"
        ));
    }
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).fold(0i32, |acc, p| {
                acc.wrapping_add(a.data[i * a.rs + p * a.cs].wrapping_mul(b.data[p * b.rs + j * b.cs]))
            });
        }
    }
    Ok(())
}

/// [`gemm`], split across the rayon pool when the product is big enough to pay for it:
/// by rows of `c` when there are many, else by column blocks computed into scratch buffers.
pub(crate) fn gemm_par(m: usize, k: usize, n: usize, a: Mat, b: Mat, c: &mut [f32]) -> OpResult<()> {
    let threads = rayon::current_num_threads();
    let work = m * n * k;
    if threads <= 1 || work < (1 << 18) {
        return gemm(m, k, n, a, b, c);
    }
    if m >= 4 * threads {
        let rows = m.div_ceil(4 * threads);
        return c[..m * n]
            .par_chunks_mut(rows * n)
            .enumerate()
            .try_for_each(|(i, chunk)| gemm(chunk.len() / n, k, n, a.skip_rows(i * rows), b, chunk));
    }
    let cols = n.div_ceil(4 * threads).max(16);
    let blocks: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(cols))
        .into_par_iter()
        .map(|blk| {
            let j0 = blk * cols;
            let nc = cols.min(n - j0);
            let mut tmp = vec![0f32; m * nc];
            gemm(m, k, nc, a, b.skip_cols(j0), &mut tmp).map(|_| (j0, tmp))
        })
        .collect::<OpResult<_>>()?;
    for (j0, tmp) in blocks {
        let nc = tmp.len() / m.max(1);
        for i in 0..m {
            c[i * n + j0..i * n + j0 + nc].copy_from_slice(&tmp[i * nc..(i + 1) * nc]);
        }
    }
    Ok(())
}

fn matmul(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let y = ctx.get("y")?;
    let tx = ctx.bool_or("transpose_x", false)?;
    let ty = ctx.bool_or("transpose_y", false)?;
    if x.dtype != y.dtype {
        return Err(format!("x is {} but y is {}", x.type_string(), y.type_string()));
    }
    if x.rank() == 0 || y.rank() == 0 {
        return Err("matmul operands must have rank 1 or more".into());
    }
    if x.rank() == 1 && tx {
        return Err("x is rank 1, but transpose_x is true".into());
    }
    // Promote 1-D operands: x [K] → [1, K], y [K] → [K, 1]; the inserted axis is removed after.
    let mut xshape = x.shape.clone();
    let mut yshape = y.shape.clone();
    if x.rank() == 1 {
        xshape.insert(0, 1);
    }
    if y.rank() == 1 {
        yshape.push(1);
    }
    let (xr, yr) = (xshape.len(), yshape.len());
    let (x0, x1) = (xshape[xr - 2], xshape[xr - 1]);
    let (y0, y1) = (yshape[yr - 2], yshape[yr - 1]);
    let (m, kx) = if tx { (x1, x0) } else { (x0, x1) };
    let (ky, n) = if ty && y.rank() > 1 { (y1, y0) } else { (y0, y1) };
    if kx != ky {
        return Err(format!(
            "inner dimensions differ: x {:?} (transpose_x {tx}), y {:?} (transpose_y {ty})",
            x.shape, y.shape
        ));
    }
    let k = kx;
    let xb = &xshape[..xr - 2];
    let yb = &yshape[..yr - 2];
    let batch = broadcast_shape(xb, yb)?;
    let nb = numel(&batch);
    // Matrix-index strides of each operand's batch axes, 0 where broadcast.
    let bstrides = |own: &[usize]| -> Vec<usize> {
        let s = strides(own);
        let lead = batch.len() - own.len();
        (0..batch.len())
            .map(|i| if i < lead || own[i - lead] == 1 { 0 } else { s[i - lead] })
            .collect()
    };
    let (sxb, syb) = (bstrides(xb), bstrides(yb));
    let bst = strides(&batch);
    // Element offsets of batch b's matrices in x and y.
    let offsets = |b: usize| -> (usize, usize) {
        let at = |own: &[usize]| {
            (0..batch.len())
                .map(|d| (b / bst[d] % batch[d]) * own[d])
                .sum::<usize>()
        };
        (at(&sxb) * x0 * x1, at(&syb) * y0 * y1)
    };
    let ty_applies = ty && y.rank() > 1;
    let mut shape = batch.clone();
    if x.rank() > 1 {
        shape.push(m);
    }
    if y.rank() > 1 {
        shape.push(n);
    }
    if x.dtype == DType::Int32 {
        let (xs, ys) = (x.ints()?, y.ints()?);
        let mut out = vec![0i32; nb * m * n];
        for (b, c) in out.chunks_mut((m * n).max(1)).enumerate().take(nb) {
            let (xo, yo) = offsets(b);
            gemm_i32(m, k, n, Mat::at(xs, xo, x1, tx), Mat::at(ys, yo, y1, ty_applies), c)?;
        }
        return Ok(vec![Tensor::int(x.dtype, shape, out)]);
    }
    let (xs, ys) = (x.floats()?, y.floats()?);
    let x_mat = |b: usize| Mat::at(xs, offsets(b).0, x1, tx);
    let y_mat = |b: usize| Mat::at(ys, offsets(b).1, y1, ty_applies);
    let mut out = vec![0f32; nb * m * n];
    if nb == 1 {
        gemm_par(m, k, n, x_mat(0), y_mat(0), &mut out)?;
    } else if m * n > 0 {
        out.par_chunks_mut(m * n)
            .enumerate()
            .try_for_each(|(b, c)| gemm(m, k, n, x_mat(b), y_mat(b), c))?;
    }
    Ok(vec![Tensor::float(x.dtype, shape, out)])
}

/// `x · weightᵀ + bias` for x `[*D, D_in]` (rank 1 to 3), weight `[D_out, D_in]`.
fn linear(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let w = ctx.get("weight")?;
    if x.dtype != w.dtype {
        return Err(format!("x is {} but weight is {}", x.type_string(), w.type_string()));
    }
    if !(1..=3).contains(&x.rank()) || w.rank() != 2 {
        return Err(format!(
            "x must have rank 1 to 3 and weight rank 2; got {} and {}",
            x.type_string(),
            w.type_string()
        ));
    }
    let (dout, din) = (w.shape[0], w.shape[1]);
    if x.shape[x.rank() - 1] != din {
        return Err(format!("x {:?} does not match weight {:?}", x.shape, w.shape));
    }
    let bias = match ctx.opt("bias")? {
        Some(b) => {
            let v = b.floats()?.to_vec();
            if v.len() != dout {
                return Err(format!("bias has {} values, weight has {dout} rows", v.len()));
            }
            v
        }
        None => vec![0.0; dout],
    };
    let xs = x.floats()?;
    let m = xs.len().checked_div(din).unwrap_or(0);
    let mut out = vec![0f32; m * dout];
    gemm_par(
        m,
        din,
        dout,
        Mat::rows(xs, din),
        Mat::transposed(w.floats()?, din),
        &mut out,
    )?;
    if dout > 0 {
        for row in out.chunks_mut(dout) {
            for (o, b) in row.iter_mut().zip(&bias) {
                *o += b;
            }
        }
    }
    let mut shape = x.shape.clone();
    let last = shape.len() - 1;
    shape[last] = dout;
    Ok(vec![Tensor::float(x.dtype, shape, out)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: Mat, b: Mat) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs])
                    .sum();
            }
        }
        c
    }

    #[test]
    fn parallel_gemm_matches_naive() {
        for &(m, k, n) in &[(1, 300, 1000), (70, 90, 60), (3, 5, 7), (64, 64, 64), (1, 1, 1)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.0).collect();
            let (am, bm) = (Mat::rows(&a, k), Mat::transposed(&b, k)); // b read as (k×n)ᵀ of n×k
            let want = naive(m, k, n, am, bm);
            let mut got = vec![f32::NAN; m * n];
            gemm_par(m, k, n, am, bm, &mut got).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{m}x{k}x{n}: {g} vs {w}");
            }
        }
    }
}
