//! Control flow. An If whose condition is known at compile time (folded from constants,
//! shapes, or inputs fixed with `--input-value`) is inlined: its taken branch's nodes are
//! imported into the enclosing graph, reading the enclosing scope by name, and the branch's
//! outputs become the If's. A Loop whose trip count and conditions are known at compile time is
//! unrolled (at most 4,096 iterations).
//!
//! Otherwise they stay control flow, decided at run time: an If becomes an IR `if` (MIL `cond`)
//! with both branches as regions, and a Loop an IR `while_loop` (MIL `while_loop`) whose loop
//! variables are the iteration number, the condition and the loop-carried values
//! ([`super::regions`] imports the bodies). Core ML values have static types, so the branches
//! must give one type per output, a loop-carried value must keep its type, and a loop decided
//! at run time can have no scan outputs (their length would be known only at run time).

use super::import::{import_nodes, nested_graphs, node_error, ImportState};
use super::regions::{captures, free_names, import_region, import_subgraph};
use super::tensor;
use crate::error::{Error, Result};
use crate::proto::onnx::{GraphProto, NodeProto};
use edgec_passes::ir::{DType, Tensor, TensorType, ValueId};
use edgec_passes::op::{CompareOp, IfAttrs, LogicalOp, Op, Region, WhileAttrs};

/// The value bound to `name`, or an error naming `node`.
fn bound(state: &ImportState<'_>, node: &NodeProto, name: &str, what: &str) -> Result<ValueId> {
    state
        .env
        .get(name)
        .copied()
        .ok_or_else(|| node_error(state.model, node, format!("{what} {name:?} is not defined")))
}

/// `v` as a bool scalar (ONNX conditions may be one-element tensors of any rank).
fn bool_scalar(state: &mut ImportState<'_>, node: &NodeProto, v: ValueId, what: &str) -> Result<ValueId> {
    let ty = state.graph.ty(v).clone();
    if ty.dtype != DType::Bool || ty.num_elements() != 1 {
        return Err(node_error(
            state.model,
            node,
            format!("its {what} must be one bool, got {ty}"),
        ));
    }
    if ty.rank() == 0 {
        return Ok(v);
    }
    let name = format!("{}_scalar", state.graph.value(v).name);
    let out = state
        .graph
        .add_node(Op::Reshape { shape: vec![] }, vec![v], &[name], node.name.clone())
        .map_err(|e| node_error(state.model, node, e.0))?;
    Ok(out[0])
}

pub(super) fn import_if(state: &mut ImportState<'_>, node: &NodeProto) -> Result<()> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let cond_name = node
        .input
        .first()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| node_err("needs a condition (input 0)".into()))?;
    let cond = bound(state, node, cond_name, "condition")?;
    let Some(value) = state.graph.constant(cond).cloned() else {
        return runtime_if(state, node, cond);
    };
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

/// An If decided at run time: both branches become regions taking the same values.
fn runtime_if(state: &mut ImportState<'_>, node: &NodeProto, cond: ValueId) -> Result<()> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let branch = |name: &str| {
        node.attribute
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.g.as_ref())
            .ok_or_else(|| node_err(format!("has no {name}")))
    };
    let (then_proto, else_proto) = (branch("then_branch")?, branch("else_branch")?);
    let cond = bool_scalar(state, node, cond, "condition")?;
    let mut free = free_names(then_proto);
    for name in free_names(else_proto) {
        if !free.contains(&name) {
            free.push(name);
        }
    }
    let passed = captures(state, &free);
    let from = inputs_behind(state.graph, cond);
    let then_branch = import_branch(state, node, then_proto, "then", &passed, &free, &from)?;
    let else_branch = import_branch(state, node, else_proto, "else", &passed, &free, &from)?;
    // Core ML's cond gives one static type per output, whichever branch runs.
    for (k, (a, b)) in then_branch
        .output_types()
        .iter()
        .zip(else_branch.output_types())
        .enumerate()
    {
        if *a != b {
            return Err(node_err(format!(
                "its condition{from} is computed at run time and output {k} ({:?}) is {a} in the then branch but {b} in the else branch; Core ML's cond needs one static type (fix the inputs the condition depends on with --input-value to inline the If)",
                node.output[k]
            )));
        }
    }
    let mut inputs = vec![cond];
    inputs.extend(passed.iter().map(|(_, v)| *v));
    let op = Op::If(IfAttrs {
        then_branch,
        else_branch,
    });
    let outputs = state
        .graph
        .add_node(op, inputs, &node.output, node.name.clone())
        .map_err(|e| node_err(e.0))?;
    for (name, mut value) in node.output.iter().zip(outputs) {
        // An empty output has one possible value: edgec keeps empty values only as constants.
        let ty = state.graph.ty(value).clone();
        if ty.num_elements() == 0 {
            value = state.graph.add_const(name.clone(), Tensor::empty(ty));
        }
        if !name.is_empty() {
            state.env.insert(name.clone(), value);
        }
    }
    Ok(())
}

