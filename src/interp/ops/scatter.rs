//! `scatter_nd` and `scatter_along_axis` (coremltools iOS15/iOS17 `scatter_gather.py`): `data`
//! with each update combined into the element its index names, by `mode` (`update` replaces;
//! `add`, `sub`, `mul`, `div`, `max`, `min` combine with what is there, writes applied in
//! index order). Indices must be in range (from iOS17 negative ones are out of range too;
//! edgec's front end wraps them before the op).

use super::super::eval::OpCtx;
use super::super::tensor::{strides, Buf, OpResult, Tensor};
use super::{norm_axis, OpFn};
use std::sync::Arc;

pub(super) const OPS: &[(&str, OpFn)] = &[("scatter_nd", scatter_nd), ("scatter_along_axis", scatter_along_axis)];

/// `(output element, update element)` pairs, in index order.
type Writes = Vec<(usize, usize)>;

fn position(i: i32, dim: usize) -> OpResult<usize> {
    usize::try_from(i)
        .ok()
        .filter(|&j| j < dim)
        .ok_or_else(|| format!("index {i} is out of range for an axis of size {dim}"))
}

fn combine<T: Copy + PartialOrd>(mode: &str, old: T, new: T, ops: [fn(T, T) -> T; 4]) -> OpResult<T> {
    let [add, sub, mul, div] = ops;
    Ok(match mode {
        "update" => new,
        "add" => add(old, new),
        "sub" => sub(old, new),
        "mul" => mul(old, new),
        "div" => div(old, new),
        "max" => {
            if new > old {
                new
            } else {
                old
            }
        }
        "min" => {
            if new < old {
                new
            } else {
                old
            }
        }
        other => return Err(format!("mode {other:?} is not update, add, sub, mul, div, max or min")),
    })
}

/// `data` with `writes` from `updates` applied by `mode`.
fn apply(data: &Tensor, updates: &Tensor, writes: &Writes, mode: &str) -> OpResult<Tensor> {
    if updates.dtype != data.dtype {
        return Err(format!(
            "updates {} must have the data's type {}",
            updates.type_string(),
            data.type_string()
        ));
    }
    let buf = match (&data.buf, &updates.buf) {
        (Buf::F(d), Buf::F(u)) => {
            let mut out = d.as_ref().clone();
            for &(at, from) in writes {
                out[at] = combine(
                    mode,
                    out[at],
                    u[from],
                    [|a, b| a + b, |a, b| a - b, |a, b| a * b, |a, b| a / b],
                )?;
            }
            Buf::F(Arc::new(out))
        }
        (Buf::I(d), Buf::I(u)) => {
            let mut out = d.as_ref().clone();
            for &(at, from) in writes {
                let ops: [fn(i32, i32) -> i32; 4] =
                    [i32::wrapping_add, i32::wrapping_sub, i32::wrapping_mul, |a, b| {
                        if b == 0 {
                            0
                        } else {
                            a.wrapping_div(b)
                        }
                    }];
                out[at] = combine(mode, out[at], u[from], ops)?;
            }
            Buf::I(Arc::new(out))
        }
        _ => {
            return Err(format!(
                "scatter of {} is not supported (fp16, fp32 or int32)",
                data.type_string()
            ))
        }
    };
    Ok(Tensor {
        dtype: data.dtype,
        shape: data.shape.clone(),
        buf,
    })
}

/// Each index tuple (the last axis of `indices`) names a slice of `data`, written from the
/// update slice at the tuple's position.
fn scatter_nd(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let data = ctx.get("data")?;
    let indices = ctx.get("indices")?;
    let updates = ctx.get("updates")?;
    let mode = ctx.string_or("mode", "add")?;
    let Some((&depth, tuples)) = indices.shape.split_last() else {
        return Err("indices must have rank 1 or more".into());
    };
    if depth == 0 || depth > data.rank() {
        return Err(format!("index tuples of {depth} for data of rank {}", data.rank()));
    }
    let mut expected = tuples.to_vec();
    expected.extend(&data.shape[depth..]);
    if updates.shape != expected {
        return Err(format!(
            "updates {} must have shape {expected:?}",
            updates.type_string()
        ));
    }
    let inner: usize = data.shape[depth..].iter().product();
    let data_strides = strides(&data.shape);
    let mut writes = Writes::new();
    for (t, tuple) in indices.ints()?.chunks(depth).enumerate() {
        let mut base = 0;
        for (a, &i) in tuple.iter().enumerate() {
            base += position(i, data.shape[a])? * data_strides[a];
        }
        writes.extend((0..inner).map(|r| (base + r, t * inner + r)));
    }
    Ok(vec![apply(&data, &updates, &writes, &mode)?])
}

