//! Reductions (`reduce_mean/sum/max/min/prod/l2_norm`, `reduce_argmax/argmin`, coremltools
//! iOS15 `reduction.py`), the running sum `cumsum` (`tensor_operation.py`), `softmax`
//! (`activation.py`), `layer_norm` and `local_response_norm` (`normalization.py`).
//!
//! Sums accumulate in f64 so the reference stays accurate however long the reduced axis is.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, strides, Buf, DType, OpResult, Tensor};
use super::{norm_axis, OpFn};
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[
    ("reduce_mean", reduce_mean),
    ("reduce_sum", reduce_sum),
    ("reduce_max", reduce_max),
    ("reduce_min", reduce_min),
    ("reduce_prod", reduce_prod),
    ("reduce_l2_norm", reduce_l2_norm),
    ("reduce_argmax", reduce_argmax),
    ("reduce_argmin", reduce_argmin),
    ("cumsum", cumsum),
    ("softmax", softmax),
    ("layer_norm", layer_norm),
    ("local_response_norm", local_response_norm),
];

#[derive(Clone, Copy)]
pub(crate) enum Reduce {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
    /// `sqrt(sum(x²))`.
    L2,
}

fn reduce_mean(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce(ctx, Reduce::Mean)
}

fn reduce_sum(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce(ctx, Reduce::Sum)
}

fn reduce_max(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce(ctx, Reduce::Max)
}

fn reduce_min(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce(ctx, Reduce::Min)
}

fn reduce_prod(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce(ctx, Reduce::Prod)
}

fn reduce_l2_norm(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce(ctx, Reduce::L2)
}

/// The `axes` parameter, normalised; absent means every axis.
fn axes_or_all(ctx: &OpCtx, rank: usize) -> OpResult<Vec<usize>> {
    match ctx.opt("axes")? {
        Some(t) => t.ints()?.iter().map(|&a| norm_axis(a, rank)).collect(),
        None => Ok((0..rank).collect()),
    }
}

/// `axes` absent means every axis; `keep_dims` (default false) keeps reduced axes as 1s.
fn reduce(ctx: &OpCtx, kind: Reduce) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let rank = x.rank();
    let axes = axes_or_all(ctx, rank)?;
    let keep_dims = ctx.bool_or("keep_dims", false)?;
    let mut reduced = vec![false; rank];
    for &a in &axes {
        if std::mem::replace(&mut reduced[a], true) {
            return Err(format!("axis {a} is listed twice"));
        }
    }
    let shape_of = |kept: Vec<usize>| -> Vec<usize> {
        if keep_dims {
            kept
        } else {
            (0..rank).filter(|&a| !reduced[a]).map(|a| x.shape[a]).collect()
        }
    };
    if x.dtype == DType::Int32 {
        let (out, kept) = reduce_i32(x.ints()?, &x.shape, &reduced, kind)?;
        return Ok(vec![Tensor::int(x.dtype, shape_of(kept), out)]);
    }
    let (out, kept) = reduce_f32(x.floats()?, &x.shape, &reduced, kind);
    Ok(vec![Tensor::float(x.dtype, shape_of(kept), out)])
}

/// The int32 reductions MIL has (sum, prod, max, min), exact in i64 and wrapped to int32.
fn reduce_i32(x: &[i32], shape: &[usize], reduced: &[bool], kind: Reduce) -> OpResult<(Vec<i32>, Vec<usize>)> {
    let kept: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let (init, step): (i64, fn(i64, i64) -> i64) = match kind {
        Reduce::Sum => (0, i64::wrapping_add),
        Reduce::Prod => (1, i64::wrapping_mul),
        Reduce::Max => (i64::MIN, i64::max),
        Reduce::Min => (i64::MAX, i64::min),
        Reduce::Mean | Reduce::L2 => return Err("this reduction takes a float tensor, got int32".into()),
    };
    let (in_strides, out_strides) = (strides(shape), strides(&kept));
    let mut acc = vec![init; numel(&kept)];
    for (i, &v) in x.iter().enumerate() {
        let slot: usize = (0..shape.len())
            .filter(|&d| !reduced[d])
            .map(|d| i / in_strides[d] % shape[d] * out_strides[d])
            .sum();
        acc[slot] = step(acc[slot], i64::from(v));
    }
    Ok((acc.into_iter().map(|a| a as i32).collect(), kept))
}

