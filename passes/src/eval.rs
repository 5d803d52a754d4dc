//! A small reference evaluator for constant folding.
//!
//! It computes in f32 (floats) or i64 (integers) and covers the data-movement and elementwise
//! ops that show up on constants after import; anything else returns `None` and stays in the
//! graph.

use crate::ir::{Tensor, TensorType};
use crate::op::{BinaryOp, CompareOp, LogicalOp, Op, ReduceKind, UnaryOp};

/// Evaluate `op` on constant inputs whose output types are `outputs`; `None` if not supported.
pub fn evaluate(op: &Op, inputs: &[&Tensor], outputs: &[TensorType]) -> Option<Vec<Tensor>> {
    let out_ty = outputs.first()?.clone();
    let result = match op {
        Op::Identity => inputs[0].clone(),
        Op::Reshape { .. } => Tensor {
            ty: out_ty,
            data: inputs[0].data.clone(),
        },
        Op::Cast { to } => inputs[0].cast(*to),
        Op::Transpose { perm } => inputs[0].transposed(perm),
        Op::Concat { axis } => {
            let elem = out_ty.dtype.size_in_bytes();
            let outer: usize = out_ty.shape[..*axis].iter().product();
            let mut out = Vec::with_capacity(out_ty.num_elements() * elem);
            for o in 0..outer {
                for t in inputs {
                    let chunk = t.ty.shape[*axis..].iter().product::<usize>() * elem;
                    out.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
                }
            }
            Tensor {
                ty: out_ty,
                data: out.into(),
            }
        }
        Op::Binary(b) => binary(*b, inputs[0], inputs[1], out_ty)?,
        Op::Compare(c) => compare(*c, inputs[0], inputs[1], out_ty),
        Op::Logical(l) => {
            let (a, b) = (inputs[0].to_i64_vec(), inputs[1].to_i64_vec());
            let f = |x: bool, y: bool| match l {
                LogicalOp::And => x && y,
                LogicalOp::Or => x || y,
                LogicalOp::Xor => x != y,
            };
            let ia = broadcast_index(&inputs[0].ty.shape, &out_ty.shape);
            let ib = broadcast_index(&inputs[1].ty.shape, &out_ty.shape);
            let values = ia.iter().zip(&ib).map(|(&i, &j)| f(a[i] != 0, b[j] != 0));
            bool_tensor(out_ty, values)
        }
        Op::Not => {
            let values = inputs[0].to_i64_vec().into_iter().map(|v| v == 0);
            bool_tensor(out_ty, values)
        }
        Op::Unary(u) => unary(*u, inputs[0], out_ty)?,
        Op::Select => {
            let cond = inputs[0].to_i64_vec();
            let ic = broadcast_index(&inputs[0].ty.shape, &out_ty.shape);
            let ia = broadcast_index(&inputs[1].ty.shape, &out_ty.shape);
            let ib = broadcast_index(&inputs[2].ty.shape, &out_ty.shape);
            let elem = out_ty.dtype.size_in_bytes();
            let mut out = Vec::with_capacity(out_ty.num_elements() * elem);
            for k in 0..ic.len() {
                let (src, i) = if cond[ic[k]] != 0 {
                    (inputs[1], ia[k])
                } else {
                    (inputs[2], ib[k])
                };
                out.extend_from_slice(&src.data[i * elem..(i + 1) * elem]);
            }
            Tensor {
                ty: out_ty,
                data: out.into(),
            }
        }
        Op::Gather { axis } => {
            let (x, indices) = (inputs[0], inputs[1].to_i64_vec());
            let dim = x.ty.shape[*axis];
            let outer: usize = x.ty.shape[..*axis].iter().product();
            let inner: usize = x.ty.shape[axis + 1..].iter().product();
            let mut sources = Vec::with_capacity(out_ty.num_elements());
            for o in 0..outer {
                for &i in &indices {
                    let i = usize::try_from(i).ok().filter(|&i| i < dim)?;
                    sources.extend((0..inner).map(|j| (o * dim + i) * inner + j));
                }
            }
            take(x, sources, out_ty)
        }
        Op::GatherElements { axis } => {
            let (x, indices) = (inputs[0], inputs[1].to_i64_vec());
            let src = strides(&x.ty.shape);
            let dim = x.ty.shape[*axis];
            let mut sources = Vec::with_capacity(indices.len());
            for (k, &i) in indices.iter().enumerate() {
                let i = usize::try_from(i).ok().filter(|&i| i < dim)?;
                let mut coords = unravel(k, &out_ty.shape);
                coords[*axis] = i;
                sources.push(coords.iter().zip(&src).map(|(c, s)| c * s).sum());
            }
            take(x, sources, out_ty)
        }
        Op::Slice { axes } => take_by_axis(inputs[0], out_ty, |axis, c| axes[axis].source_index(c)),
        Op::Tile { .. } => {
            let dims = &inputs[0].ty.shape;
            take_by_axis(inputs[0], out_ty, |axis, c| c % dims[axis])
        }
        Op::Reduce { kind, axes, .. } if !inputs[0].ty.dtype.is_float() => reduce_ints(*kind, axes, inputs[0], out_ty)?,
        Op::CumSum {
            axis,
            exclusive,
            reverse,
        } => cumsum(inputs[0], *axis, *exclusive, *reverse, out_ty)?,
        _ => return None,
    };
    Some(vec![result])
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, out_ty: TensorType) -> Option<Tensor> {
    let index_a = broadcast_index(&a.ty.shape, &out_ty.shape);
    let index_b = broadcast_index(&b.ty.shape, &out_ty.shape);
    if a.ty.dtype.is_float() {
        let (va, vb) = (a.to_f32_vec(), b.to_f32_vec());
        let f = |x: f32, y: f32| match op {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Maximum => x.max(y),
            BinaryOp::Minimum => x.min(y),
            BinaryOp::Pow => x.powf(y),
        };
        let values: Vec<f32> = index_a.iter().zip(&index_b).map(|(&i, &j)| f(va[i], vb[j])).collect();
        Some(Tensor::from_f32(out_ty.shape.clone(), &values).cast(out_ty.dtype))
    } else {
        let (va, vb) = (a.to_i64_vec(), b.to_i64_vec());
        let mut values = Vec::with_capacity(index_a.len());
        for (&i, &j) in index_a.iter().zip(&index_b) {
            let (x, y) = (va[i], vb[j]);
            values.push(match op {
                BinaryOp::Add => x.checked_add(y)?,
                BinaryOp::Sub => x.checked_sub(y)?,
                BinaryOp::Mul => x.checked_mul(y)?,
                // ONNX integer division truncates toward zero, as Rust's does.
                BinaryOp::Div => x.checked_div(y)?,
                BinaryOp::Maximum => x.max(y),
                BinaryOp::Minimum => x.min(y),
                BinaryOp::Pow => x.checked_pow(u32::try_from(y).ok()?)?,
            });
        }
        Some(Tensor::from_i64(out_ty.shape.clone(), &values).cast(out_ty.dtype))
    }
}

