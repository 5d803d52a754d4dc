//! Comparisons (`equal`, `less`, ...), boolean connectives (`logical_*`) and `select`, with
//! NumPy broadcasting (coremltools iOS15 `elementwise_binary.py`, `elementwise_unary.py`,
//! `control_flow.py`).

use super::super::eval::OpCtx;
use super::super::tensor::{numel, strides, Buf, OpResult, Tensor};
use super::elementwise::broadcast_shape;
use super::OpFn;
use std::cmp::Ordering;
use std::sync::Arc;

pub(super) const OPS: &[(&str, OpFn)] = &[
    ("equal", equal),
    ("not_equal", not_equal),
    ("less", less),
    ("less_equal", less_equal),
    ("greater", greater),
    ("greater_equal", greater_equal),
    ("logical_and", logical_and),
    ("logical_or", logical_or),
    ("logical_xor", logical_xor),
    ("logical_not", logical_not),
    ("select", select),
];

/// For each element of `out`, the flat index of the element of an operand of `shape`.
fn source_indices(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let lead = out.len() - shape.len();
    let mut indices = Vec::with_capacity(numel(out));
    let mut coords = vec![0usize; out.len()];
    for _ in 0..numel(out) {
        let flat = (0..shape.len())
            .map(|i| if shape[i] == 1 { 0 } else { coords[i + lead] * own[i] })
            .sum();
        indices.push(flat);
        for axis in (0..out.len()).rev() {
            coords[axis] += 1;
            if coords[axis] < out[axis] {
                break;
            }
            coords[axis] = 0;
        }
    }
    indices
}

fn compare(ctx: &OpCtx, test: fn(Ordering) -> bool, nan: bool) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let y = ctx.get("y")?;
    if x.dtype != y.dtype {
        return Err(format!("x is {} but y is {}", x.type_string(), y.type_string()));
    }
    let shape = broadcast_shape(&x.shape, &y.shape)?;
    let (ix, iy) = (source_indices(&x.shape, &shape), source_indices(&y.shape, &shape));
    let pairs = ix.iter().zip(&iy);
    let values: Vec<bool> = match (&x.buf, &y.buf) {
        (Buf::F(a), Buf::F(b)) => pairs
            .map(|(&i, &j)| a[i].partial_cmp(&b[j]).map_or(nan, test))
            .collect(),
        (Buf::I(a), Buf::I(b)) => pairs.map(|(&i, &j)| test(a[i].cmp(&b[j]))).collect(),
        _ => return Err(format!("cannot compare {} values", x.type_string())),
    };
    Ok(vec![Tensor::bools(shape, values)])
}

fn equal(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    compare(ctx, Ordering::is_eq, false)
}

fn not_equal(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    compare(ctx, Ordering::is_ne, true)
}

fn less(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    compare(ctx, Ordering::is_lt, false)
}

fn less_equal(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    compare(ctx, Ordering::is_le, false)
}

fn greater(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    compare(ctx, Ordering::is_gt, false)
}

fn greater_equal(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    compare(ctx, Ordering::is_ge, false)
}

fn logical(ctx: &OpCtx, f: fn(bool, bool) -> bool) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let y = ctx.get("y")?;
    let (a, b) = (x.bool_values()?, y.bool_values()?);
    let shape = broadcast_shape(&x.shape, &y.shape)?;
    let (ix, iy) = (source_indices(&x.shape, &shape), source_indices(&y.shape, &shape));
    let values = ix.iter().zip(&iy).map(|(&i, &j)| f(a[i], b[j])).collect();
    Ok(vec![Tensor::bools(shape, values)])
}

fn logical_and(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    logical(ctx, |a, b| a && b)
}

fn logical_or(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    logical(ctx, |a, b| a || b)
}

fn logical_xor(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    logical(ctx, |a, b| a != b)
}

fn logical_not(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let values = x.bool_values()?.iter().map(|&b| !b).collect();
    Ok(vec![Tensor::bools(x.shape.clone(), values)])
}

/// `cond ? a : b`, all three broadcast together.
fn select(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let cond = ctx.get("cond")?;
    let a = ctx.get("a")?;
    let b = ctx.get("b")?;
    if a.dtype != b.dtype {
        return Err(format!("a is {} but b is {}", a.type_string(), b.type_string()));
    }
    let c = cond.bool_values()?;
    let shape = broadcast_shape(&broadcast_shape(&cond.shape, &a.shape)?, &b.shape)?;
    let ic = source_indices(&cond.shape, &shape);
    let ia = source_indices(&a.shape, &shape);
    let ib = source_indices(&b.shape, &shape);
    fn pick<T: Copy>(c: &[bool], a: &[T], b: &[T], ic: &[usize], ia: &[usize], ib: &[usize]) -> Vec<T> {
        (0..ic.len())
            .map(|k| if c[ic[k]] { a[ia[k]] } else { b[ib[k]] })
            .collect()
    }
    let buf = match (&a.buf, &b.buf) {
        (Buf::F(x), Buf::F(y)) => Buf::F(Arc::new(pick(c, x, y, &ic, &ia, &ib))),
        (Buf::I(x), Buf::I(y)) => Buf::I(Arc::new(pick(c, x, y, &ic, &ia, &ib))),
        (Buf::B(x), Buf::B(y)) => Buf::B(Arc::new(pick(c, x, y, &ic, &ia, &ib))),
        _ => return Err(format!("cannot select between {} values", a.type_string())),
    };
    Ok(vec![Tensor {
        dtype: a.dtype,
        shape,
        buf,
    }])
}
