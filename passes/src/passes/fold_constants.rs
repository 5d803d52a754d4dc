//! Evaluate nodes whose inputs are all constants and replace their outputs by constants.

use crate::eval;
use crate::ir::{Graph, NodeId, Tensor, ValueDef};
use crate::pass::{Pass, PassError, PassOptions};

pub struct FoldConstants;

/// Results larger than this stay as ops: folding them would only grow the weight file.
const MAX_FOLDED_ELEMENTS: usize = 1 << 26;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold_constants"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let folded: Vec<NodeId> = graph
            .order
            .clone()
            .into_iter()
            .filter(|&id| fold_node(graph, id))
            .collect();
        graph.remove_nodes(&folded);
        Ok(())
    }
}

/// If every input of `id` is a constant and the evaluator knows its op, turn its outputs into
/// constants and return true; the caller then drops the node from `order`. The front end uses
/// this too, so importers already see constants where a later pass would fold them.
pub fn fold_node(graph: &mut Graph, id: NodeId) -> bool {
    let node = graph.node(id);
    if !eval::can_evaluate(&node.op) {
        return false;
    }
    let inputs: Option<Vec<&Tensor>> = node.inputs.iter().map(|&v| graph.constant(v)).collect();
    let Some(inputs) = inputs else { return false };
    let out_types: Vec<_> = node.outputs.iter().map(|&o| graph.ty(o).clone()).collect();
    if out_types.iter().map(|t| t.num_elements()).sum::<usize>() > MAX_FOLDED_ELEMENTS {
        return false;
    }
    let bytes: usize = out_types
        .iter()
        .map(|t| t.num_elements() * t.dtype.size_in_bytes())
        .sum();
    if graph.fold_budget.is_some_and(|budget| bytes > budget) {
        return false;
    }
    let Some(results) = eval::evaluate(&node.op, &inputs, &out_types) else {
        return false;
    };
    // A folded weight (a transposed or reshaped initializer) keeps the name of the largest
    // float constant it was computed from; scalars and shape operands are parameters.
    let source = node
        .inputs
        .iter()
        .copied()
        .filter(|&v| graph.ty(v).dtype.is_float() && graph.ty(v).num_elements() > 1)
        .max_by_key(|&v| (graph.ty(v).num_elements(), std::cmp::Reverse(v)));
    for (out, tensor) in node.outputs.clone().into_iter().zip(results) {
        graph.value_mut(out).def = ValueDef::Const(tensor);
        if let Some(source) = source {
            graph.record_derived(out, source);
        }
    }
    if let Some(budget) = &mut graph.fold_budget {
        *budget -= bytes;
    }
    true
}