/// Reduce `x` over the axes flagged in `reduced`; returns the values and the keep-dims shape.
pub(crate) fn reduce_f32(x: &[f32], shape: &[usize], reduced: &[bool], kind: Reduce) -> (Vec<f32>, Vec<usize>) {
    let kept: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let n_out = numel(&kept);
    let count = numel(shape) / n_out.max(1);
    let init = match kind {
        Reduce::Mean | Reduce::Sum | Reduce::L2 => 0.0,
        Reduce::Prod => 1.0,
        Reduce::Max => f64::NEG_INFINITY,
        Reduce::Min => f64::INFINITY,
    };
    let step = |acc: f64, v: f32| -> f64 {
        let v = f64::from(v);
        match kind {
            Reduce::Mean | Reduce::Sum => acc + v,
            Reduce::Prod => acc * v,
            Reduce::L2 => acc + v * v,
            Reduce::Max => acc.max(v),
            Reduce::Min => acc.min(v),
        }
    };
    let finish = |acc: f64| -> f32 {
        match kind {
            Reduce::Mean if count > 0 => (acc / count as f64) as f32,
            Reduce::Mean => f32::NAN,
            Reduce::L2 => acc.sqrt() as f32,
            _ => acc as f32,
        }
    };
    let mut out = vec![0f32; n_out];
    if n_out == 0 {
        return (out, kept);
    }
    let first = reduced.iter().position(|&r| r);
    let last = reduced.iter().rposition(|&r| r);
    match (first, last) {
        (None, _) | (_, None) => out.copy_from_slice(x),
        // One contiguous block of reduced axes: outer × reduced × inner.
        (Some(f), Some(l)) if reduced[f..=l].iter().all(|&r| r) => {
            let inner = numel(&shape[l + 1..]);
            let red = numel(&shape[f..=l]);
            out.par_chunks_mut(inner).enumerate().for_each(|(o, dst)| {
                let mut acc = vec![init; inner];
                let base = o * red * inner;
                for r in 0..red {
                    let row = &x[base + r * inner..base + (r + 1) * inner];
                    for (a, &v) in acc.iter_mut().zip(row) {
                        *a = step(*a, v);
                    }
                }
                for (d, a) in dst.iter_mut().zip(acc) {
                    *d = finish(a);
                }
            });
        }
        // Scattered axes: walk the input once, mapping each element to its output slot.
        _ => {
            let mut acc = vec![init; n_out];
            let out_strides: Vec<usize> = strides(&kept)
                .into_iter()
                .zip(reduced)
                .map(|(s, &r)| if r { 0 } else { s })
                .collect();
            let mut idx = vec![0usize; shape.len()];
            for &v in x {
                let o: usize = idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum();
                acc[o] = step(acc[o], v);
                for d in (0..shape.len()).rev() {
                    idx[d] += 1;
                    if idx[d] < shape[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
            for (d, a) in out.iter_mut().zip(acc) {
                *d = finish(a);
            }
        }
    }
    (out, kept)
}

/// Running sum along `axis` (default 0); `exclusive` starts each sum at 0 instead of at its own
/// element, `reverse` runs from the end of the axis. Floats sum in f64, int32 wraps.
fn cumsum(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let axis = norm_axis(ctx.int_or("axis", 0)?, x.rank())?;
    let exclusive = ctx.bool_or("exclusive", false)?;
    let reverse = ctx.bool_or("reverse", false)?;
    let n = x.shape[axis];
    let inner = numel(&x.shape[axis + 1..]);
    let outer = numel(&x.shape[..axis]);
    // Flat positions of one line along the axis, in summation order.
    let line = |o: usize, i: usize| {
        (0..n).map(move |k| {
            let k = if reverse { n - 1 - k } else { k };
            (o * n + k) * inner + i
        })
    };
    let buf = match &x.buf {
        Buf::F(v) => {
            let mut out = vec![0f32; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = 0f64;
                    for p in line(o, i) {
                        let before = acc;
                        acc += f64::from(v[p]);
                        out[p] = if exclusive { before } else { acc } as f32;
                    }
                }
            }
            Buf::F(out.into())
        }
        Buf::I(v) if x.dtype == DType::Int32 => {
            let mut out = vec![0i32; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = 0i32;
                    for p in line(o, i) {
                        let before = acc;
                        acc = acc.wrapping_add(v[p]);
                        out[p] = if exclusive { before } else { acc };
                    }
                }
            }
            Buf::I(out.into())
        }
        _ => return Err(format!("cumsum takes fp16, fp32 or int32, not {}", x.type_string())),
    };
    Ok(vec![Tensor {
        dtype: x.dtype,
        shape: x.shape.clone(),
        buf,
    }])
}

/// `exp(x - max) / sum(exp(x - max))` along `axis` (default -1).
fn softmax(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let axis = norm_axis(ctx.int_or("axis", -1)?, x.rank())?;
    let xs = x.floats()?;
    let n = x.shape.get(axis).copied().unwrap_or(1);
    let inner = numel(&x.shape[(axis + 1).min(x.rank())..]);
    let mut out = vec![0f32; xs.len()];
    if n * inner > 0 {
        out.par_chunks_mut(n * inner)
            .zip(xs.par_chunks(n * inner))
            .for_each(|(o, src)| {
                for i in 0..inner {
                    let max = (0..n).map(|k| src[k * inner + i]).fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f64;
                    for k in 0..n {
                        let e = (src[k * inner + i] - max).exp();
                        o[k * inner + i] = e;
                        sum += f64::from(e);
                    }
                    let inv = (1.0 / sum) as f32;
                    for k in 0..n {
                        o[k * inner + i] *= inv;
                    }
                }
            });
    }
    Ok(vec![Tensor::float(x.dtype, x.shape.clone(), out)])
}

fn reduce_argmax(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce_arg(ctx, |candidate, best| candidate > best)
}

fn reduce_argmin(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    reduce_arg(ctx, |candidate, best| candidate < best)
}

/// Index of the first extreme element along `axis` (default -1) as int32; `better(a, b)` says
/// whether `a` beats the best so far.
fn reduce_arg(ctx: &OpCtx, better: fn(f32, f32) -> bool) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let axis = norm_axis(ctx.int_or("axis", -1)?, x.rank())?;
    let keep_dims = ctx.bool_or("keep_dims", false)?;
    let values: Vec<f32> = match x.floats() {
        Ok(v) => v.to_vec(),
        Err(_) => x.ints()?.iter().map(|&i| i as f32).collect(),
    };
    let n = x.shape[axis];
    let inner = numel(&x.shape[axis + 1..]);
    let outer = numel(&x.shape[..axis]);
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| values[(o * n + k) * inner + i];
            let mut best = 0;
            for k in 1..n {
                if better(at(k), at(best)) {
                    best = k;
                }
            }
            out.push(best as i32);
        }
    }
    let mut shape = x.shape.clone();
    if keep_dims {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    Ok(vec![Tensor::int(DType::Int32, shape, out)])
}

