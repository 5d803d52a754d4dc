//! Data-movement ops: `concat`, `reshape`, `transpose`, `pad`, `slice_by_index`, `tile`,
//! `gather`, `gather_along_axis` (coremltools iOS15 `tensor_operation.py`,
//! `tensor_transformation.py` and `scatter_gather.py`).

use super::super::eval::OpCtx;
use super::super::tensor::{numel, strides, Buf, OpResult, Tensor};
use super::{norm_axis, to_usizes, OpFn};
use rayon::prelude::*;
use std::sync::Arc;

pub(super) const OPS: &[(&str, OpFn)] = &[
    ("concat", concat),
    ("reshape", reshape),
    ("transpose", transpose),
    ("pad", pad),
    ("slice_by_index", slice_by_index),
    ("tile", tile),
    ("gather", gather),
    ("gather_along_axis", gather_along_axis),
];

/// Gather `n` elements of any buffer type through `src(i)` → index into the source.
pub(super) fn take(buf: &Buf, n: usize, src: impl Fn(usize) -> Option<usize> + Sync, fill: f32) -> Buf {
    fn go<T: Copy + Send + Sync>(v: &[T], n: usize, src: &(impl Fn(usize) -> Option<usize> + Sync), fill: T) -> Vec<T> {
        (0..n)
            .into_par_iter()
            .with_min_len(1 << 14)
            .map(|i| src(i).map_or(fill, |j| v[j]))
            .collect()
    }
    match buf {
        Buf::F(v) => Buf::F(Arc::new(go(v, n, &src, fill))),
        Buf::I(v) => Buf::I(Arc::new(go(v, n, &src, fill as i32))),
        Buf::B(v) => Buf::B(Arc::new(go(v, n, &src, fill != 0.0))),
        Buf::S(v) => Buf::S(Arc::new(
            (0..n)
                .map(|i| src(i).map_or_else(String::new, |j| v[j].clone()))
                .collect(),
        )),
    }
}

/// Join `values` along `axis`; `interleave` alternates slices of equal-sized inputs.
fn concat(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let values = ctx.tuple("values")?;
    let first = values.first().ok_or("concat of no values")?;
    let rank = first.rank();
    let axis = norm_axis(ctx.int_or("axis", 0)?, rank)?;
    let interleave = ctx.bool_or("interleave", false)?;
    for v in &values {
        let same_other_dims = v.rank() == rank && (0..rank).all(|d| d == axis || v.shape[d] == first.shape[d]);
        if v.dtype != first.dtype || !same_other_dims {
            return Err(format!(
                "cannot concatenate {} and {} on axis {axis}",
                first.type_string(),
                v.type_string()
            ));
        }
        if interleave && v.shape != first.shape {
            return Err("interleave needs inputs of equal shape".into());
        }
    }
    let inner = numel(&first.shape[axis + 1..]);
    let outer = numel(&first.shape[..axis]);
    let total_axis: usize = values.iter().map(|v| v.shape[axis]).sum();
    let mut shape = first.shape.clone();
    shape[axis] = total_axis;
    // Output position → (input, index): within one outer slice, walk the inputs in order
    // (or, interleaved, one axis step of each input in turn).
    let mut starts = Vec::with_capacity(values.len());
    let mut acc = 0;
    for v in &values {
        starts.push(acc);
        acc += v.shape[axis];
    }
    let k = values.len();
    let locate = |i: usize| -> (usize, usize) {
        let o = i / (total_axis * inner);
        let rest = i % (total_axis * inner);
        let (a, j) = (rest / inner, rest % inner);
        let (which, a_in) = if interleave {
            (a % k, a / k)
        } else {
            let w = starts.partition_point(|&s| s <= a) - 1;
            (w, a - starts[w])
        };
        let len = values[which].shape[axis];
        (which, (o * len + a_in) * inner + j)
    };
    let n = outer * total_axis * inner;
    // Every output element from its source: parallel, since concat moves whole activations.
    fn pick<T: Copy + Send + Sync>(
        srcs: &[&[T]],
        n: usize,
        locate: &(dyn Fn(usize) -> (usize, usize) + Sync),
    ) -> Vec<T> {
        (0..n)
            .into_par_iter()
            .with_min_len(1 << 14)
            .map(|i| {
                let (w, j) = locate(i);
                srcs[w][j]
            })
            .collect()
    }
    let buf = match &first.buf {
        Buf::F(_) => {
            let srcs = values.iter().map(|v| v.floats()).collect::<OpResult<Vec<_>>>()?;
            Buf::F(Arc::new(pick(&srcs, n, &locate)))
        }
        Buf::I(_) => {
            let srcs = values.iter().map(|v| v.ints()).collect::<OpResult<Vec<_>>>()?;
            Buf::I(Arc::new(pick(&srcs, n, &locate)))
        }
        Buf::B(_) => {
            let srcs = values.iter().map(|v| v.bool_values()).collect::<OpResult<Vec<_>>>()?;
            Buf::B(Arc::new(pick(&srcs, n, &locate)))
        }
        _ => return Err(format!("cannot concatenate {} values", first.type_string())),
    };
    Ok(vec![Tensor {
        dtype: first.dtype,
        shape,
        buf,
    }])
}

