//! A small reference evaluator for constant folding.
//!
//! It computes in f32 (floats) or i64 (integers) and covers the data-movement and elementwise
//! ops that show up on constants after import; anything else returns `None` and stays in the
//! graph.

use crate::ir::{Tensor, TensorType};
use crate::op::{BinaryOp, Op};

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
        Op::Transpose { perm } => {
            let x = inputs[0];
            let elem = x.ty.dtype.size_in_bytes();
            let src = strides(&x.ty.shape);
            let mut out = Vec::with_capacity(x.data.len());
            for index in 0..out_ty.num_elements() {
                let coords = unravel(index, &out_ty.shape);
                let offset: usize = coords.iter().zip(perm).map(|(&c, &p)| c * src[p]).sum();
                out.extend_from_slice(&x.data[offset * elem..(offset + 1) * elem]);
            }
            Tensor {
                ty: out_ty,
                data: out.into(),
            }
        }
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
        Op::Identity | Op::Reshape { .. } | Op::Cast { .. } | Op::Transpose { .. } | Op::Concat { .. } | Op::Binary(_)
    )
}