/// `(x - mean) / sqrt(var + epsilon) * gamma + beta` with mean and (biased) variance over
/// `axes`; gamma and beta are shaped like those axes, and default to 1 and 0.
fn layer_norm(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let rank = x.rank();
    let axes = axes_or_all(ctx, rank)?;
    let epsilon = ctx.float_or("epsilon", 1e-5)?;
    let mut reduced = vec![false; rank];
    for &a in &axes {
        reduced[a] = true;
    }
    let norm_shape: Vec<usize> = axes.iter().map(|&a| x.shape[a]).collect();
    let param = |name: &str| -> OpResult<Option<Vec<f32>>> {
        match ctx.opt(name)? {
            Some(t) if t.shape == norm_shape => Ok(Some(t.floats()?.to_vec())),
            Some(t) => Err(format!("{name} {} must have shape {norm_shape:?}", t.type_string())),
            None => Ok(None),
        }
    };
    let (gamma, beta) = (param("gamma")?, param("beta")?);
    let xs = x.floats()?;
    let (mean, kept) = reduce_f32(xs, &x.shape, &reduced, Reduce::Mean);
    // Flat index of each element's statistics slot and of its gamma/beta entry.
    let kept_strides: Vec<usize> = strides(&kept)
        .into_iter()
        .zip(&reduced)
        .map(|(s, &r)| if r { 0 } else { s })
        .collect();
    let norm_strides = strides(&norm_shape);
    let mut param_strides = vec![0; rank];
    for (k, &a) in axes.iter().enumerate() {
        param_strides[a] = norm_strides[k];
    }
    let x_strides = strides(&x.shape);
    let slot = |i: usize, st: &[usize]| -> usize { (0..rank).map(|d| (i / x_strides[d] % x.shape[d]) * st[d]).sum() };
    let centered: Vec<f32> = (0..xs.len()).map(|i| xs[i] - mean[slot(i, &kept_strides)]).collect();
    let squares: Vec<f32> = centered.iter().map(|c| c * c).collect();
    let (var, _) = reduce_f32(&squares, &x.shape, &reduced, Reduce::Mean);
    let out = (0..xs.len())
        .map(|i| {
            let p = slot(i, &param_strides);
            let y = centered[i] / (var[slot(i, &kept_strides)] + epsilon).sqrt();
            y * gamma.as_ref().map_or(1.0, |g| g[p]) + beta.as_ref().map_or(0.0, |b| b[p])
        })
        .collect();
    Ok(vec![Tensor::float(x.dtype, x.shape.clone(), out)])
}

