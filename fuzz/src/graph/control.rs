//! Control flow decided at run time, as exports write it: an If on the sign of a sum, and a
//! Loop whose body computes its own condition. Their bodies read the enclosing scope by name.
//! Sometimes the Loop also has a scan output, which edgec must refuse with a clear error (its
//! length is known only at run time).

use super::{attr_int, Elem, Gen, Val};
use arbitrary::Result;
use edgec::proto::onnx::attribute_proto::AttributeType;
use edgec::proto::onnx::{AttributeProto, GraphProto, NodeProto, ValueInfoProto};

fn attr_graph(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(g),
        ..Default::default()
    }
}

fn value(name: &str, elem: Elem, shape: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(super::tensor_type(elem, Some(shape))),
        ..Default::default()
    }
}

fn body_node(g: &mut Gen, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> (NodeProto, String) {
    let out = g.fresh(&op.to_lowercase());
    let node = NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![out.clone()],
        name: g.fresh("node"),
        op_type: op.into(),
        attribute,
        ..Default::default()
    };
    (node, out)
}

/// `x` (a value of the enclosing scope) through one or two shape-keeping ops.
fn branch(g: &mut Gen, x: &Val) -> Result<GraphProto> {
    let mut nodes = Vec::new();
    let mut last = x.name.clone();
    for _ in 0..g.u.int_in_range(1..=2)? {
        let (node, out) = match g.u.int_in_range(0..=5)? {
            0 => body_node(g, "Relu", &[&last], vec![]),
            1 => body_node(g, "Neg", &[&last], vec![]),
            2 => body_node(g, "Tanh", &[&last], vec![]),
            3 => body_node(g, "Abs", &[&last], vec![]),
            4 => {
                let k = f64::from(g.u.int_in_range(-8i8..=8)?) / 4.0;
                let k = g.init_scalar(Elem::F32, k);
                body_node(g, "Mul", &[&last, &k], vec![])
            }
            _ => body_node(g, "Add", &[&last, &x.name], vec![]),
        };
        nodes.push(node);
        last = out;
    }
    Ok(GraphProto {
        name: g.fresh("branch"),
        node: nodes,
        output: vec![value(&last, Elem::F32, &x.shape)],
        ..Default::default()
    })
}

/// `ReduceSum(x)` as a scalar, compared with a small constant by `op`.
fn condition(g: &mut Gen, x: &str, op: &str) -> Result<(Vec<NodeProto>, String)> {
    let (sum, s) = body_node(g, "ReduceSum", &[x], vec![attr_int("keepdims", 0)]);
    let t = f64::from(g.u.int_in_range(-8i8..=8)?) / 2.0;
    let t = g.init_scalar(Elem::F32, t);
    let (cmp, c) = body_node(g, op, &[&s, &t], vec![]);
    Ok((vec![sum, cmp], c))
}

pub(super) fn if_op(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float()? else { return Ok(()) };
    let (nodes, cond) = condition(g, &x.name, "Greater")?;
    g.nodes.extend(nodes);
    let then_branch = branch(g, &x)?;
    let else_branch = branch(g, &x)?;
    let attrs = vec![attr_graph("then_branch", then_branch), attr_graph("else_branch", else_branch)];
    g.node("If", vec![cond], attrs, vec![Some((Elem::F32, x.shape.clone()))]);
    Ok(())
}

pub(super) fn loop_op(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float()? else { return Ok(()) };
    let trips = g.u.int_in_range(0..=4)?;
    let trip_count = g.init_scalar(Elem::I64, f64::from(trips));
    let (i, c, acc) = (g.fresh("iteration"), g.fresh("cond_in"), g.fresh("acc"));
    let mut nodes = Vec::new();
    let (step, grown) = if g.u.arbitrary()? {
        let k = f64::from(g.u.int_in_range(1u8..=8)?) / 4.0;
        let k = g.init_scalar(Elem::F32, k);
        body_node(g, "Mul", &[&acc, &k], vec![])
    } else {
        body_node(g, "Add", &[&acc, &x.name], vec![])
    };
    nodes.push(step);
    let (cond_nodes, keep_going) = condition(g, &grown, "Less")?;
    nodes.extend(cond_nodes);
    let mut outputs = vec![value(&keep_going, Elem::Bool, &[]), value(&grown, Elem::F32, &x.shape)];
    let scan = g.u.ratio(1, 8)?;
    if scan {
        let (copy, history) = body_node(g, "Identity", &[&grown], vec![]);
        nodes.push(copy);
        outputs.push(value(&history, Elem::F32, &x.shape));
    }
    let body = GraphProto {
        name: g.fresh("body"),
        node: nodes,
        input: vec![value(&i, Elem::I64, &[]), value(&c, Elem::Bool, &[]), value(&acc, Elem::F32, &x.shape)],
        output: outputs,
        ..Default::default()
    };
    let mut results = vec![Some((Elem::F32, x.shape.clone()))];
    if scan {
        results.push(None);
    }
    g.node("Loop", vec![trip_count, String::new(), x.name.clone()], vec![attr_graph("body", body)], results);
    Ok(())
}
