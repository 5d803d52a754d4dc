//! Turn `matmul(x, W)` with a constant 2-D `W` into MIL's `linear`, then absorb a following
//! scalar `mul` and a bias `add` into its weight and bias (the Gemm and MatMul+Add patterns).

use crate::ir::{Graph, Tensor};
use crate::op::{BinaryOp, Op};
use crate::pass::{Pass, PassError, PassOptions};

pub struct FuseLinear;

impl Pass for FuseLinear {
    fn name(&self) -> &'static str {
        "fuse_linear"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Op::MatMul {
                transpose_a: false,
                transpose_b,
            } = node.op
            else {
                return Ok::<_, PassError>(None);
            };
            let (x, w) = (node.inputs[0], node.inputs[1]);
            let weight_source = w;
            let Some(weight) = graph.constant(w) else {
                return Ok(None);
            };
            let x_ty = graph.ty(x);
            if weight.ty.rank() != 2 || !(2..=3).contains(&x_ty.rank()) || !x_ty.dtype.is_float() {
                return Ok(None);
            }
            // linear wants [N, K]; MatMul's B is [K, N] unless transposed.
            let weight = if transpose_b {
                weight.clone()
            } else {
                weight.transposed(&[1, 0])
            };
            let n = weight.ty.shape[0];
            let name = graph.value(node.outputs[0]).name.clone();
            let origin = node.origin.clone();
            let bias = Tensor::from_f32(vec![n], &vec![0.0; n]).cast(weight.ty.dtype);
            let w = graph.add_const(format!("{name}_weight"), weight);
            graph.record_derived(w, weight_source);
            let b = graph.add_const(format!("{name}_bias"), bias);
            let out = graph
                .add_node(Op::Linear, vec![x, w, b], &[name], origin.clone())
                .map_err(|e| PassError {
                    pass: "fuse_linear",
                    origin,
                    message: e.0,
                })?;
            if let Some(linear) = graph.producer(out[0]) {
                graph.transfer_fusions(id, linear);
            }
            Ok(Some(out))
        })?;

        let mut uses = graph.use_counts();
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id).clone();
            let Op::Binary(kind @ (BinaryOp::Add | BinaryOp::Mul)) = node.op else {
                return Ok::<_, PassError>(None);
            };
            for (linear_side, const_side) in [(0, 1), (1, 0)] {
                let (lin_out, operand) = (node.inputs[linear_side], node.inputs[const_side]);
                let Some(lin_id) = graph.producer(lin_out) else {
                    continue;
                };
                let lin = graph.node(lin_id);
                let Some(c) = graph.constant(operand) else {
                    continue;
                };
                if lin.op != Op::Linear || uses[lin_out.index()] != 1 || graph.is_graph_output(lin_out) {
                    continue;
                }
                let out_ty = graph.ty(lin_out).clone();
                if graph.ty(node.outputs[0]) != &out_ty {
                    continue;
                }
                let n = out_ty.shape[out_ty.rank() - 1];
                let (Some(weight), Some(bias)) = (graph.constant(lin.inputs[1]), graph.constant(lin.inputs[2])) else {
                    continue;
                };
                let dtype = weight.ty.dtype;
                let mut b = bias.to_f32_vec();
                let c_values = c.to_f32_vec();
                // Only a scale touches the weight: a bias add must not copy a large matrix.
                let new_weight = match kind {
                    BinaryOp::Mul if c_values.len() == 1 => {
                        let w: Vec<f32> = weight.to_f32_vec().iter().map(|v| v * c_values[0]).collect();
                        b.iter_mut().for_each(|v| *v *= c_values[0]);
                        Some(Tensor::from_f32(weight.ty.shape.clone(), &w).cast(dtype))
                    }
                    BinaryOp::Add if varies_only_on_last_axis(&c.ty.shape, n) => {
                        let last = c_values.len();
                        b.iter_mut()
                            .enumerate()
                            .for_each(|(i, v)| *v += c_values[if last == 1 { 0 } else { i }]);
                        None
                    }
                    _ => continue,
                };
                let name = graph.value(node.outputs[0]).name.clone();
                let old_weight = lin.inputs[1];
                let w = new_weight.map(|t| graph.add_const(format!("{name}_weight"), t));
                if let Some(w) = w {
                    graph.record_derived(w, old_weight);
                }
                let b = graph.add_const(format!("{name}_bias"), Tensor::from_f32(vec![n], &b).cast(dtype));
                uses[lin_out.index()] = uses[node.outputs[0].index()];
                let lin = graph.node_mut(lin_id);
                if let Some(w) = w {
                    lin.inputs[1] = w;
                }
                lin.inputs[2] = b;
                graph.value_mut(lin_out).name = name;
                graph.record_fusion(lin_id, id);
                return Ok(Some(vec![lin_out]));
            }
            Ok(None)
        })?;
        Ok(())
    }
}

/// Shapes like `[N]`, `[1, N]`, `[1]` or `[]`: a bias the linear op can carry.
fn varies_only_on_last_axis(shape: &[usize], n: usize) -> bool {
    let count: usize = shape.iter().product();
    let leading_ones = shape.iter().rev().skip(1).all(|&d| d == 1);
    leading_ones && (count == n || count == 1)
}