fn bool_tensor(ty: TensorType, values: impl Iterator<Item = bool>) -> Tensor {
    Tensor {
        ty,
        data: values.map(u8::from).collect::<Vec<u8>>().into(),
    }
}

/// The elements of `x` at flat indices `sources`, as a tensor of type `ty`.
fn take(x: &Tensor, sources: Vec<usize>, ty: TensorType) -> Tensor {
    let elem = x.ty.dtype.size_in_bytes();
    let mut out = Vec::with_capacity(sources.len() * elem);
    for i in sources {
        out.extend_from_slice(&x.data[i * elem..(i + 1) * elem]);
    }
    Tensor { ty, data: out.into() }
}

/// The elements of `x` for an output of type `ty` whose coordinate `c` on `axis` reads source
/// coordinate `source(axis, c)` (slices, tiles).
fn take_by_axis(x: &Tensor, ty: TensorType, source: impl Fn(usize, usize) -> usize) -> Tensor {
    let src = strides(&x.ty.shape);
    let sources = (0..ty.num_elements())
        .map(|k| {
            let coords = unravel(k, &ty.shape);
            coords
                .iter()
                .enumerate()
                .map(|(axis, &c)| source(axis, c) * src[axis])
                .sum()
        })
        .collect();
    take(x, sources, ty)
}

fn compare(op: CompareOp, a: &Tensor, b: &Tensor, out_ty: TensorType) -> Tensor {
    let ia = broadcast_index(&a.ty.shape, &out_ty.shape);
    let ib = broadcast_index(&b.ty.shape, &out_ty.shape);
    let test = |o: std::cmp::Ordering| match op {
        CompareOp::Equal => o.is_eq(),
        CompareOp::NotEqual => o.is_ne(),
        CompareOp::Less => o.is_lt(),
        CompareOp::LessEqual => o.is_le(),
        CompareOp::Greater => o.is_gt(),
        CompareOp::GreaterEqual => o.is_ge(),
    };
    if a.ty.dtype.is_float() {
        let (va, vb) = (a.to_f32_vec(), b.to_f32_vec());
        // NaN compares false with everything (and not-equal true), as in IEEE and ONNX.
        let values = ia.iter().zip(&ib).map(|(&i, &j)| match va[i].partial_cmp(&vb[j]) {
            Some(o) => test(o),
            None => op == CompareOp::NotEqual,
        });
        bool_tensor(out_ty, values)
    } else {
        let (va, vb) = (a.to_i64_vec(), b.to_i64_vec());
        bool_tensor(out_ty, ia.iter().zip(&ib).map(|(&i, &j)| test(va[i].cmp(&vb[j]))))
    }
}

