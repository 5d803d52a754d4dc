//! `topk` (coremltools iOS15/16/17 `tensor_operation.py`): values and int32 indices.
//!
//! MIL does not say how ties are ordered; this reference puts the lower index first, as ONNX
//! requires, so a package whose result depends on tie order is checked against ONNX's.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, Buf, DType, OpResult, Tensor};
use super::{norm_axis, OpFn};
use std::cmp::Ordering;

pub(super) const OPS: &[(&str, OpFn)] = &[("topk", topk)];

/// The `k` (default 1) largest elements along `axis` (default -1), or the smallest when
/// `ascending`; sorted (iOS16 `sort=false` only frees the order, so sorting is still right).
fn topk(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let axis = norm_axis(ctx.int_or("axis", -1)?, x.rank())?;
    let ascending = ctx.bool_or("ascending", false)?;
    let return_indices = ctx.bool_or("return_indices", true)?;
    let indices_dtype = ctx.string_or("output_indices_dtype", "int32")?;
    if indices_dtype != "int32" {
        return Err(format!(
            "output_indices_dtype {indices_dtype:?} is not supported (only int32)"
        ));
    }
    let n = x.shape[axis];
    let k = match ctx.int_or("k", 1)? {
        // iOS17: -1 selects every element.
        -1 => n,
        k => usize::try_from(k)
            .ok()
            .filter(|&k| k <= n)
            .ok_or_else(|| format!("k={k} is out of range for an axis of size {n}"))?,
    };
    let values: Vec<f64> = match &x.buf {
        Buf::F(v) => v.iter().map(|&f| f64::from(f)).collect(),
        Buf::I(v) => v.iter().map(|&i| f64::from(i)).collect(),
        _ => return Err(format!("topk takes numbers, not {}", x.type_string())),
    };
    let inner = numel(&x.shape[axis + 1..]);
    let outer = numel(&x.shape[..axis]);
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut lines = vec![0usize; outer * inner * k];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| values[(o * n + j) * inner + i];
            order.clear();
            order.extend(0..n);
            // NaN ranks above every number, as in NumPy's sort (and so ONNX's reference).
            let by_value = |a: &usize, b: &usize| {
                let (va, vb) = (at(*a), at(*b));
                let ord = match (va.is_nan(), vb.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => va.partial_cmp(&vb).unwrap_or(Ordering::Equal),
                };
                if ascending {
                    ord
                } else {
                    ord.reverse()
                }
            };
            // A stable sort keeps equal values in index order.
            order.sort_by(by_value);
            for (r, &j) in order[..k].iter().enumerate() {
                lines[(o * k + r) * inner + i] = j;
            }
        }
    }
    // Flat source position of each output element.
    let picked: Vec<usize> = lines
        .iter()
        .enumerate()
        .map(|(slot, &j)| (slot / (k * inner) * n + j) * inner + slot % inner)
        .collect();
    let mut shape = x.shape.clone();
    shape[axis] = k;
    let values = Tensor {
        dtype: x.dtype,
        shape: shape.clone(),
        buf: match &x.buf {
            Buf::F(v) => Buf::F(picked.iter().map(|&p| v[p]).collect::<Vec<_>>().into()),
            Buf::I(v) => Buf::I(picked.iter().map(|&p| v[p]).collect::<Vec<_>>().into()),
            _ => unreachable!("checked above"),
        },
    };
    if !return_indices {
        return Ok(vec![values]);
    }
    let indices = lines.iter().map(|&j| j as i32).collect();
    Ok(vec![values, Tensor::int(DType::Int32, shape, indices)])
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{self, bool_scalar, floats, ints};
    use super::super::super::tensor::Tensor;

    fn run(params: Vec<(&str, Tensor)>) -> Vec<Tensor> {
        test_support::run_op_all("topk", params).unwrap()
    }

    #[test]
    fn ties_keep_index_order() {
        let x = floats(&[2, 4], &[1.0, 3.0, 3.0, 2.0, 5.0, 5.0, 5.0, 0.0]);
        let out = run(vec![("x", x.clone()), ("k", ints(&[3]))]);
        assert_eq!(out[0].floats().unwrap(), &[3.0, 3.0, 2.0, 5.0, 5.0, 5.0]);
        assert_eq!(out[1].ints().unwrap(), &[1, 2, 3, 0, 1, 2]);
        let out = run(vec![
            ("x", x),
            ("k", ints(&[2])),
            ("axis", ints(&[0])),
            ("ascending", bool_scalar(true)),
        ]);
        assert_eq!(out[0].floats().unwrap(), &[1.0, 3.0, 3.0, 0.0, 5.0, 5.0, 5.0, 2.0]);
        assert_eq!(out[1].ints().unwrap(), &[0, 0, 0, 1, 1, 1, 1, 0]);
    }
}