/// The model inputs `value` is computed from, for messages: "(from input \"sr\")".
fn inputs_behind(graph: &edgec_passes::ir::Graph, value: ValueId) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![value];
    let mut names = Vec::new();
    while let Some(v) = pending.pop() {
        if !seen.insert(v) {
            continue;
        }
        match &graph.value(v).def {
            edgec_passes::ir::ValueDef::Input(_) => names.push(format!("{:?}", graph.value(v).name)),
            edgec_passes::ir::ValueDef::Node { node, .. } => pending.extend(&graph.node(*node).inputs),
            edgec_passes::ir::ValueDef::Const(_) => {}
        }
    }
    match names.len() {
        0 => String::new(),
        1 => format!(" (from input {})", names[0]),
        _ => format!(" (from inputs {})", names.join(", ")),
    }
}

/// One branch of a run-time If as a region taking `passed`.
fn import_branch(
    state: &mut ImportState<'_>,
    node: &NodeProto,
    proto: &GraphProto,
    which: &str,
    passed: &[(String, ValueId)],
    free: &[String],
    from: &str,
) -> Result<Region> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let label = if node.name.is_empty() { "if" } else { node.name.as_str() };
    let region = import_region(state, format!("{label}/{which}"), &[], passed, free, |inner| {
        import_subgraph(inner, proto)
    })
    .map_err(|e| {
        let inner = e.to_string();
        let prefix = format!("{}: ", model.path.display());
        let e = inner.strip_prefix(&prefix).unwrap_or(&inner);
        node_err(format!(
            "its condition {:?}{from} is computed at run time, so both branches are compiled, and its {which} branch does not compile: {e} (fix the input the condition depends on, such as a sample rate, with --input-value to compile only the branch taken)",
            node.input.first().map_or("", String::as_str)
        ))
    })?;
    if region.outputs.len() != node.output.len() {
        return Err(node_err(format!(
            "its {which} branch has {} outputs, the If {}",
            region.outputs.len(),
            node.output.len()
        )));
    }
    Ok(Region::new(region))
}

/// The most iterations edgec unrolls a Loop into, and the most body nodes it imports in all.
const MAX_LOOP_STEPS: usize = 4096;
const MAX_UNROLLED_NODES: usize = 100_000;

/// A Loop: unrolled when its trip count and conditions turn out to be known at compile time,
/// else a `while_loop`. Unrolling imports the body iteration by iteration until it learns
/// otherwise, so a failed attempt is rolled back first.
pub(super) fn import_loop(state: &mut ImportState<'_>, node: &NodeProto) -> Result<()> {
    let checkpoint = Checkpoint::take(state);
    match unroll_loop(state, node)? {
        Unrolled::Done => Ok(()),
        Unrolled::NotStatic(why) => {
            checkpoint.restore(state);
            runtime_loop(state, node, &why)
        }
    }
}

