//! Core ML has no 64-bit integers: int64 inputs, constants and results become int32.
//!
//! Inputs are published as int32 (token ids and the like); constants are narrowed with a range
//! check, so an index or shape that does not fit is an error rather than a silent wrap.

use crate::ir::{DType, Graph, Tensor, ValueDef};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};

pub struct NarrowInt64;

impl Pass for NarrowInt64 {
    fn name(&self) -> &'static str {
        "narrow_int64"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        for (value, &used) in graph.values.iter_mut().zip(&uses) {
            if value.ty.dtype != DType::I64 {
                continue;
            }
            let narrowed = match &value.def {
                ValueDef::Input(_) => None,
                ValueDef::Const(t) if used > 0 => Some(narrow(t).ok_or_else(|| PassError {
                    pass: "narrow_int64",
                    origin: String::new(),
                    message: format!("constant {:?} holds values outside the int32 range", value.name),
                })?),
                _ => continue,
            };
            value.ty.dtype = DType::I32;
            if let Some(t) = narrowed {
                value.def = ValueDef::Const(t);
            }
        }
        for &id in &graph.order.clone() {
            let node = graph.node_mut(id);
            if node.op == (Op::Cast { to: DType::I64 }) {
                node.op = Op::Cast { to: DType::I32 };
            }
            let node = graph.node(id);
            let types: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
            let inferred = node.op.infer(&types).map_err(|e| PassError {
                pass: "narrow_int64",
                origin: node.origin.clone(),
                message: e.0,
            })?;
            for (out, ty) in node.outputs.clone().into_iter().zip(inferred) {
                graph.value_mut(out).ty = ty;
            }
        }
        // Casts to int64 of values that were int32 all along (ArgMax's result) are now no-ops.
        let no_ops: Vec<_> = graph
            .order
            .iter()
            .copied()
            .filter(|&id| {
                let node = graph.node(id);
                matches!(node.op, Op::Cast { .. }) && graph.ty(node.inputs[0]) == graph.ty(node.outputs[0])
            })
            .collect();
        for &id in &no_ops {
            let (input, output) = (graph.node(id).inputs[0], graph.node(id).outputs[0]);
            graph.replace_all_uses(output, input);
        }
        graph.remove_nodes(&no_ops);
        Ok(())
    }
}

fn narrow(t: &Tensor) -> Option<Tensor> {
    let values = t.to_i64_vec();
    let narrowed: Option<Vec<i32>> = values.iter().map(|&v| i32::try_from(v).ok()).collect();
    Some(Tensor::from_i32(t.ty.shape.clone(), &narrowed?))
}
