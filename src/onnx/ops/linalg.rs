//! Matrix products: Gemm and MatMul.

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::Op;

pub const OPS: &[(&str, Importer)] = &[("Gemm", gemm), ("MatMul", matmul)];

fn gemm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let a = cx.required_input(0)?;
    let b = cx.required_input(1)?;
    let mut inputs = vec![a, b];
    if let Some(c) = cx.input(2) {
        inputs.push(c);
    }
    let op = Op::Gemm {
        alpha: cx.attr_float("alpha", 1.0)?,
        beta: cx.attr_float("beta", 1.0)?,
        trans_a: cx.attr_int("transA", 0)? != 0,
        trans_b: cx.attr_int("transB", 0)? != 0,
    };
    cx.add(op, inputs)
}

/// NumPy matmul. A 1-D operand is made 2-D first (`[K]` → `[1,K]` on the left, `[K,1]` on the
/// right) and the added axes removed after, so MIL sees only ranks it types like ONNX does. A 1-D by
/// 1-D product is a scalar (published as `[1]` if it is a model output).
fn matmul(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let mut a = cx.required_input(0)?;
    let mut b = cx.required_input(1)?;
    let (a_shape, b_shape) = (cx.ty(a).shape.clone(), cx.ty(b).shape.clone());
    let plain = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
    };
    if a_shape.len() != 1 && b_shape.len() != 1 {
        return cx.add(plain, vec![a, b]);
    }
    let out_shape = edgec_passes::op::matmul_shape(cx.ty(a), cx.ty(b), false, false).map_err(|e| e.0)?;
    if a_shape.len() == 1 {
        a = cx.add_step(
            Op::Reshape {
                shape: vec![1, a_shape[0]],
            },
            vec![a],
            "lhs_2d",
        )?;
    }
    if b_shape.len() == 1 {
        b = cx.add_step(
            Op::Reshape {
                shape: vec![b_shape[0], 1],
            },
            vec![b],
            "rhs_2d",
        )?;
    }
    let product = cx.add_step(plain, vec![a, b], "matmul")?;
    cx.add(Op::Reshape { shape: out_shape }, vec![product])
}
