//! Elementwise ops: activations, unary math (`log`, `erf`, `floor`, ...), `clip`, `cast`,
//! `identity`, the NumPy-broadcasting binary ops (`pow` included), and `batch_norm` (a per-channel affine map at inference).
//!
//! Semantics from coremltools' iOS15 `activation.py`, `elementwise_unary.py`,
//! `elementwise_binary.py` and `normalization.py`.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, strides, Buf, DType, OpResult, Tensor};
use super::OpFn;
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[
    ("identity", identity),
    ("relu", relu),
    ("relu6", relu6),
    ("sigmoid", sigmoid),
    ("sigmoid_hard", sigmoid_hard),
    ("tanh", tanh),
    ("exp", exp),
    ("sqrt", sqrt),
    ("abs", abs),
    ("log", log),
    ("erf", erf),
    ("floor", floor),
    ("ceil", ceil),
    ("round", round),
    ("sign", sign),
    ("sin", sin),
    ("cos", cos),
    ("tan", tan),
    ("asin", asin),
    ("acos", acos),
    ("atan", atan),
    ("sinh", sinh),
    ("cosh", cosh),
    ("atanh", atanh),
    ("softplus", softplus),
    ("elu", elu),
    ("leaky_relu", leaky_relu),
    ("gelu", gelu),
    ("silu", silu),
    ("clip", clip),
    ("cast", cast),
    ("add", add),
    ("sub", sub),
    ("mul", mul),
    ("real_div", real_div),
    ("maximum", maximum),
    ("minimum", minimum),
    ("pow", pow),
    ("batch_norm", batch_norm),
];

/// Below this many elements, threading costs more than it saves.
const PAR_MIN: usize = 1 << 14;

fn identity(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    Ok(vec![ctx.get("x")?])
}

/// Apply `f` to every element of float input `x`; the result keeps `x`'s dtype and shape.
fn unary(ctx: &OpCtx, f: impl Fn(f32) -> f32 + Sync) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let xs = x.floats()?;
    let mut out = vec![0f32; xs.len()];
    out.par_iter_mut()
        .zip(xs.par_iter())
        .with_min_len(PAR_MIN)
        .for_each(|(o, &v)| *o = f(v));
    Ok(vec![Tensor::float(x.dtype, x.shape.clone(), out)])
}

fn relu(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| if v > 0.0 { v } else { 0.0 })
}

fn relu6(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| v.clamp(0.0, 6.0))
}

fn sigmoid(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| 1.0 / (1.0 + (-v).exp()))
}

/// `min(max(alpha * x + beta, 0), 1)`, alpha 0.2 and beta 0.5 by default.
fn sigmoid_hard(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let alpha = ctx.float_or("alpha", 0.2)?;
    let beta = ctx.float_or("beta", 0.5)?;
    unary(ctx, move |v| (alpha * v + beta).clamp(0.0, 1.0))
}

fn tanh(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::tanh)
}

fn exp(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::exp)
}

fn sqrt(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::sqrt)
}

/// fp16, fp32 or int32.
fn abs(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    if let Buf::I(v) = &x.buf {
        return Ok(vec![Tensor::int(
            x.dtype,
            x.shape.clone(),
            v.iter().map(|i| i.wrapping_abs()).collect(),
        )]);
    }
    unary(ctx, f32::abs)
}

/// `log(x + epsilon)`; epsilon defaults to 1e-45 in x's type (0 in fp16).
fn log(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let default = if ctx.get("x")?.dtype == DType::Fp16 { 0.0 } else { 1e-45 };
    let eps = ctx.float_or("epsilon", default)?;
    unary(ctx, move |v| (v + eps).ln())
}

fn erf(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| erf_f64(f64::from(v)) as f32)
}

fn floor(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::floor)
}

fn ceil(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::ceil)
}

/// Ties to even, as coremltools' value inference (`np.round`) and the MIL docs ("0.5 is rounded
/// to 0").
fn round(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::round_ties_even)
}

/// -1, 0 or 1; NaN stays NaN (`np.sign`).
fn sign(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| {
        if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            v
        }
    })
}

fn sin(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::sin)
}

fn cos(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::cos)
}

fn tan(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::tan)
}

fn asin(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::asin)
}

fn acos(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::acos)
}

fn atan(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::atan)
}

fn sinh(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::sinh)
}

fn cosh(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::cosh)
}

fn atanh(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, f32::atanh)
}

/// `log(1 + e^x)`, in the overflow-free form coremltools' value inference uses.
fn softplus(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| (-v.abs()).exp().ln_1p() + v.max(0.0))
}

