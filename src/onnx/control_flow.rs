//! Control flow. A Loop whose trip count and conditions are known at compile time is unrolled
//! (at most 4,096 iterations). An If whose condition is known at compile time (folded from constants, shapes,
//! or inputs fixed with `--input-value`) is inlined: its taken branch's nodes are imported into
//! the enclosing graph, reading the enclosing scope by name, and the branch's outputs become the
//! If's. An If decided at run time is refused, naming what its condition depends on: Core ML's
//! `cond` is not emitted yet.

use super::import::{import_nodes, nested_graphs, node_error, ImportState};
use super::tensor;
use crate::error::{Error, Result};
use crate::proto::onnx::{GraphProto, NodeProto};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::Op;

/// The value of `node`'s operand `name` (its `what`), which must be a constant by now; `needs`
/// says what compile-time knowledge the op needs, for the error when it is not.
fn known(state: &ImportState<'_>, node: &NodeProto, name: &str, what: &str, needs: &str) -> Result<Tensor> {
    let v = *state
        .env
        .get(name)
        .ok_or_else(|| node_error(state.model, node, format!("{what} {name:?} is not defined")))?;
    let t = state.graph.constant(v).ok_or_else(|| {
        node_error(
            state.model,
            node,
            format!("its {what} {name:?} is computed at run time; {needs}"),
        )
    })?;
    Ok(t.clone())
}

pub(super) fn inline_if(state: &mut ImportState<'_>, node: &NodeProto) -> Result<()> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let cond_name = node
        .input
        .first()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| node_err("needs a condition (input 0)".into()))?;
    let value = known(
        state,
        node,
        cond_name,
        "condition",
        "edgec inlines an If only when the condition is known at compile time (fix the inputs it depends on with --input-value or --input-shape)",
    )?;
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
    load_initializers(state, branch)?;
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

/// The most iterations edgec unrolls a Loop into, and the most body nodes it imports in all.
const MAX_LOOP_STEPS: usize = 4096;
const MAX_UNROLLED_NODES: usize = 100_000;

/// A Loop whose trip count and conditions are known at compile time, unrolled: the body is
/// imported once per iteration, with the iteration number and condition as constants and the
/// loop-carried values of the previous iteration; scan outputs are stacked along a new first
/// axis. A loop that would run on a condition computed at run time is refused.
pub(super) fn unroll_loop(state: &mut ImportState<'_>, node: &NodeProto) -> Result<()> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let body = node
        .attribute
        .iter()
        .find(|a| a.name == "body")
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| node_err("has no body".into()))?;
    let input = |i: usize| node.input.get(i).filter(|n| !n.is_empty());
    let known = |state: &ImportState<'_>, name: &String, what: &str| {
        let needs = "edgec unrolls a Loop only when its trip count and condition are known at compile time";
        known(state, node, name, what, needs).map(|t| t.to_i64_vec())
    };
    let trip_count = match input(0) {
        Some(m) => Some(known(state, m, "trip count")?.first().copied().unwrap_or(0).max(0) as usize),
        None => None,
    };
    let mut keep_going = match input(1) {
        Some(c) => known(state, c, "condition")?.first().is_some_and(|&c| c != 0),
        None => true,
    };
    let carried_count = node.input.len().saturating_sub(2);
    if body.input.len() != carried_count + 2 || body.output.len() < carried_count + 1 {
        return Err(node_err(format!(
            "its body takes {} inputs and gives {} outputs, for {carried_count} loop-carried values",
            body.input.len(),
            body.output.len()
        )));
    }
    let scan_count = body.output.len() - 1 - carried_count;
    let mut carried: Vec<ValueId> = (2..node.input.len())
        .map(|i| {
            state
                .env
                .get(&node.input[i])
                .copied()
                .ok_or_else(|| node_err(format!("input {:?} is not defined", node.input[i])))
        })
        .collect::<Result<_>>()?;
    load_initializers(state, body)?;
    let produced = produced_names(body);
    let body_nodes = produced.len().max(1);
    let mut scans: Vec<Vec<ValueId>> = vec![Vec::new(); scan_count];
    let mut step = 0;
    while keep_going && trip_count.is_none_or(|m| step < m) {
        if step >= MAX_LOOP_STEPS || step * body_nodes >= MAX_UNROLLED_NODES {
            return Err(node_err(format!(
                "it runs more than {step} iterations, beyond what edgec unrolls ({MAX_LOOP_STEPS} iterations, {MAX_UNROLLED_NODES} body nodes in all)"
            )));
        }
        // Each iteration binds the body's names afresh.
        for name in &produced {
            state.env.remove(name);
        }
        let iteration = state.graph.add_const(
            body.input[0].name.clone(),
            Tensor::from_i64(Vec::<usize>::new(), &[step as i64]),
        );
        let condition = state.graph.add_const(
            body.input[1].name.clone(),
            Tensor::from_i64(Vec::<usize>::new(), &[1]).cast(DType::Bool),
        );
        state.env.insert(body.input[0].name.clone(), iteration);
        state.env.insert(body.input[1].name.clone(), condition);
        for (value, input) in carried.iter().zip(&body.input[2..]) {
            state.env.insert(input.name.clone(), *value);
        }
        import_nodes(state, body)?;
        let output = |state: &ImportState<'_>, k: usize| {
            state
                .env
                .get(&body.output[k].name)
                .copied()
                .ok_or_else(|| node_err(format!("body output {:?} is produced by no node", body.output[k].name)))
        };
        let next_condition = &body.output[0].name;
        keep_going = known(state, next_condition, "body's condition")?
            .first()
            .is_some_and(|&c| c != 0);
        carried = (0..carried_count)
            .map(|k| output(state, 1 + k))
            .collect::<Result<_>>()?;
        for (k, scan) in scans.iter_mut().enumerate() {
            scan.push(output(state, 1 + carried_count + k)?);
        }
        step += 1;
    }
    for (value, name) in carried.iter().zip(&node.output) {
        if !name.is_empty() {
            state.env.insert(name.clone(), *value);
        }
    }
    for (k, scan) in scans.into_iter().enumerate() {
        let Some(name) = node.output.get(carried_count + k).filter(|n| !n.is_empty()) else {
            continue;
        };
        if scan.is_empty() {
            return Err(node_err(format!(
                "scan output {name:?} would be empty: the loop runs no iteration"
            )));
        }
        let stacked = stack(state, &scan, name).map_err(node_err)?;
        state.env.insert(name.clone(), stacked);
    }
    Ok(())
}