/// `shape` may hold one -1 (inferred) and, when it has `x`'s rank, 0s (copy `x`'s dim).
fn reshape(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let spec = ctx.get("shape")?.ints()?.to_vec();
    let mut shape = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            0 if spec.len() == x.rank() => shape.push(x.shape[i]),
            d if d > 0 => shape.push(d as usize),
            _ => return Err(format!("invalid shape {spec:?}")),
        }
    }
    let known = numel(&shape);
    if let Some(i) = infer {
        if known == 0 || x.len() % known != 0 {
            return Err(format!("cannot reshape {} to {spec:?}", x.type_string()));
        }
        shape[i] = x.len() / known;
    }
    if numel(&shape) != x.len() {
        return Err(format!("cannot reshape {} to {spec:?}", x.type_string()));
    }
    Ok(vec![x.reshaped(shape)])
}

fn transpose(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let perm = ctx
        .get("perm")?
        .ints()?
        .iter()
        .map(|&p| norm_axis(p, x.rank()))
        .collect::<OpResult<Vec<_>>>()?;
    let mut seen = vec![false; x.rank()];
    if perm.len() != x.rank() || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
        return Err(format!("perm {perm:?} is not a permutation of {} axes", x.rank()));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let in_strides = strides(&x.shape);
    let src_strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let out_strides = strides(&shape);
    let n = x.len();
    let buf = take(
        &x.buf,
        n,
        |i| {
            Some(
                (0..shape.len())
                    .map(|d| (i / out_strides[d] % shape[d]) * src_strides[d])
                    .sum(),
            )
        },
        0.0,
    );
    Ok(vec![Tensor {
        dtype: x.dtype,
        shape,
        buf,
    }])
}

