//! Remove ops that do nothing: identity (and Dropout, which the front end imports as identity),
//! casts to the same type, reshapes to the same shape, and transposes by the identity perm.
//!
//! A node whose output is published as a graph output while its input is a graph input (or is
//! published too) stays, so each published name keeps a defining op.

use crate::ir::{Graph, ValueDef};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};

pub struct EliminateIdentity;

impl Pass for EliminateIdentity {
    fn name(&self) -> &'static str {
        "eliminate_identity"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            if node.inputs.is_empty() {
                return Ok::<_, PassError>(None);
            }
            let (input, output) = (node.inputs[0], node.outputs[0]);
            let no_op = match &node.op {
                Op::Identity => true,
                Op::Cast { to } => *to == graph.ty(input).dtype,
                Op::Reshape { shape } => *shape == graph.ty(input).shape,
                Op::Transpose { perm } => perm.iter().enumerate().all(|(i, &p)| i == p),
                _ => false,
            };
            if !no_op {
                return Ok(None);
            }
            let input_is_published =
                matches!(graph.value(input).def, ValueDef::Input(_)) || graph.is_graph_output(input);
            if graph.is_graph_output(output) && input_is_published {
                return Ok(None);
            }
            if graph.is_graph_output(output) {
                // The input takes over the published name, so the program keeps it.
                let name = graph.value(output).name.clone();
                graph.value_mut(input).name = name;
            }
            Ok(Some(vec![input]))
        })?;
        Ok(())
    }
}
