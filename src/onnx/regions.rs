//! ONNX subgraphs imported as IR regions (the bodies of control flow decided at run time).
//!
//! An ONNX subgraph reads its enclosing scope by name; an IR region is closed (see
//! `edgec_passes::op::control`). So the names a subgraph reads from outside ([`free_names`]) become
//! region inputs, passed in by the op, except constants, which are copied into the region (the
//! importer needs their values: shapes, axes) and cost nothing to copy (their bytes are shared).

use super::import::{import_nodes, ImportState};
use crate::error::Result;
use crate::proto::onnx::GraphProto;
use edgec_passes::ir::{Graph, GraphOutput, TensorType, ValueId};
use std::collections::{HashMap, HashSet};

/// The names `graph` reads from its enclosing scope, first read first: what its nodes, and the
/// subgraphs of its nodes at any depth, read that it does not define (as an input, an
/// initializer or a node output).
pub(super) fn free_names(graph: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    defined.extend(graph.initializer.iter().map(|i| i.name.as_str()));
    defined.extend(graph.node.iter().flat_map(|n| n.output.iter().map(String::as_str)));
    let mut seen = HashSet::new();
    let mut free = Vec::new();
    for node in &graph.node {
        let nested = node
            .attribute
            .iter()
            .flat_map(|a| a.g.iter().chain(&a.graphs))
            .flat_map(free_names);
        for name in node.input.iter().filter(|n| !n.is_empty()).cloned().chain(nested) {
            if !defined.contains(name.as_str()) && seen.insert(name.clone()) {
                free.push(name);
            }
        }
    }
    free
}

/// What a region reads of the enclosing scope: the values behind `free` names that are not
/// constants, in order. Names the scope does not define are left out (importing the body then
/// says which node reads them).
pub(super) fn captures(state: &ImportState<'_>, free: &[String]) -> Vec<(String, ValueId)> {
    free.iter()
        .filter_map(|name| {
            let v = *state.env.get(name)?;
            state.graph.constant(v).is_none().then(|| (name.clone(), v))
        })
        .collect()
}

/// A region named `name` whose inputs are `params` then `captures` (by the names the body reads
/// them under; the params shadow them), with the scope's constants among `free` copied in;
/// `body` imports its nodes into it and returns its outputs.
pub(super) fn import_region(
    state: &mut ImportState<'_>,
    name: String,
    params: &[(String, TensorType)],
    captures: &[(String, ValueId)],
    free: &[String],
    body: impl FnOnce(&mut ImportState<'_>) -> Result<Vec<(String, ValueId)>>,
) -> Result<Graph> {
    let mut graph = Graph::new(name);
    graph.fold_budget = state.graph.fold_budget;
    let mut env: HashMap<String, ValueId> = HashMap::new();
    for name in free {
        if let Some(t) = state.env.get(name).and_then(|&v| state.graph.constant(v)) {
            let copy = graph.add_const(name.clone(), t.clone());
            env.insert(name.clone(), copy);
        }
    }
    let mut inputs = Vec::new();
    for (name, ty) in params {
        inputs.push((name, graph.add_input(name.clone(), ty.clone())));
    }
    for (name, outer) in captures {
        // A reserved name (`\0...`, which no ONNX body reads) shows as the value's own.
        let shown = match name.starts_with('\0') {
            true => state.graph.value(*outer).name.clone(),
            false => name.clone(),
        };
        let input = graph.add_input(shown, state.graph.ty(*outer).clone());
        env.insert(name.clone(), input);
    }
    // A body's own inputs shadow the enclosing scope's names.
    for (name, input) in inputs {
        env.insert(name.clone(), input);
    }
    let used = std::mem::take(&mut state.used);
    let mut inner = ImportState {
        model: state.model,
        opset: state.opset,
        graph: &mut graph,
        env: &mut env,
        external: &mut *state.external,
        used,
    };
    let outputs = body(&mut inner);
    state.used = std::mem::take(&mut inner.used);
    for (name, value) in outputs? {
        graph.outputs.push(GraphOutput { name, value });
    }
    Ok(graph)
}

/// Import `proto`'s initializers and nodes into the region `state` builds; its outputs.
pub(super) fn import_subgraph(state: &mut ImportState<'_>, proto: &GraphProto) -> Result<Vec<(String, ValueId)>> {
    super::control_flow::load_initializers(state, proto)?;
    import_nodes(state, proto)?;
    proto
        .output
        .iter()
        .map(|out| {
            let value = state
                .env
                .get(&out.name)
                .copied()
                .ok_or_else(|| crate::error::Error::Model {
                    path: state.model.path.clone(),
                    message: format!(
                        "subgraph {:?}: output {:?} is produced by no node",
                        proto.name, out.name
                    ),
                })?;
            Ok((out.name.clone(), value))
        })
        .collect()
}