/// Pad the last `pad.len() / 2` axes: `pad[2i]` before and `pad[2i+1]` after the i-th of them.
fn pad(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let pads = to_usizes(ctx.get("pad")?.ints()?, "pad")?;
    let mode = ctx.string_or("mode", "constant")?;
    let value = ctx.float_or("constant_val", 0.0)?;
    if pads.len() % 2 != 0 || pads.len() / 2 > x.rank() {
        return Err(format!("pad {pads:?} does not fit a rank-{} input", x.rank()));
    }
    let first = x.rank() - pads.len() / 2;
    let mut before = vec![0; x.rank()];
    let mut after = vec![0; x.rank()];
    for i in 0..pads.len() / 2 {
        before[first + i] = pads[2 * i];
        after[first + i] = pads[2 * i + 1];
    }
    let shape: Vec<usize> = (0..x.rank())
        .map(|d| x.shape[d].checked_add(before[d])?.checked_add(after[d]))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("pad {pads:?} overflows the shape of {}", x.type_string()))?;
    ctx.expect_output_shape(0, &shape)?;
    // Per axis, output index → source index (None: the constant).
    let maps = (0..x.rank())
        .map(|d| {
            let (n, b) = (x.shape[d] as isize, before[d] as isize);
            let limit = match mode.as_str() {
                "constant" => usize::MAX,
                "reflect" => x.shape[d].saturating_sub(1),
                "replicate" => x.shape[d],
                other => return Err(format!("unknown pad mode {other:?}")),
            };
            if before[d].max(after[d]) > limit || (mode != "constant" && n == 0 && before[d] + after[d] > 0) {
                return Err(format!(
                    "{mode} padding of {} and {} exceeds what axis {d} of size {n} allows",
                    before[d], after[d]
                ));
            }
            Ok((0..shape[d] as isize)
                .map(|o| {
                    let i = o - b;
                    match mode.as_str() {
                        "constant" => (0..n).contains(&i).then_some(i as usize),
                        "reflect" => Some(if i < 0 {
                            (-i) as usize
                        } else if i >= n {
                            (2 * (n - 1) - i) as usize
                        } else {
                            i as usize
                        }),
                        _ => Some(i.clamp(0, n - 1) as usize),
                    }
                })
                .collect::<Vec<Option<usize>>>())
        })
        .collect::<OpResult<Vec<_>>>()?;
    let in_strides = strides(&x.shape);
    let out_strides = strides(&shape);
    let n = numel(&shape);
    let buf = take(
        &x.buf,
        n,
        |i| {
            let mut off = 0;
            for d in 0..shape.len() {
                off += maps[d][i / out_strides[d] % shape[d]]? * in_strides[d];
            }
            Some(off)
        },
        value,
    );
    Ok(vec![Tensor {
        dtype: x.dtype,
        shape,
        buf,
    }])
}

/// A tensor of `shape` whose element `i` is `x`'s element `src(coords of i)`.
fn take_by_coords(x: &Tensor, shape: Vec<usize>, src: impl Fn(&[usize]) -> usize + Sync) -> Tensor {
    let out_strides = strides(&shape);
    let n = numel(&shape);
    let buf = take(
        &x.buf,
        n,
        |i| {
            let coords: Vec<usize> = (0..shape.len()).map(|d| i / out_strides[d] % shape[d]).collect();
            Some(src(&coords))
        },
        0.0,
    );
    Tensor {
        dtype: x.dtype,
        shape,
        buf,
    }
}

