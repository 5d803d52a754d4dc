//! What MIL ops and blocks read by name. An op reads its bound parameters and, if it is control
//! flow (`cond`, `while_loop`), whatever its blocks read from the enclosing scope: MIL blocks
//! capture outer values by name rather than taking them as inputs.

use crate::proto::coreml::mil_spec::{argument::binding, Block, Operation};
use std::collections::HashSet;

/// Every name `op` reads: its bound parameters in parameter order, then its blocks' captures.
pub fn op_reads(op: &Operation) -> impl Iterator<Item = &str> {
    let captured: Vec<&str> = op.blocks.iter().flat_map(block_reads).collect();
    op.inputs
        .values()
        .flat_map(|a| {
            a.arguments.iter().filter_map(|b| match &b.binding {
                Some(binding::Binding::Name(n)) => Some(n.as_str()),
                _ => None,
            })
        })
        .chain(captured)
}

/// The names `block` reads from its enclosing scope, first read first: what its ops (and their
/// blocks, at any depth) read and its outputs name, less what it defines (its inputs and its
/// ops' results).
pub fn block_reads(block: &Block) -> Vec<&str> {
    let mut defined: HashSet<&str> = block.inputs.iter().map(|i| i.name.as_str()).collect();
    defined.extend(
        block
            .operations
            .iter()
            .flat_map(|op| op.outputs.iter().map(|o| o.name.as_str())),
    );
    let mut seen = HashSet::new();
    block
        .operations
        .iter()
        .flat_map(op_reads)
        .chain(block.outputs.iter().map(String::as_str))
        .filter(|name| !defined.contains(name) && seen.insert(*name))
        .collect()
}
