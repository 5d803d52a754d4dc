//! An `if` whose condition is a constant by now (folded after import) is replaced by the ops of
//! the branch it takes, reading the `if`'s operands where the branch read its inputs. The front
//! end inlines the Ifs it can decide while importing; this catches those only folding decides.

use crate::ir::{Graph, ValueDef, ValueId};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};

pub struct InlineKnownBranches;

impl Pass for InlineKnownBranches {
    fn name(&self) -> &'static str {
        "inline_known_branches"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut inlined = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Op::If(branches) = &node.op else {
                return Ok(None);
            };
            let Some(taken) = node.inputs.first().and_then(|&c| graph.constant(c)) else {
                return Ok(None);
            };
            let region = match taken.to_i64_vec().first() {
                Some(&flag) if flag != 0 => branches.then_branch.0.clone(),
                _ => branches.else_branch.0.clone(),
            };
            let operands = node.inputs[1..].to_vec();
            let origin = node.origin.clone();
            inlined += 1;
            splice(graph, &region, &operands, &origin).map(Some)
        })?;
        graph.count_rewrites("if with a constant condition inlined", inlined);
        Ok(())
    }
}

/// Add `region`'s nodes to `graph` (at the rewrite's current position), its inputs bound to
/// `operands`; the values that replace its outputs.
fn splice(graph: &mut Graph, region: &Graph, operands: &[ValueId], origin: &str) -> Result<Vec<ValueId>, PassError> {
    let mut map: Vec<Option<ValueId>> = vec![None; region.values.len()];
    for (&input, &operand) in region.inputs.iter().zip(operands) {
        map[input.index()] = Some(operand);
    }
    for &id in &region.order {
        let node = region.node(id);
        let inputs = node
            .inputs
            .iter()
            .map(|&v| bind(graph, region, &mut map, v, origin))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = node.outputs.iter().map(|&o| region.value(o).name.clone()).collect();
        let outputs = graph
            .add_node(node.op.clone(), inputs, &names, node.origin.clone())
            .map_err(|e| fail(&node.origin, e.0))?;
        if let (Some(&added), Some(reason)) = (graph.order.last(), &node.keep_fp32) {
            graph.node_mut(added).keep_fp32 = Some(reason.clone());
        }
        for (&old, new) in node.outputs.iter().zip(outputs) {
            map[old.index()] = Some(new);
        }
    }
    region
        .outputs
        .iter()
        .map(|o| bind(graph, region, &mut map, o.value, origin))
        .collect()
}

/// The value of `graph` standing for `region`'s value `v`: bound already, or a copy of the
/// region's constant.
fn bind(
    graph: &mut Graph,
    region: &Graph,
    map: &mut [Option<ValueId>],
    v: ValueId,
    origin: &str,
) -> Result<ValueId, PassError> {
    if let Some(bound) = map[v.index()] {
        return Ok(bound);
    }
    let value = region.value(v);
    let ValueDef::Const(t) = &value.def else {
        return Err(fail(
            origin,
            format!("branch value {:?} is read before it is defined", value.name),
        ));
    };
    let copy = graph.add_const(value.name.clone(), t.clone());
    map[v.index()] = Some(copy);
    Ok(copy)
}

fn fail(origin: &str, message: String) -> PassError {
    PassError {
        pass: "inline_known_branches",
        origin: origin.to_string(),
        message,
    }
}