/// How far the graph and the environment had got, to undo an abandoned unrolling. Import only
/// appends to the arenas, so truncating them undoes it.
struct Checkpoint {
    values: usize,
    nodes: usize,
    order: usize,
    warnings: usize,
    env: std::collections::HashMap<String, ValueId>,
    prequantized: std::collections::BTreeMap<String, edgec_passes::compressed::Prequantized>,
}

impl Checkpoint {
    fn take(state: &ImportState<'_>) -> Self {
        Checkpoint {
            values: state.graph.values.len(),
            nodes: state.graph.nodes.len(),
            order: state.graph.order.len(),
            warnings: state.graph.warnings.len(),
            env: state.env.clone(),
            prequantized: state.graph.prequantized.clone(),
        }
    }

    fn restore(self, state: &mut ImportState<'_>) {
        let graph = &mut *state.graph;
        graph.values.truncate(self.values);
        graph.nodes.truncate(self.nodes);
        graph.order.truncate(self.order);
        graph.warnings.truncate(self.warnings);
        graph.prequantized = self.prequantized;
        *state.env = self.env;
    }
}

enum Unrolled {
    Done,
    /// Something the unrolling needs is computed at run time, or it would run too long: why.
    NotStatic(String),
}

/// A Loop unrolled: the body is imported once per iteration, with the iteration number and
/// condition as constants and the loop-carried values of the previous iteration; scan outputs
/// are stacked along a new first axis.
fn unroll_loop(state: &mut ImportState<'_>, node: &NodeProto) -> Result<Unrolled> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let body = loop_body(state, node)?;
    let input = |i: usize| node.input.get(i).filter(|n| !n.is_empty());
    let known = |state: &ImportState<'_>, name: &String| -> Result<Option<Vec<i64>>> {
        let v = bound(state, node, name, "operand")?;
        Ok(state.graph.constant(v).map(|t| t.to_i64_vec()))
    };
    let trip_count = match input(0) {
        Some(m) => match known(state, m)? {
            Some(m) => Some(m.first().copied().unwrap_or(0).max(0) as usize),
            None => {
                return Ok(Unrolled::NotStatic(format!(
                    "its trip count {m:?} is computed at run time"
                )))
            }
        },
        None => None,
    };
    let mut keep_going = match input(1) {
        Some(c) => match known(state, c)? {
            Some(c) => c.first().is_some_and(|&c| c != 0),
            None => {
                return Ok(Unrolled::NotStatic(format!(
                    "its condition {c:?} is computed at run time"
                )))
            }
        },
        None => true,
    };
    let carried_count = node.input.len().saturating_sub(2);
    let scan_count = body.output.len() - 1 - carried_count;
    let mut carried: Vec<ValueId> = (2..node.input.len())
        .map(|i| bound(state, node, &node.input[i], "input"))
        .collect::<Result<_>>()?;
    load_initializers(state, body)?;
    let produced = produced_names(body);
    let body_nodes = produced.len().max(1);
    let mut scans: Vec<Vec<ValueId>> = vec![Vec::new(); scan_count];
    let mut step = 0;
    while keep_going && trip_count.is_none_or(|m| step < m) {
        if step >= MAX_LOOP_STEPS || step * body_nodes >= MAX_UNROLLED_NODES {
            if scan_count == 0 {
                return Ok(Unrolled::NotStatic(format!(
                    "it runs more than {MAX_LOOP_STEPS} iterations"
                )));
            }
            return Err(node_err(format!(
                "it runs more than {step} iterations, beyond what edgec unrolls ({MAX_LOOP_STEPS} iterations, {MAX_UNROLLED_NODES} body nodes in all), and has scan outputs, which a Core ML while_loop cannot give"
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
        let output = |state: &ImportState<'_>, k: usize| bound(state, node, &body.output[k].name, "body output");
        keep_going = match known(state, &body.output[0].name)? {
            Some(c) => c.first().is_some_and(|&c| c != 0),
            None => {
                let why = format!("its body's condition {:?} is computed at run time", body.output[0].name);
                return Ok(Unrolled::NotStatic(why));
            }
        };
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
    Ok(Unrolled::Done)
}

/// The Loop's body, checked against its operands.
fn loop_body<'p>(state: &ImportState<'_>, node: &'p NodeProto) -> Result<&'p GraphProto> {
    let node_err = |message: String| node_error(state.model, node, message);
    let body = node
        .attribute
        .iter()
        .find(|a| a.name == "body")
        .and_then(|a| a.g.as_ref())
        .ok_or_else(|| node_err("has no body".into()))?;
    let carried_count = node.input.len().saturating_sub(2);
    if body.input.len() != carried_count + 2 || body.output.len() < carried_count + 1 {
        return Err(node_err(format!(
            "its body takes {} inputs and gives {} outputs, for {carried_count} loop-carried values",
            body.input.len(),
            body.output.len()
        )));
    }
    Ok(body)
}

/// What bounds a run-time Loop's iterations.
enum TripCount {
    Unlimited,
    /// A constant trip count (int64 scalar).
    Fixed(Tensor),
    /// One computed at run time: the ONNX name of the value.
    RunTime(String),
}

/// A Loop decided at run time, as a `while_loop` over (iteration, condition, carried values).
/// Its condition region tests `condition && iteration < trip count` (ONNX tests both before
/// each iteration, as MIL tests its condition); its body region runs the ONNX body and counts.
fn runtime_loop(state: &mut ImportState<'_>, node: &NodeProto, why: &str) -> Result<()> {
    let model = state.model;
    let node_err = |message: String| node_error(model, node, message);
    let body = loop_body(state, node)?;
    let carried_count = node.input.len().saturating_sub(2);
    if body.output.len() > carried_count + 1 {
        return Err(node_err(format!(
            "{why}, so it would be a Core ML while_loop, and it has scan outputs: their length would be known only at run time, and Core ML values have static shapes (fix the inputs its trip count and conditions depend on with --input-value to unroll it)"
        )));
    }
    let input = |i: usize| node.input.get(i).filter(|n| !n.is_empty());
    let trip_count = input(0).map(|m| bound(state, node, m, "trip count")).transpose()?;
    let condition = match input(1) {
        Some(c) => {
            let c = bound(state, node, c, "condition")?;
            bool_scalar(state, node, c, "condition")?
        }
        None => state.graph.add_const(
            format!("{}_always", node.name),
            Tensor::from_i64(Vec::<usize>::new(), &[1]).cast(DType::Bool),
        ),
    };
    let start = state.graph.add_const(
        format!("{}_start", node.name),
        Tensor::from_i64(Vec::<usize>::new(), &[0]),
    );
    let mut vars = vec![start, condition];
    for name in &node.input[2..] {
        vars.push(bound(state, node, name, "loop-carried input")?);
    }
    // The loop variables, under the names the body reads them by.
    let params: Vec<(String, TensorType)> = body
        .input
        .iter()
        .zip(&vars)
        .map(|(i, &v)| (i.name.clone(), state.graph.ty(v).clone()))
        .collect();
    if let Some((name, ty)) = params.iter().find(|(_, ty)| ty.num_elements() == 0) {
        return Err(node_err(format!(
            "{why}, so it would be a Core ML while_loop, and its loop-carried value {name:?} is empty ({ty}): Core ML has no zero-sized tensors"
        )));
    }
    let (iteration_name, condition_name) = (params[0].0.clone(), params[1].0.clone());
    let free = free_names(body);
    let mut passed = captures(state, &free);
    // The trip count, clamped to what the int32 counter can reach (INT64_MAX: "no limit"), or
    // computed at run time and passed to both regions under a name no ONNX body reads (a body
    // may name its own values as the outer scope's).
    const TRIP_COUNT: &str = "\0trip count";
    let trip = match trip_count {
        None => TripCount::Unlimited,
        Some(m) => match state.graph.constant(m) {
            Some(t) => {
                let limit = t.to_i64_vec().first().copied().unwrap_or(0).clamp(0, i32::MAX as i64);
                TripCount::Fixed(Tensor::from_i64(Vec::<usize>::new(), &[limit]))
            }
            None => {
                passed.push((TRIP_COUNT.to_string(), m));
                TripCount::RunTime(node.input[0].clone())
            }
        },
    };
    let label = if node.name.is_empty() {
        "loop"
    } else {
        node.name.as_str()
    };
    let origin = node.name.clone();

    // One op of the loop's own making (the count, the test) in a region, named after the Loop.
    let emit = |graph: &mut edgec_passes::ir::Graph, op: Op, inputs: Vec<ValueId>, name: String| {
        graph
            .add_node(op, inputs, &[name], origin.clone())
            .map(|out| out[0])
            .map_err(|e| node_error(model, node, e.0))
    };

    let cond_region = import_region(state, format!("{label}/cond"), &params, &passed, &free, |inner| {
        let (i, c) = (inner.env[&iteration_name], inner.env[&condition_name]);
        let m = match &trip {
            TripCount::Unlimited => return Ok(vec![("keep_going".into(), c)]),
            TripCount::Fixed(limit) => inner.graph.add_const("trip_count", limit.clone()),
            TripCount::RunTime(name) => {
                let m = inner.env[TRIP_COUNT];
                if inner.graph.ty(m).rank() == 0 {
                    m
                } else {
                    emit(
                        inner.graph,
                        Op::Reshape { shape: vec![] },
                        vec![m],
                        format!("{name}_scalar"),
                    )?
                }
            }
        };
        let below = emit(
            inner.graph,
            Op::Compare(CompareOp::Less),
            vec![i, m],
            "below_trip_count".into(),
        )?;
        let keep = emit(
            inner.graph,
            Op::Logical(LogicalOp::And),
            vec![c, below],
            "keep_going".into(),
        )?;
        Ok(vec![("keep_going".into(), keep)])
    })?;

    let body_region = import_region(state, format!("{label}/body"), &params, &passed, &free, |inner| {
        let outputs = import_subgraph(inner, body)?;
        let i = inner.env[&iteration_name];
        let one = inner
            .graph
            .add_const("one", Tensor::from_i64(Vec::<usize>::new(), &[1]));
        let add = Op::Binary(edgec_passes::op::BinaryOp::Add);
        let next = emit(inner.graph, add, vec![i, one], format!("{iteration_name}_next"))?;
        let keep = bool_scalar(inner, node, outputs[0].1, "body's condition")?;
        let mut next_vars = vec![("iteration".to_string(), next), (outputs[0].0.clone(), keep)];
        next_vars.extend(outputs[1..].iter().cloned());
        Ok(next_vars)
    })?;
    // Core ML's while_loop keeps each loop variable's type.
    for (k, (before, after)) in params.iter().zip(body_region.outputs.iter()).enumerate().skip(2) {
        let after_ty = body_region.ty(after.value);
        if &before.1 != after_ty {
            return Err(node_err(format!(
                "loop-carried value {:?} is {} on entry but the body gives {after_ty}; a loop decided at run time must keep each value's type (Core ML's while_loop)",
                node.input.get(k).map_or("", String::as_str),
                before.1
            )));
        }
    }
    let mut inputs = vars;
    inputs.extend(passed.iter().map(|(_, v)| *v));
    let mut names = vec![format!("{label}_iterations"), format!("{label}_condition")];
    names.extend(node.output.iter().take(carried_count).cloned());
    let op = Op::While(WhileAttrs {
        cond: Region::new(cond_region),
        body: Region::new(body_region),
        carried: carried_count + 2,
    });
    let outputs = state
        .graph
        .add_node(op, inputs, &names, origin)
        .map_err(|e| node_err(e.0))?;
    for (name, value) in node.output.iter().zip(&outputs[2..]) {
        if !name.is_empty() {
            state.env.insert(name.clone(), *value);
        }
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
pub(super) fn load_initializers(state: &mut ImportState<'_>, graph: &GraphProto) -> Result<()> {
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
