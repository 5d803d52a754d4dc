//! Identical ops on identical inputs become one (common-subexpression elimination): the
//! second `shape → gather` or `transpose` an exporter writes for each use, or the same scale
//! applied twice. Runs after `dedup_constants`, so equal constants are one input already.
//! Every op in the IR is a pure function of its inputs and attributes.

use crate::ir::{Graph, NodeId, ValueId};
use crate::pass::{Pass, PassError, PassOptions};
use std::collections::HashMap;

pub struct EliminateCommonSubexpressions;

impl Pass for EliminateCommonSubexpressions {
    fn name(&self) -> &'static str {
        "eliminate_common_subexpressions"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        // The op's Debug text holds every attribute exactly (floats print round-trip).
        let mut seen: HashMap<(String, Vec<ValueId>), NodeId> = HashMap::new();
        let mut merged = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            // A control-flow op's Debug text would be its whole bodies: such ops are left alone.
            if !node.op.regions().is_empty() {
                return Ok(None);
            }
            let key = (format!("{:?}|{:?}", node.op, node.keep_fp32), node.inputs.clone());
            match seen.get(&key) {
                Some(&first) => {
                    merged += 1;
                    Ok::<_, PassError>(Some(graph.node(first).outputs.clone()))
                }
                None => {
                    seen.insert(key, id);
                    Ok(None)
                }
            }
        })?;
        graph.count_rewrites("common subexpressions merged", merged);
        Ok(())
    }
}