/// Python slicing `x[begin:end:stride]` per axis; masks mean "from the start" / "to the end"
/// (in the stride's direction), negative bounds count from the end, `squeeze_mask` drops an
/// axis (taking its `begin`).
fn slice_by_index(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let rank = x.rank();
    let begin = ctx.get("begin")?.ints()?.to_vec();
    let end = ctx.get("end")?.ints()?.to_vec();
    let stride = ctx.ints_or("stride", || vec![1; rank])?;
    let mask = |name: &str| -> OpResult<Vec<bool>> {
        match ctx.opt(name)? {
            Some(t) => Ok(t.bool_values()?.to_vec()),
            None => Ok(vec![false; rank]),
        }
    };
    let (begin_mask, end_mask, squeeze_mask) = (mask("begin_mask")?, mask("end_mask")?, mask("squeeze_mask")?);
    let lists = [
        begin.len(),
        end.len(),
        stride.len(),
        begin_mask.len(),
        end_mask.len(),
        squeeze_mask.len(),
    ];
    if lists.iter().any(|&l| l != rank) {
        return Err(format!("slice parameters must have {rank} entries each"));
    }
    let mut starts = Vec::with_capacity(rank);
    let mut shape = Vec::with_capacity(rank);
    for i in 0..rank {
        let d = x.shape[i] as i64;
        let s = i64::from(stride[i]);
        if s == 0 {
            return Err("stride must not be zero".into());
        }
        let wrap = |v: i32| {
            let v = i64::from(v);
            if v < 0 {
                v + d
            } else {
                v
            }
        };
        let (lo, hi) = if s > 0 { (0, d) } else { (-1, d - 1) };
        let b = if begin_mask[i] {
            if s > 0 {
                0
            } else {
                d - 1
            }
        } else {
            wrap(begin[i]).clamp(lo, hi)
        };
        if squeeze_mask[i] {
            if !(0..d).contains(&b) {
                return Err(format!("squeezed index {} is out of range on axis {i}", begin[i]));
            }
            starts.push((b, 1, false));
            continue;
        }
        let e = if end_mask[i] {
            if s > 0 {
                d
            } else {
                -1
            }
        } else {
            wrap(end[i]).clamp(lo, hi)
        };
        let len = if s > 0 {
            (e - b + s - 1).div_euclid(s)
        } else {
            (b - e - s - 1).div_euclid(-s)
        };
        starts.push((b, s, true));
        shape.push(len.max(0) as usize);
    }
    let in_strides = strides(&x.shape);
    let kept: Vec<(usize, i64, i64)> = starts
        .iter()
        .enumerate()
        .map(|(axis, &(b, s, keep))| (axis, b, if keep { s } else { 0 }))
        .collect();
    let out = take_by_coords(&x, shape, |coords| {
        let mut k = 0;
        let mut flat = 0i64;
        for &(axis, b, s) in &kept {
            let index = if s == 0 {
                b
            } else {
                k += 1;
                b + coords[k - 1] as i64 * s
            };
            flat += index * in_strides[axis] as i64;
        }
        flat as usize
    });
    Ok(vec![out])
}

fn tile(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let reps = to_usizes(ctx.get("reps")?.ints()?, "reps")?;
    if reps.len() != x.rank() {
        return Err(format!(
            "reps {reps:?} must have one entry per axis of {}",
            x.type_string()
        ));
    }
    let shape: Vec<usize> = x
        .shape
        .iter()
        .zip(&reps)
        .map(|(d, r)| d.checked_mul(*r))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("reps {reps:?} overflow the shape of {}", x.type_string()))?;
    ctx.expect_output_shape(0, &shape)?;
    let in_strides = strides(&x.shape);
    let dims = x.shape.clone();
    let out = take_by_coords(&x, shape, |coords| {
        coords
            .iter()
            .zip(&dims)
            .zip(&in_strides)
            .map(|((&c, &d), &s)| (c % d) * s)
            .sum()
    });
    Ok(vec![out])
}

/// Indices as non-negative positions on an axis of size `dim` (negative count from the end).
fn positions(indices: &Tensor, dim: usize) -> OpResult<Vec<usize>> {
    indices
        .ints()?
        .iter()
        .map(|&i| {
            let j = if i < 0 { i64::from(i) + dim as i64 } else { i64::from(i) };
            usize::try_from(j)
                .ok()
                .filter(|&j| j < dim)
                .ok_or_else(|| format!("index {i} is out of range for an axis of size {dim}"))
        })
        .collect()
}

fn gather(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let indices = ctx.get("indices")?;
    let axis = norm_axis(ctx.int_or("axis", 0)?, x.rank())?;
    if ctx.int_or("batch_dims", 0)? != 0 {
        return Err("batch_dims other than 0 is not supported".into());
    }
    let pos = positions(&indices, x.shape[axis])?;
    let mut shape = x.shape[..axis].to_vec();
    shape.extend_from_slice(&indices.shape);
    shape.extend_from_slice(&x.shape[axis + 1..]);
    let in_strides = strides(&x.shape);
    let idx_strides = strides(&indices.shape);
    let idx_rank = indices.rank();
    let out = take_by_coords(&x, shape, |coords| {
        let k: usize = (0..idx_rank).map(|j| coords[axis + j] * idx_strides[j]).sum();
        let before: usize = (0..axis).map(|d| coords[d] * in_strides[d]).sum();
        let after: usize = (axis + 1..in_strides.len())
            .map(|d| coords[d + idx_rank - 1] * in_strides[d])
            .sum();
        before + pos[k] * in_strides[axis] + after
    });
    Ok(vec![out])
}

