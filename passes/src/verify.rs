//! The verifier: structural and type invariants of a [`Graph`], checked apart from the passes.
//!
//! Tests run it after every pass. `Stage::Legal` adds that only core ops remain (true from
//! `legalize` on); `Stage::Final`, the back end's contract checked after the last pass, also
//! forbids 64-bit integers (narrowed by `narrow_int64`) and fp16 values at nodes pinned to fp32. (Scalar model outputs are legal until
//! `legalize_io`, the last pass, publishes them as `[1]`; the back end refuses any that remain.)

use crate::ir::{DType, Graph, ValueDef};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Straight from the front end: composite ops allowed.
    Imported,
    /// After `legalize`: core ops only.
    Legal,
    /// After the last pass: what the back end accepts (core ops, no 64-bit integers).
    Final,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("verifier: {message}{}", node_suffix(origin))]
pub struct VerifyError {
    /// The ONNX node the offending IR node came from (empty for graph-level problems).
    pub origin: String,
    pub message: String,
}

/// ` (node "conv1")` after an error message, or nothing for graph-level problems.
pub(crate) fn node_suffix(origin: &str) -> String {
    if origin.is_empty() {
        String::new()
    } else {
        format!(" (node {origin:?})")
    }
}

pub fn verify(graph: &Graph, stage: Stage) -> Result<(), VerifyError> {
    let fail = |origin: &str, message: String| {
        Err(VerifyError {
            origin: origin.to_string(),
            message,
        })
    };
    let mut defined = vec![false; graph.values.len()];
    for (i, v) in graph.values.iter().enumerate() {
        match &v.def {
            ValueDef::Input(index) => {
                if graph.inputs.get(*index).map(|id| id.index()) != Some(i) {
                    return fail("", format!("value {:?} claims to be input {index}", v.name));
                }
                defined[i] = true;
            }
            ValueDef::Const(t) => {
                if t.ty != v.ty {
                    return fail(
                        "",
                        format!("constant {:?} is typed {} but holds {}", v.name, v.ty, t.ty),
                    );
                }
                let expected = t.ty.num_elements() * t.ty.dtype.size_in_bytes();
                if t.data.len() != expected {
                    return fail(
                        "",
                        format!(
                            "constant {:?} holds {} bytes, {} expected",
                            v.name,
                            t.data.len(),
                            expected
                        ),
                    );
                }
                defined[i] = true;
            }
            ValueDef::Node { .. } => {}
        }
    }
    let mut seen_node = vec![false; graph.nodes.len()];
    for &node_id in &graph.order {
        let node = graph.node(node_id);
        let origin = node.origin.as_str();
        if std::mem::replace(&mut seen_node[node_id.index()], true) {
            return fail(origin, "node listed twice in order".into());
        }
        for &input in &node.inputs {
            if !defined.get(input.index()).copied().unwrap_or(false) {
                return fail(
                    origin,
                    format!(
                        "{} reads {:?} before it is defined",
                        node.op.name(),
                        graph.value(input).name
                    ),
                );
            }
        }
        let input_types: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
        let inferred = node.op.infer(&input_types).map_err(|e| VerifyError {
            origin: origin.into(),
            message: e.0,
        })?;
        if inferred.len() != node.outputs.len() {
            return fail(
                origin,
                format!(
                    "{} has {} outputs, inference gives {}",
                    node.op.name(),
                    node.outputs.len(),
                    inferred.len()
                ),
            );
        }
        for (index, (&out, ty)) in node.outputs.iter().zip(&inferred).enumerate() {
            let value = graph.value(out);
            match value.def {
                ValueDef::Node { node: n, index: k } if n == node_id && k == index => {}
                _ => {
                    return fail(
                        origin,
                        format!("output {:?} does not point back at its node", value.name),
                    )
                }
            }
            if &value.ty != ty {
                return fail(
                    origin,
                    format!(
                        "output {:?} is typed {} but inference gives {}",
                        value.name, value.ty, ty
                    ),
                );
            }
            if std::mem::replace(&mut defined[out.index()], true) {
                return fail(origin, format!("value {:?} defined twice", value.name));
            }
        }
        // A body is a graph of its own (closed: it reads only its inputs), checked alone; the
        // inference above checked that its interface matches the op's operands and results.
        for (k, region) in node.op.regions().into_iter().enumerate() {
            verify(region, stage).map_err(|e| VerifyError {
                origin: if e.origin.is_empty() { origin.into() } else { e.origin },
                message: format!("in region {k} of {}: {}", node.op.name(), e.message),
            })?;
        }
        if stage != Stage::Imported && !node.op.is_core() {
            return fail(origin, format!("composite op {} survived legalisation", node.op.name()));
        }
        if stage == Stage::Final {
            let operand_of = |dtype: DType| {
                node.inputs
                    .iter()
                    .chain(&node.outputs)
                    .find(|&&v| graph.ty(v).dtype == dtype)
                    .map(|&v| graph.value(v).name.clone())
            };
            if let Some(name) = operand_of(DType::I64) {
                let message = format!("{} still uses 64-bit integer value {name:?}", node.op.name());
                return fail(origin, message);
            }
            // A node pinned to fp32 must compute in fp32, whatever the program's precision.
            if let Some(name) = node.keep_fp32.as_ref().and_then(|_| operand_of(DType::F16)) {
                let message = format!("{} is pinned to fp32 but uses fp16 value {name:?}", node.op.name());
                return fail(origin, message);
            }
        }
    }
    for out in &graph.outputs {
        if !defined.get(out.value.index()).copied().unwrap_or(false) {
            return fail("", format!("graph output {:?} is not defined", out.name));
        }
    }
    Ok(())
}
