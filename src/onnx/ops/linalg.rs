//! Matrix products: Gemm and MatMul; and Det, expanded by cofactors (MIL has no determinant).

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BinaryOp, Op, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[("Gemm", gemm), ("MatMul", matmul), ("Det", det)];

/// The largest matrix Det expands: a cofactor expansion has n! terms.
const MAX_DET_SIZE: usize = 4;

/// Det of `[*, n, n]` for n up to [`MAX_DET_SIZE`]: a cofactor expansion along the first row,
/// each entry a slice of the input shaped like the batch.
fn det(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let rank = shape.len();
    if rank < 2 || shape[rank - 1] != shape[rank - 2] {
        return Err(format!("input {} must be square matrices [*, n, n]", cx.ty(x)));
    }
    let n = shape[rank - 1];
    if !(1..=MAX_DET_SIZE).contains(&n) {
        return Err(format!(
            "{n}×{n} matrices are not supported (at most {MAX_DET_SIZE}×{MAX_DET_SIZE})"
        ));
    }
    let batch = shape[..rank - 2].to_vec();
    let mut entries = vec![vec![x; n]; n];
    for (i, row) in entries.iter_mut().enumerate() {
        for (j, entry) in row.iter_mut().enumerate() {
            let mut axes: Vec<SliceAxis> = batch.iter().map(|&d| SliceAxis::full(d)).collect();
            for k in [i, j] {
                axes.push(SliceAxis {
                    begin: k,
                    end: Some(k + 1),
                    stride: 1,
                });
            }
            let slice = cx.add_step(Op::Slice { axes }, vec![x], &format!("a{i}{j}_slice"))?;
            *entry = cx.add_step(Op::Reshape { shape: batch.clone() }, vec![slice], &format!("a{i}{j}"))?;
        }
    }
    let columns: Vec<usize> = (0..n).collect();
    let mut counter = 0;
    let d = cofactor_expansion(cx, &entries, 0, &columns, &mut counter)?;
    cx.add(Op::Identity, vec![d])
}

/// The determinant of the minor of rows `row..` and `columns`, expanded along its first row.
fn cofactor_expansion(
    cx: &mut NodeCx,
    entries: &[Vec<ValueId>],
    row: usize,
    columns: &[usize],
    counter: &mut usize,
) -> Result<ValueId, String> {
    if let [only] = columns {
        return Ok(entries[row][*only]);
    }
    let step = |cx: &mut NodeCx, counter: &mut usize, op: BinaryOp, a: ValueId, b: ValueId| {
        *counter += 1;
        cx.add_step(Op::Binary(op), vec![a, b], &format!("term{counter}"))
    };
    let mut total = None;
    for (k, &column) in columns.iter().enumerate() {
        let rest: Vec<usize> = columns.iter().copied().filter(|&c| c != column).collect();
        let minor = cofactor_expansion(cx, entries, row + 1, &rest, counter)?;
        let term = step(cx, counter, BinaryOp::Mul, entries[row][column], minor)?;
        total = Some(match total {
            None => term,
            Some(t) if k % 2 == 1 => step(cx, counter, BinaryOp::Sub, t, term)?,
            Some(t) => step(cx, counter, BinaryOp::Add, t, term)?,
        });
    }
    total.ok_or_else(|| "an empty minor".to_string())
}

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