/// Integer negation and absolute value (shape arithmetic); float unaries stay in the graph.
fn unary(op: UnaryOp, x: &Tensor, out_ty: TensorType) -> Option<Tensor> {
    if x.ty.dtype.is_float() {
        return None;
    }
    let f = match op {
        UnaryOp::Neg => i64::checked_neg,
        UnaryOp::Abs => i64::checked_abs,
        _ => return None,
    };
    let values: Option<Vec<i64>> = x.to_i64_vec().into_iter().map(f).collect();
    Some(Tensor::from_i64(out_ty.shape.clone(), &values?).cast(out_ty.dtype))
}

/// Integer reductions (a `ReduceProd` of a shape, say).
fn reduce_ints(kind: ReduceKind, axes: &[usize], x: &Tensor, out_ty: TensorType) -> Option<Tensor> {
    let values = x.to_i64_vec();
    let mut kept = x.ty.shape.clone();
    for &a in axes {
        kept[a] = 1;
    }
    let kept_strides = strides(&kept);
    let mut acc: Vec<Option<i64>> = vec![None; kept.iter().product()];
    for (k, &v) in values.iter().enumerate() {
        let coords = unravel(k, &x.ty.shape);
        let slot: usize = coords
            .iter()
            .zip(&kept)
            .zip(&kept_strides)
            .map(|((&c, &d), s)| if d == 1 { 0 } else { c * s })
            .sum();
        acc[slot] = Some(match (acc[slot], kind) {
            (None, ReduceKind::L2 | ReduceKind::Mean) => return None,
            (None, _) => v,
            (Some(a), ReduceKind::Sum) => a.checked_add(v)?,
            (Some(a), ReduceKind::Prod) => a.checked_mul(v)?,
            (Some(a), ReduceKind::Max) => a.max(v),
            (Some(a), ReduceKind::Min) => a.min(v),
            (Some(_), ReduceKind::L2 | ReduceKind::Mean) => return None,
        });
    }
    let values: Option<Vec<i64>> = acc.into_iter().collect();
    Some(Tensor::from_i64(out_ty.shape.clone(), &values?).cast(out_ty.dtype))
}

/// Running sums along `axis`: f32 for floats, checked i64 for integers.
fn cumsum(x: &Tensor, axis: usize, exclusive: bool, reverse: bool, out_ty: TensorType) -> Option<Tensor> {
    let dim = x.ty.shape[axis];
    let inner: usize = x.ty.shape[axis + 1..].iter().product();
    let outer: usize = x.ty.shape[..axis].iter().product();
    let dims = [outer, dim, inner];
    if x.ty.dtype.is_float() {
        let out = running_sums(&x.to_f32_vec(), dims, exclusive, reverse, &|a: f32, b| Some(a + b))?;
        Some(Tensor::from_f32(out_ty.shape.clone(), &out).cast(out_ty.dtype))
    } else {
        let out = running_sums(&x.to_i64_vec(), dims, exclusive, reverse, &|a: i64, b| a.checked_add(b))?;
        Some(Tensor::from_i64(out_ty.shape.clone(), &out).cast(out_ty.dtype))
    }
}

/// Running sums of `values` viewed as `[outer, dim, inner]`, along `dim`; `None` if `add`
/// fails (integer overflow).
fn running_sums<T: Copy + Default>(
    values: &[T],
    [outer, dim, inner]: [usize; 3],
    exclusive: bool,
    reverse: bool,
    add: &dyn Fn(T, T) -> Option<T>,
) -> Option<Vec<T>> {
    let mut out = vec![T::default(); values.len()];
    for o in 0..outer {
        for j in 0..inner {
            let mut acc = T::default();
            for k in 0..dim {
                let k = if reverse { dim - 1 - k } else { k };
                let i = (o * dim + k) * inner + j;
                let before = acc;
                acc = add(acc, values[i])?;
                out[i] = if exclusive { before } else { acc };
            }
        }
    }
    Some(out)
}

/// Row-major strides of `shape`, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut coords = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        coords[i] = index % shape[i].max(1);
        index /= shape[i].max(1);
    }
    coords
}

/// For each element of `out`, the flat index of the element of `input` broadcast onto it.
pub fn broadcast_index(input: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - input.len();
    let in_strides = strides(input);
    (0..out.iter().product())
        .map(|index| {
            let coords = unravel(index, out);
            input
                .iter()
                .enumerate()
                .map(|(i, &d)| if d == 1 { 0 } else { coords[i + offset] * in_strides[i] })
                .sum()
        })
        .collect()
}

/// Whether [`evaluate`] knows `op` (so folding need not try the others).
pub fn can_evaluate(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity
            | Op::Reshape { .. }
            | Op::Cast { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Logical(_)
            | Op::Not
            | Op::Select
            | Op::Gather { .. }
            | Op::GatherElements { .. }
            | Op::Slice { .. }
            | Op::Tile { .. }
            | Op::Unary(UnaryOp::Neg | UnaryOp::Abs)
            | Op::Reduce { .. }
            | Op::CumSum { .. }
    )
}
