//! Rewrite composite ops into core ops, so the back end sees only ops with a MIL counterpart.
//!
//! - HardSwish → `x * hard_sigmoid(x, 1/6, 1/2)` (MIL has no hard-swish op).
//! - Clip → identity / relu / relu6 / maximum / minimum when a bound is missing or the bounds
//!   are ReLU's (MIL `clip` needs both bounds).
//! - Gemm → \[transpose\] · matmul · \[mul alpha\] · \[add beta·C\]; `fuse_linear` later turns a
//!   matmul by a constant into `linear`.

use crate::ir::{Graph, Tensor, ValueId};
use crate::op::{BinaryOp, InferError, Op};
use crate::pass::{Pass, PassError, PassOptions};

pub struct Legalize;

impl Pass for Legalize {
    fn name(&self) -> &'static str {
        "legalize"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id).clone();
            let err = |e: InferError| PassError {
                pass: "legalize",
                origin: node.origin.clone(),
                message: e.0,
            };
            let out_name = graph.value(node.outputs[0]).name.clone();
            let origin = node.origin.as_str();
            let x = node.inputs[0];
            let replaced = match &node.op {
                Op::HardSwish => {
                    let gate = graph
                        .add_node(
                            Op::HardSigmoid {
                                alpha: 1.0 / 6.0,
                                beta: 0.5,
                            },
                            vec![x],
                            &[format!("{out_name}_gate")],
                            origin,
                        )
                        .map_err(err)?;
                    graph
                        .add_node(Op::Binary(BinaryOp::Mul), vec![x, gate[0]], &[out_name], origin)
                        .map_err(err)?[0]
                }
                Op::Clip { min, max } => match (*min, *max) {
                    (None, None) => x,
                    (Some(0.0), Some(6.0)) => graph.add_node(Op::Relu6, vec![x], &[out_name], origin).map_err(err)?[0],
                    (Some(0.0), None) => graph.add_node(Op::Relu, vec![x], &[out_name], origin).map_err(err)?[0],
                    (Some(lo), Some(hi)) if lo <= hi => return Ok(None),
                    // ONNX clips to min then to max, so min > max gives max everywhere; MIL's
                    // clip does not define that case, so spell it out.
                    (Some(lo), Some(hi)) => {
                        let lo = scalar_like(graph, x, lo, &format!("{out_name}_min"));
                        let hi = scalar_like(graph, x, hi, &format!("{out_name}_max"));
                        let raised = graph
                            .add_node(
                                Op::Binary(BinaryOp::Maximum),
                                vec![x, lo],
                                &[format!("{out_name}_raised")],
                                origin,
                            )
                            .map_err(err)?[0];
                        graph
                            .add_node(Op::Binary(BinaryOp::Minimum), vec![raised, hi], &[out_name], origin)
                            .map_err(err)?[0]
                    }
                    (Some(bound), None) | (None, Some(bound)) => {
                        let op = if min.is_some() {
                            BinaryOp::Maximum
                        } else {
                            BinaryOp::Minimum
                        };
                        let bound = scalar_like(graph, x, bound, &format!("{out_name}_bound"));
                        graph
                            .add_node(Op::Binary(op), vec![x, bound], &[out_name], origin)
                            .map_err(err)?[0]
                    }
                },
                Op::Gemm {
                    alpha,
                    beta,
                    trans_a,
                    trans_b,
                } => lower_gemm(
                    graph,
                    &node.inputs,
                    *alpha,
                    *beta,
                    *trans_a,
                    *trans_b,
                    &out_name,
                    origin,
                )
                .map_err(err)?,
                _ => return Ok(None),
            };
            Ok(Some(vec![replaced]))
        })?;
        Ok(())
    }
}

/// A scalar constant of `like`'s dtype.
fn scalar_like(graph: &mut Graph, like: ValueId, value: f32, name: &str) -> ValueId {
    let dtype = graph.ty(like).dtype;
    graph.add_const(name, Tensor::scalar_f32(value).cast(dtype))
}

#[allow(clippy::too_many_arguments)]
fn lower_gemm(
    graph: &mut Graph,
    inputs: &[ValueId],
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
    out_name: &str,
    origin: &str,
) -> Result<ValueId, InferError> {
    let (mut a, b) = (inputs[0], inputs[1]);
    if trans_a {
        a = graph.add_node(
            Op::Transpose { perm: vec![1, 0] },
            vec![a],
            &[format!("{out_name}_a_t")],
            origin,
        )?[0];
    }
    let has_c = inputs.len() > 2 && beta != 0.0;
    let has_alpha = alpha != 1.0;
    let name = |stage: &str, last: bool| {
        if last {
            out_name.to_string()
        } else {
            format!("{out_name}_{stage}")
        }
    };
    let mut y = graph.add_node(
        Op::MatMul {
            transpose_a: false,
            transpose_b: trans_b,
        },
        vec![a, b],
        &[name("matmul", !has_alpha && !has_c)],
        origin,
    )?[0];
    if has_alpha {
        let s = scalar_like(graph, y, alpha, &format!("{out_name}_alpha"));
        y = graph.add_node(Op::Binary(BinaryOp::Mul), vec![y, s], &[name("scaled", !has_c)], origin)?[0];
    }
    if has_c {
        let mut c = inputs[2];
        if beta != 1.0 {
            let s = scalar_like(graph, c, beta, &format!("{out_name}_beta"));
            c = graph.add_node(
                Op::Binary(BinaryOp::Mul),
                vec![c, s],
                &[format!("{out_name}_c_scaled")],
                origin,
            )?[0];
        }
        y = graph.add_node(Op::Binary(BinaryOp::Add), vec![y, c], &[out_name.to_string()], origin)?[0];
    }
    Ok(y)
}
