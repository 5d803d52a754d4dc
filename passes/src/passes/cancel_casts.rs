//! A cast to a wider type and straight back (`f16 → f32 → f16`, `i32 → i64 → i32`, `bool →
//! i32 → bool`, ...) is the identity: the pair is removed. A cast through a narrower type
//! (`f32 → f16 → f32` rounds) stays.

use crate::ir::{DType, Graph, ValueDef};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};

pub struct CancelCasts;

impl Pass for CancelCasts {
    fn name(&self) -> &'static str {
        "cancel_casts"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut cancelled = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Op::Cast { to } = node.op else {
                return Ok::<_, PassError>(None);
            };
            let Some(inner) = graph.producer(node.inputs[0]).map(|n| graph.node(n)) else {
                return Ok(None);
            };
            let Op::Cast { to: via } = inner.op else {
                return Ok(None);
            };
            let source = inner.inputs[0];
            let from = graph.ty(source).dtype;
            if from != to || !holds_every_value_of(via, from) {
                return Ok(None);
            }
            // Keep a defining op for a published output read straight from an input.
            let output = node.outputs[0];
            if graph.is_graph_output(output)
                && (matches!(graph.value(source).def, ValueDef::Input(_)) || graph.is_graph_output(source))
            {
                return Ok(None);
            }
            if graph.is_graph_output(output) {
                let name = graph.value(output).name.clone();
                graph.value_mut(source).name = name;
            }
            cancelled += 1;
            Ok(Some(vec![source]))
        })?;
        graph.count_rewrites("cast pairs cancelled", cancelled);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}

/// Whether every value of `narrow` survives a cast to `wide` unchanged.
fn holds_every_value_of(wide: DType, narrow: DType) -> bool {
    use DType::*;
    match (wide, narrow) {
        (w, n) if w == n => true,
        (_, Bool) => true,
        (F32, F16) => true,
        (I64, I32 | I8 | U8) | (I32, I8 | U8) => true,
        (F32 | F16, I8 | U8) => true,
        _ => false,
    }
}