/// `x / (k + alpha/size · Σ x²)^beta` over the `size` channels (axis 1) centred on each.
fn local_response_norm(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    if !(3..=4).contains(&x.rank()) {
        return Err(format!(
            "local_response_norm takes rank 3 or 4, got {}",
            x.type_string()
        ));
    }
    let size = ctx.int_or("size", 0)?;
    if size <= 0 {
        return Err(format!("local_response_norm size must be positive, got {size}"));
    }
    let (alpha, beta, k) = (
        ctx.float_or("alpha", 1e-4)?,
        ctx.float_or("beta", 0.75)?,
        ctx.float_or("k", 1.0)?,
    );
    let (channels, inner) = (x.shape[1], x.shape[2..].iter().product::<usize>());
    let half = (size as usize - 1) / 2;
    let xs = x.floats()?;
    let mut out = vec![0f32; xs.len()];
    out.par_chunks_mut(channels * inner.max(1))
        .zip(xs.par_chunks(channels * inner.max(1)))
        .for_each(|(out, xs)| {
            for c in 0..channels {
                let window = c.saturating_sub(half)..(c + half + 1).min(channels);
                for i in 0..inner {
                    let sum: f64 = window.clone().map(|j| f64::from(xs[j * inner + i]).powi(2)).sum();
                    let denominator = (f64::from(k) + f64::from(alpha) / f64::from(size) * sum).powf(f64::from(beta));
                    out[c * inner + i] = (f64::from(xs[c * inner + i]) / denominator) as f32;
                }
            }
        });
    Ok(vec![Tensor::float(x.dtype, x.shape.clone(), out)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_over_contiguous_and_scattered_axes() {
        // x[a][b][c] = 100a + 10b + c, shape [2, 3, 4].
        let shape = [2, 3, 4];
        let x: Vec<f32> = (0..24)
            .map(|i| (100 * (i / 12) + 10 * (i / 4 % 3) + i % 4) as f32)
            .collect();
        let (v, kept) = reduce_f32(&x, &shape, &[false, true, true], Reduce::Mean);
        assert_eq!((v, kept), (vec![11.5, 111.5], vec![2, 1, 1]));
        let (v, _) = reduce_f32(&x, &shape, &[true, false, true], Reduce::Sum);
        assert_eq!(v, vec![412.0, 492.0, 572.0]);
        let (v, _) = reduce_f32(&x, &shape, &[true, false, false], Reduce::Max);
        assert_eq!(v[..4], [100.0, 101.0, 102.0, 103.0]);
        let (v, _) = reduce_f32(&x, &shape, &[true, true, true], Reduce::Min);
        assert_eq!(v, vec![0.0]);
        let (v, _) = reduce_f32(&[1.0, 2.0, 3.0, 4.0, -5.0, 6.0], &[2, 3], &[false, true], Reduce::Prod);
        assert_eq!(v, vec![6.0, -120.0]);
        let (v, _) = reduce_f32(&[3.0, 4.0, 6.0, 8.0], &[2, 2], &[true, false], Reduce::L2);
        assert_eq!(v, vec![45f32.sqrt(), 80f32.sqrt()]);
    }
}