/// `x` if `x > 0`, else `alpha * (e^x - 1)`; alpha is required.
fn elu(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let alpha = ctx.float("alpha")?;
    unary(ctx, move |v| if v > 0.0 { v } else { alpha * v.exp_m1() })
}

/// `x` if `x >= 0`, else `alpha * x`; alpha is required.
fn leaky_relu(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let alpha = ctx.float("alpha")?;
    unary(ctx, move |v| if v >= 0.0 { v } else { alpha * v })
}

/// `x * sigmoid(x)`.
fn silu(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    unary(ctx, |v| v / (1.0 + (-v).exp()))
}

/// `mode`: EXACT (default), TANH_APPROXIMATION or SIGMOID_APPROXIMATION.
fn gelu(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    match ctx.string_or("mode", "EXACT")?.as_str() {
        "EXACT" => unary(ctx, |v| {
            let x = f64::from(v);
            (0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2))) as f32
        }),
        "TANH_APPROXIMATION" => unary(ctx, |v| {
            let x = f64::from(v);
            let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
            (0.5 * x * (1.0 + inner.tanh())) as f32
        }),
        "SIGMOID_APPROXIMATION" => unary(ctx, |v| v / (1.0 + (-1.702 * v).exp())),
        other => Err(format!("unknown gelu mode {other:?}")),
    }
}

/// The error function: its Maclaurin series for |x| < 2.5 (alternating terms, converged to
/// f64 precision well before 60 terms), else `1 - erfc` with Numerical Recipes' Chebyshev
/// `erfc` (relative error below 1.2e-7, and erfc(2.5) < 4.1e-4).
pub(crate) fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let z = x.abs();
    if z < 2.5 {
        let x2 = x * x;
        let mut term = x; // (-1)^n x^(2n+1) / n!
        let mut sum = x;
        for n in 1..60 {
            term *= -x2 / f64::from(n);
            let add = term / f64::from(2 * n + 1);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return sum * 2.0 / std::f64::consts::PI.sqrt();
    }
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let erfc = t * (-z * z + poly).exp();
    (1.0 - erfc).copysign(x)
}

/// `min(max(x, alpha), beta)`; both bounds are required.
fn clip(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let alpha = ctx.float("alpha")?;
    let beta = ctx.float("beta")?;
    // Not f32::clamp: it panics when alpha > beta, which a malformed package could say.
    unary(ctx, move |v| v.max(alpha).min(beta))
}

fn cast(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let name = ctx.string("dtype")?;
    let to = DType::from_name(&name).ok_or_else(|| format!("cannot cast to {name:?}"))?;
    let shape = x.shape.clone();
    let out = match (&x.buf, to) {
        // Float to float shares nothing: an fp16 result may be rounded in place later.
        (Buf::F(v), DType::Fp16 | DType::Fp32) => Tensor::float(to, shape, v.to_vec()),
        // As NumPy's astype: truncate toward zero (saturating, NaN → 0).
        (Buf::F(v), DType::Int32) => Tensor::int(to, shape, v.iter().map(|&f| f as i32).collect()),
        (Buf::F(v), DType::Bool) => Tensor::bools(shape, v.iter().map(|&f| f != 0.0).collect()),
        (Buf::I(v), DType::Fp16 | DType::Fp32) => Tensor::float(to, shape, v.iter().map(|&i| i as f32).collect()),
        (Buf::I(v), DType::Int32) => Tensor::int(to, shape, v.to_vec()),
        (Buf::I(v), DType::Bool) => Tensor::bools(shape, v.iter().map(|&i| i != 0).collect()),
        (Buf::B(v), DType::Fp16 | DType::Fp32) => {
            Tensor::float(to, shape, v.iter().map(|&b| f32::from(u8::from(b))).collect())
        }
        (Buf::B(v), DType::Int32) => Tensor::int(to, shape, v.iter().map(|&b| i32::from(b)).collect()),
        (Buf::B(v), DType::Bool) => Tensor::bools(shape, v.to_vec()),
        _ => return Err(format!("cannot cast {} to {name}", x.type_string())),
    };
    Ok(vec![out])
}

/// NumPy broadcasting of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            match (da, db) {
                _ if da == db => Ok(da),
                (1, d) | (d, 1) => Ok(d),
                _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
            }
        })
        .collect()
}

/// Element strides of an operand of `shape` read as `out` (0 along broadcast axes).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < lead || shape[i - lead] == 1 {
                0
            } else {
                own[i - lead]
            }
        })
        .collect()
}