fn gather_along_axis(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let indices = ctx.get("indices")?;
    let axis = norm_axis(ctx.int_or("axis", 0)?, x.rank())?;
    if indices.rank() != x.rank() {
        return Err(format!(
            "indices {} must have the rank of x {}",
            indices.type_string(),
            x.type_string()
        ));
    }
    let pos = positions(&indices, x.shape[axis])?;
    let in_strides = strides(&x.shape);
    let idx_strides = strides(&indices.shape);
    let out = take_by_coords(&x, indices.shape.clone(), |coords| {
        let k: usize = coords.iter().zip(&idx_strides).map(|(c, s)| c * s).sum();
        coords
            .iter()
            .enumerate()
            .map(|(d, &c)| if d == axis { pos[k] } else { c } * in_strides[d])
            .sum()
    });
    Ok(vec![out])
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{bool_scalar, floats, ints, run_op, run_op_tuples, string};

    fn padded(mode: &str, x: &[f32], shape: &[usize], pads: &[i32]) -> Result<Vec<f32>, String> {
        let y = run_op(
            "pad",
            vec![
                ("x", floats(shape, x)),
                ("pad", ints(pads)),
                ("mode", string(mode)),
                ("constant_val", floats(&[], &[9.0])),
            ],
        )?;
        Ok(y.floats()?.to_vec())
    }

    #[test]
    fn pad_orders_pairs_over_the_last_axes() {
        // x = [[1,2,3],[4,5,6]]; pad = [1,0, 0,2]: one row on top, two columns on the right.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            padded("constant", &x, &[2, 3], &[1, 0, 0, 2]).unwrap(),
            vec![9.0, 9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 3.0, 9.0, 9.0, 4.0, 5.0, 6.0, 9.0, 9.0]
        );
        // Only the last axis: [2, 1] → two before, one after, in each row.
        assert_eq!(
            padded("reflect", &x, &[2, 3], &[2, 1]).unwrap(),
            vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 6.0, 5.0, 4.0, 5.0, 6.0, 5.0]
        );
        assert_eq!(
            padded("replicate", &x, &[2, 3], &[1, 2]).unwrap(),
            vec![1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0, 6.0, 6.0, 6.0]
        );
        // Reflect cannot pad by the full axis length.
        assert!(padded("reflect", &x, &[2, 3], &[3, 0]).is_err());
        // Pad on a middle axis via leading zero pairs: [0,0] on rows... expressed as 4 values.
        assert_eq!(
            padded("constant", &x, &[1, 2, 3], &[0, 1, 0, 0]).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0, 9.0, 9.0]
        );
    }

    #[test]
    fn concat_transpose_reshape() {
        let a = floats(&[2, 1], &[1.0, 2.0]);
        let b = floats(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
        let c = run_op_tuples(
            "concat",
            vec![("values", vec![a.clone(), b]), ("axis", vec![ints(&[-1])])],
        )
        .unwrap();
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.floats().unwrap(), &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0]);
        let a2 = floats(&[2, 1], &[7.0, 8.0]);
        let c = run_op_tuples(
            "concat",
            vec![
                ("values", vec![a, a2]),
                ("axis", vec![ints(&[0])]),
                ("interleave", vec![bool_scalar(true)]),
            ],
        )
        .unwrap();
        assert_eq!(c.floats().unwrap(), &[1.0, 7.0, 2.0, 8.0]);
        let x = floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let t = run_op("transpose", vec![("x", x.clone()), ("perm", ints(&[1, 0]))]).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.floats().unwrap(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let r = run_op("reshape", vec![("x", x), ("shape", ints(&[0, -1, 1]))]);
        assert!(r.is_err(), "0 needs shape of x's rank");
        let x = floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let r = run_op("reshape", vec![("x", x), ("shape", ints(&[0, -1]))]).unwrap();
        assert_eq!(r.shape, vec![2, 3]);
    }
}
