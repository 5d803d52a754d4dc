//! Evaluate nodes whose inputs are all constants and replace their outputs by constants.

use crate::eval;
use crate::ir::{Graph, Tensor, ValueDef};
use crate::pass::{Pass, PassError, PassOptions};

pub struct FoldConstants;

/// Results larger than this stay as ops: folding them would only grow the weight file.
const MAX_FOLDED_ELEMENTS: usize = 1 << 26;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold_constants"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut folded = Vec::new();
        for &id in &graph.order.clone() {
            let node = graph.node(id);
            if !eval::can_evaluate(&node.op) {
                continue;
            }
            let inputs: Option<Vec<&Tensor>> = node.inputs.iter().map(|&v| graph.constant(v)).collect();
            let Some(inputs) = inputs else { continue };
            let out_types: Vec<_> = node.outputs.iter().map(|&o| graph.ty(o).clone()).collect();
            if out_types.iter().map(|t| t.num_elements()).sum::<usize>() > MAX_FOLDED_ELEMENTS {
                continue;
            }
            let Some(results) = eval::evaluate(&node.op, &inputs, &out_types) else {
                continue;
            };
            let outputs = node.outputs.clone();
            for (out, tensor) in outputs.into_iter().zip(results) {
                graph.value_mut(out).def = ValueDef::Const(tensor);
            }
            folded.push(id);
        }
        graph.remove_nodes(&folded);
        Ok(())
    }
}