/// `f(x, y)` with NumPy broadcasting. Adjacent axes that both operands walk contiguously are
/// merged first, so e.g. `[1,C,H,W] + [1,C,1,1]` runs as `C` rows of `H*W`.
pub(crate) fn broadcast_map<T: Copy + Send + Sync + Default>(
    xs: &[T],
    xshape: &[usize],
    ys: &[T],
    yshape: &[usize],
    f: impl Fn(T, T) -> T + Sync,
) -> OpResult<(Vec<usize>, Vec<T>)> {
    let shape = broadcast_shape(xshape, yshape)?;
    let n = numel(&shape);
    let mut out = vec![T::default(); n];
    if n == 0 {
        return Ok((shape, out));
    }
    if xshape == yshape {
        out.par_iter_mut()
            .zip(xs.par_iter().zip(ys.par_iter()))
            .with_min_len(PAR_MIN)
            .for_each(|(o, (&a, &b))| *o = f(a, b));
        return Ok((shape, out));
    }
    if ys.len() == 1 && xs.len() == n {
        let b = ys[0];
        out.par_iter_mut()
            .zip(xs.par_iter())
            .with_min_len(PAR_MIN)
            .for_each(|(o, &a)| *o = f(a, b));
        return Ok((shape, out));
    }
    if xs.len() == 1 && ys.len() == n {
        let a = xs[0];
        out.par_iter_mut()
            .zip(ys.par_iter())
            .with_min_len(PAR_MIN)
            .for_each(|(o, &b)| *o = f(a, b));
        return Ok((shape, out));
    }
    // Coalesce axes, dropping size-1 axes of the output.
    let sx = broadcast_strides(xshape, &shape);
    let sy = broadcast_strides(yshape, &shape);
    let mut dims: Vec<(usize, usize, usize)> = Vec::new(); // (size, x stride, y stride)
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let Some(last) = dims.last_mut() {
            if last.1 == sx[i] * shape[i] && last.2 == sy[i] * shape[i] {
                *last = (last.0 * shape[i], sx[i], sy[i]);
                continue;
            }
        }
        dims.push((shape[i], sx[i], sy[i]));
    }
    let (inner, ix, iy) = dims.pop().unwrap_or((1, 0, 0));
    let outer = dims;
    out.par_chunks_mut(inner)
        .with_min_len((PAR_MIN / inner).max(1))
        .enumerate()
        .for_each(|(row, o)| {
            let (mut ox, mut oy) = (0, 0);
            let mut r = row;
            for &(size, stx, sty) in outer.iter().rev() {
                let i = r % size;
                r /= size;
                ox += i * stx;
                oy += i * sty;
            }
            for (j, slot) in o.iter_mut().enumerate() {
                *slot = f(xs[ox + j * ix], ys[oy + j * iy]);
            }
        });
    Ok((shape, out))
}

/// A binary op over floats (and ints, when `int_f` is given).
fn binary(
    ctx: &OpCtx,
    f: impl Fn(f32, f32) -> f32 + Sync,
    int_f: Option<fn(i32, i32) -> i32>,
) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let y = ctx.get("y")?;
    if x.dtype != y.dtype {
        return Err(format!("x is {} but y is {}", x.type_string(), y.type_string()));
    }
    match (&x.buf, &y.buf, int_f) {
        (Buf::F(a), Buf::F(b), _) => {
            let (shape, v) = broadcast_map(a, &x.shape, b, &y.shape, f)?;
            Ok(vec![Tensor::float(x.dtype, shape, v)])
        }
        (Buf::I(a), Buf::I(b), Some(g)) => {
            let (shape, v) = broadcast_map(a, &x.shape, b, &y.shape, g)?;
            Ok(vec![Tensor::int(x.dtype, shape, v)])
        }
        _ => Err(format!("unsupported operand type {}", x.type_string())),
    }
}

fn add(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, |a, b| a + b, Some(i32::wrapping_add))
}

fn sub(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, |a, b| a - b, Some(i32::wrapping_sub))
}

fn mul(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, |a, b| a * b, Some(i32::wrapping_mul))
}

fn real_div(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, |a, b| a / b, None)
}

fn maximum(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, f32::max, Some(i32::max))
}

fn minimum(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, f32::min, Some(i32::min))
}

/// `x ^ y`; int32 too (negative exponents of integers give 0 unless the base is ±1).
fn pow(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    binary(ctx, f32::powf, Some(int_pow))
}

fn int_pow(x: i32, y: i32) -> i32 {
    match u32::try_from(y) {
        Ok(e) => x.wrapping_pow(e),
        Err(_) => match x {
            1 => 1,
            -1 if y % 2 == 0 => 1,
            -1 => -1,
            _ => 0,
        },
    }
}

