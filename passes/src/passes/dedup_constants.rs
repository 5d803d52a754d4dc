//! Constants with identical type, shape and bytes become one value, so the weight file stores
//! them once (GPT-2's tied token embedding: the Gather table and the LM head's weight, once
//! `fuse_linear` has put the latter in `[N, K]` form, are the same 38.6 M values).
//!
//! Constants are grouped by type first, and only groups of two or more are hashed, then
//! compared byte for byte: most weights are never read, and none is read more than twice.
//! The first constant of a group (in value order) is the one kept, so output is deterministic.

use crate::ir::{Graph, ValueDef, ValueId};
use crate::pass::{Pass, PassError, PassOptions};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

pub struct DedupConstants;

impl Pass for DedupConstants {
    fn name(&self) -> &'static str {
        "dedup_constants"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut by_type: HashMap<&crate::ir::TensorType, Vec<ValueId>> = HashMap::new();
        let uses = graph.use_counts();
        for (i, value) in graph.values.iter().enumerate() {
            if matches!(value.def, ValueDef::Const(_)) && uses[i] > 0 {
                by_type.entry(&value.ty).or_default().push(ValueId(i as u32));
            }
        }
        let mut replace: Vec<Option<ValueId>> = vec![None; graph.values.len()];
        let mut duplicate_bytes = 0;
        let mut groups: Vec<Vec<ValueId>> = by_type.into_values().filter(|g| g.len() > 1).collect();
        groups.sort();
        for group in groups {
            // Canonical constants seen so far in this group, by content hash.
            let mut kept: HashMap<u64, Vec<ValueId>> = HashMap::new();
            for v in group {
                let Some(data) = graph.constant(v).map(|t| &t.data) else {
                    continue;
                };
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                data.hash(&mut hasher);
                let candidates = kept.entry(hasher.finish()).or_default();
                let same = candidates
                    .iter()
                    .copied()
                    .find(|&c| graph.constant(c).is_some_and(|t| t.data == *data));
                match same {
                    Some(c) => {
                        replace[v.index()] = Some(c);
                        duplicate_bytes += data.len();
                    }
                    None => candidates.push(v),
                }
            }
        }
        let merged = replace.iter().filter(|r| r.is_some()).count();
        if merged == 0 {
            return Ok(());
        }
        for &n in &graph.order {
            for input in &mut graph.nodes[n.index()].inputs {
                if let Some(to) = replace[input.index()] {
                    *input = to;
                }
            }
        }
        for out in &mut graph.outputs {
            if let Some(to) = replace[out.value.index()] {
                out.value = to;
            }
        }
        graph.count_rewrites("duplicate constants merged", merged);
        graph.count_rewrites("duplicate constant bytes dropped", duplicate_bytes);
        Ok(())
    }
}