/// The names `graph`'s nodes (and their subgraphs' nodes) produce.
fn produced_names(graph: &GraphProto) -> Vec<String> {
    nested_graphs([graph])
        .into_iter()
        .flat_map(|g| &g.node)
        .flat_map(|n| n.output.iter().filter(|o| !o.is_empty()).cloned())
        .collect()
}

/// `values` (one per iteration, of one type) stacked along a new first axis, named `name`.
fn stack(state: &mut ImportState<'_>, values: &[ValueId], name: &str) -> std::result::Result<ValueId, String> {
    let ty = state.graph.ty(values[0]).clone();
    let mut lifted_shape = vec![1];
    lifted_shape.extend(&ty.shape);
    let mut lifted = Vec::with_capacity(values.len());
    for &v in values {
        if state.graph.ty(v) != &ty {
            return Err(format!("scan output {name:?} changes type between iterations"));
        }
        let out = state
            .graph
            .add_node(
                Op::Reshape {
                    shape: lifted_shape.clone(),
                },
                vec![v],
                &[format!("{name}_step")],
                name.to_string(),
            )
            .map_err(|e| e.0)?;
        lifted.push(out[0]);
    }
    if lifted.len() == 1 {
        let out = state
            .graph
            .add_node(Op::Identity, lifted, &[name.to_string()], name.to_string())
            .map_err(|e| e.0)?;
        return Ok(out[0]);
    }
    let out = state
        .graph
        .add_node(Op::Concat { axis: 0 }, lifted, &[name.to_string()], name.to_string())
        .map_err(|e| e.0)?;
    Ok(out[0])
}

/// A subgraph's initializers, bound by name (they are constants like the graph's).
fn load_initializers(state: &mut ImportState<'_>, graph: &GraphProto) -> Result<()> {
    for init in &graph.initializer {
        let t = tensor::to_tensor(init, state.external).map_err(|message| Error::Initializer {
            path: state.model.path.clone(),
            tensor: init.name.clone(),
            message,
        })?;
        let id = state.graph.add_const(init.name.clone(), t);
        state.env.insert(init.name.clone(), id);
    }
    Ok(())
}
