//! Control flow: an If whose condition is known at compile time (folded from constants, shapes,
//! or inputs fixed with `--input-value`) is inlined: its taken branch's nodes are imported into
//! the enclosing graph, reading the enclosing scope by name, and the branch's outputs become the
//! If's. An If decided at run time is refused, naming what its condition depends on: Core ML's
//! `cond` is not emitted yet.

use super::import::{import_nodes, ImportState};
use super::tensor;
use crate::error::{Error, Result};
use crate::proto::onnx::NodeProto;

pub(super) fn inline_if(state: &mut ImportState<'_>, node: &NodeProto) -> Result<()> {
    let node_err = |message: String| Error::Node {
        path: state.model.path.clone(),
        node: node.name.clone(),
        op: node.op_type.clone(),
        message,
    };
    let cond_name = node
        .input
        .first()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| node_err("needs a condition (input 0)".into()))?;
    let cond = *state
        .env
        .get(cond_name)
        .ok_or_else(|| node_err(format!("condition {cond_name:?} is not defined")))?;
    let value = state.graph.constant(cond).ok_or_else(|| {
        node_err(format!(
            "its condition {cond_name:?} is computed at run time; edgec inlines an If only when the condition is known at compile time (fix the inputs it depends on with --input-value or --input-shape)"
        ))
    })?;
    let flags = value.to_i64_vec();
    let [flag] = flags[..] else {
        return Err(node_err(format!("its condition must hold one value, got {}", value.ty)));
    };
    let branch_name = if flag != 0 { "then_branch" } else { "else_branch" };
    let branch = node
        .attribute
        .iter()
        .find(|a| a.name == branch_name)
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| node_err(format!("has no {branch_name}")))?;
    for init in &branch.initializer {
        let t = tensor::to_tensor(init, state.external).map_err(|message| Error::Initializer {
            path: state.model.path.clone(),
            tensor: init.name.clone(),
            message,
        })?;
        let id = state.graph.add_const(init.name.clone(), t);
        state.env.insert(init.name.clone(), id);
    }
    import_nodes(state, branch)?;
    if branch.output.len() != node.output.len() {
        return Err(node_err(format!(
            "its {branch_name} has {} outputs, the If {}",
            branch.output.len(),
            node.output.len()
        )));
    }
    for (out, name) in branch.output.iter().zip(&node.output) {
        let value = *state
            .env
            .get(&out.name)
            .ok_or_else(|| node_err(format!("{branch_name} output {:?} is produced by no node", out.name)))?;
        if !name.is_empty() {
            state.env.insert(name.clone(), value);
        }
    }
    Ok(())
}