/// `output[p with p[axis] = indices[p]] = updates[p]`, for every position p of `indices`.
fn scatter_along_axis(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let data = ctx.get("data")?;
    let indices = ctx.get("indices")?;
    let updates = ctx.get("updates")?;
    let mode = ctx.string_or("mode", "add")?;
    let axis = norm_axis(ctx.int_or("axis", 0)?, data.rank())?;
    let same_elsewhere = (0..data.rank()).all(|d| d == axis || indices.shape.get(d) == data.shape.get(d));
    if indices.rank() != data.rank() || updates.shape != indices.shape || !same_elsewhere {
        return Err(format!(
            "indices {} and updates {} must have one shape, the data's {} but along axis {axis}",
            indices.type_string(),
            updates.type_string(),
            data.type_string()
        ));
    }
    let data_strides = strides(&data.shape);
    let index_strides = strides(&indices.shape);
    let writes = indices
        .ints()?
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let mut at = 0;
            for d in 0..data.rank() {
                let coordinate = k / index_strides[d] % indices.shape[d];
                let coordinate = if d == axis {
                    position(i, data.shape[d])?
                } else {
                    coordinate
                };
                at += coordinate * data_strides[d];
            }
            Ok((at, k))
        })
        .collect::<OpResult<Writes>>()?;
    Ok(vec![apply(&data, &updates, &writes, &mode)?])
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{floats, ints, run_op, string};

    #[test]
    fn scatter_nd_writes_and_combines_slices_in_index_order() {
        // data [3, 2]; rows 2 and 0 written, row 2 twice.
        let data = floats(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let indices = ints(&[2, 0, 2]).reshaped(vec![3, 1]);
        let updates = floats(&[3, 2], &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        let run = |mode: &str| {
            let params = vec![
                ("data", data.clone()),
                ("indices", indices.clone()),
                ("updates", updates.clone()),
                ("mode", string(mode)),
            ];
            run_op("scatter_nd", params).unwrap().floats().unwrap().to_vec()
        };
        assert_eq!(run("update"), [30.0, 40.0, 3.0, 4.0, 50.0, 60.0]);
        assert_eq!(run("add"), [31.0, 42.0, 3.0, 4.0, 65.0, 86.0]);
        assert_eq!(run("max"), [30.0, 40.0, 3.0, 4.0, 50.0, 60.0]);
        let bad = vec![
            ("data", data.clone()),
            ("indices", ints(&[3]).reshaped(vec![1, 1])),
            ("updates", floats(&[1, 2], &[0.0, 0.0])),
        ];
        assert!(run_op("scatter_nd", bad).unwrap_err().contains("out of range"));
    }

    #[test]
    fn scatter_along_axis_writes_each_update_at_its_index() {
        // data [2, 3], axis 1: row 0 gets columns 2 and 0, row 1 column 1 twice.
        let data = floats(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let run = |indices: &[i32], shape: Vec<usize>, updates: &[f32], mode: &str| {
            let params = vec![
                ("data", data.clone()),
                ("indices", ints(indices).reshaped(shape.clone())),
                ("updates", floats(&shape, updates)),
                ("axis", ints(&[1]).reshaped(vec![])),
                ("mode", string(mode)),
            ];
            run_op("scatter_along_axis", params)
        };
        let update = run(&[2, 0, 1, 1], vec![2, 2], &[7.0, 8.0, 2.0, 3.0], "update").unwrap();
        assert_eq!(update.floats().unwrap(), [8.0, 2.0, 7.0, 4.0, 3.0, 6.0]);
        let mul = run(&[2, 0, 1, 1], vec![2, 2], &[7.0, 8.0, 2.0, 3.0], "mul").unwrap();
        assert_eq!(mul.floats().unwrap(), [8.0, 2.0, 21.0, 4.0, 30.0, 6.0]);
        // Off the axis, indices span the data (MIL's rule; ONNX allows fewer rows).
        let err = run(&[0, 1, 2], vec![1, 3], &[0.0; 3], "update").unwrap_err();
        assert!(err.contains("the data's"), "{err}");
    }
}
