//! Remove nodes none of whose outputs are used by a live node or a graph output.

use crate::ir::Graph;
use crate::pass::{Pass, PassError, PassOptions};

pub struct DeadCode;

impl Pass for DeadCode {
    fn name(&self) -> &'static str {
        "dead_code"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        remove_dead_nodes(graph);
        Ok(())
    }
}

/// Drop every node whose outputs nothing reads. Pattern passes call it after rewriting, so the
/// intermediates they replaced do not count as uses for the next pass's matching.
pub fn remove_dead_nodes(graph: &mut Graph) {
    {
        let mut uses = graph.use_counts();
        let mut dead = Vec::new();
        // One reverse sweep suffices: a node's users all come after it.
        for &id in graph.order.iter().rev() {
            let node = graph.node(id);
            if node.outputs.iter().all(|o| uses[o.index()] == 0) {
                for i in &node.inputs {
                    uses[i.index()] -= 1;
                }
                dead.push(id);
            }
        }
        graph.remove_nodes(&dead);
    }
}