/// `(x - mean) / sqrt(variance + epsilon) * gamma + beta` over axis 1 of a rank 3-5 `x`;
/// gamma defaults to 1, beta to 0, epsilon to 1e-5.
fn batch_norm(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    if !(3..=5).contains(&x.rank()) {
        return Err(format!("x must have rank 3 to 5, got {}", x.type_string()));
    }
    let c = x.shape[1];
    // `default` None: the parameter is required.
    let param = |name: &str, default: Option<f32>| -> OpResult<Vec<f32>> {
        match (ctx.opt(name)?, default) {
            (Some(t), _) => {
                let v = t.floats()?;
                if v.len() != c {
                    return Err(format!("{name} has {} values, x has {c} channels", v.len()));
                }
                Ok(v.to_vec())
            }
            (None, Some(d)) => Ok(vec![d; c]),
            (None, None) => Err(format!("required parameter {name} is missing")),
        }
    };
    let mean = param("mean", None)?;
    let var = param("variance", None)?;
    let gamma = param("gamma", Some(1.0))?;
    let beta = param("beta", Some(0.0))?;
    let eps = ctx.float_or("epsilon", 1e-5)?;
    let inv: Vec<f32> = var.iter().map(|&v| 1.0 / (v + eps).sqrt()).collect();
    let xs = x.floats()?;
    let plane = numel(&x.shape[2..]);
    let mut out = vec![0f32; xs.len()];
    if plane > 0 {
        out.par_chunks_mut(plane)
            .zip(xs.par_chunks(plane))
            .enumerate()
            .for_each(|(i, (o, src))| {
                let ch = i % c;
                let (m, s, g, b) = (mean[ch], inv[ch], gamma[ch], beta[ch]);
                for (o, &v) in o.iter_mut().zip(src) {
                    *o = (v - m) * s * g + b;
                }
            });
    }
    Ok(vec![Tensor::float(x.dtype, x.shape.clone(), out)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: index arithmetic per element, no coalescing.
    fn naive(x: &[f32], xs: &[usize], y: &[f32], ys: &[usize]) -> (Vec<usize>, Vec<f32>) {
        let shape = broadcast_shape(xs, ys).unwrap();
        let (bx, by) = (broadcast_strides(xs, &shape), broadcast_strides(ys, &shape));
        let st = strides(&shape);
        let v = (0..numel(&shape))
            .map(|flat| {
                let (mut ox, mut oy) = (0, 0);
                for d in 0..shape.len() {
                    let i = flat / st[d] % shape[d];
                    ox += i * bx[d];
                    oy += i * by[d];
                }
                x[ox] - 2.0 * y[oy]
            })
            .collect();
        (shape, v)
    }

    #[test]
    fn broadcasting_matches_a_naive_reference() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[1, 4, 5, 5], &[1, 1, 5, 5]),
            (&[2, 3, 4], &[3, 1]),
            (&[5], &[2, 3, 5]),
            (&[3, 1, 4], &[1, 5, 1]),
            (&[], &[2, 2]),
            (&[1, 8, 3, 3], &[8, 1, 1]),
            (&[2, 1], &[2, 1]),
        ];
        for &(a, b) in cases {
            let x: Vec<f32> = (0..numel(a)).map(|i| i as f32 * 0.5 - 3.0).collect();
            let y: Vec<f32> = (0..numel(b)).map(|i| (i * i) as f32 * 0.25).collect();
            let got = broadcast_map(&x, a, &y, b, |p, q| p - 2.0 * q).unwrap();
            assert_eq!(got, naive(&x, a, &y, b), "{a:?} vs {b:?}");
            let got = broadcast_map(&y, b, &x, a, |p, q| q - 2.0 * p).unwrap();
            assert_eq!(got, naive(&x, a, &y, b), "{b:?} vs {a:?}");
        }
        assert!(broadcast_shape(&[2, 3], &[4, 3]).is_err());
    }

    #[test]
    fn erf_matches_known_values() {
        // erf(x) to 16 digits (Abramowitz & Stegun table 7.1 / mpmath).
        let known = [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (2.49, 0.9995707121322661),
            (2.5, 0.999593047982555),
            (3.0, 0.9999779095030014),
            (6.0, 1.0),
        ];
        for (x, e) in known {
            assert!((erf_f64(x) - e).abs() < 1e-9, "erf({x}) = {} vs {e}", erf_f64(x));
            assert!((erf_f64(-x) + e).abs() < 1e-9, "erf(-{x})");
        }
    }
}
