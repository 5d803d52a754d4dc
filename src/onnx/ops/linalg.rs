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

fn matmul(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let a = cx.required_input(0)?;
    let b = cx.required_input(1)?;
    cx.add(
        Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        },
        vec![a, b],
    )
}
