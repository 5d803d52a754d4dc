//! fp16 compute: float constants become fp16, each fp32 graph input is cast to fp16 on entry,
//! and each output is cast back to fp32, so the model's interface stays fp32 (as Core ML's own
//! converter does). Casts to fp32 inside the graph become casts to fp16. The body of a
//! control-flow op instead takes its float inputs and gives its float outputs in fp16: they are
//! values of the fp16 program around it.
//!
//! Nodes pinned to fp32 (`Node::keep_fp32`) keep computing in fp32: they read fp32 constants
//! and graph inputs directly, an fp16 operand gets a cast to fp32 before them, and an fp16 node
//! reading their result gets a cast to fp16. Adjacent pinned nodes pass fp32 between them with
//! no casts, and each cast is made once per value and reused.

use crate::ir::{DType, Graph, GraphOutput, NodeId, ValueDef, ValueId};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions, Precision};
use std::collections::HashMap;

pub struct CastToFp16;

fn fail(origin: &str, e: crate::op::InferError) -> PassError {
    PassError {
        pass: "cast_to_fp16",
        origin: origin.into(),
        message: e.0,
    }
}

impl Pass for CastToFp16 {
    fn name(&self) -> &'static str {
        "cast_to_fp16"
    }

    fn enabled(&self, options: &PassOptions) -> bool {
        options.precision == Precision::Fp16
    }

    fn run(&self, graph: &mut Graph, options: &PassOptions) -> Result<(), PassError> {
        // A control-flow body takes and gives fp16, as the fp16 program around it computes.
        if options.in_region {
            for input in graph.inputs.clone() {
                let value = graph.value_mut(input);
                if value.ty.dtype == DType::F32 {
                    value.ty.dtype = DType::F16;
                }
            }
        }
        // Only outputs that were fp32 get a cast back; an fp16 output keeps its type.
        let was_f32: Vec<bool> = graph
            .outputs
            .iter()
            .map(|o| graph.ty(o.value).dtype == DType::F32)
            .collect();
        let pinned = |graph: &Graph, n: NodeId| graph.node(n).keep_fp32.is_some();

        // Constants read by unpinned nodes. One at a time (each conversion is itself parallel),
        // so an fp32 buffer owned by the graph (a transposed weight, say) is freed as soon as
        // its fp16 copy exists: peak memory grows by one tensor, not by all of them. A constant
        // that pinned nodes read too keeps its fp32 self for them, and the rest read a copy.
        let mut fp16_readers = vec![0usize; graph.values.len()];
        let mut fp32_readers = vec![0usize; graph.values.len()];
        for &n in &graph.order {
            let counts = if pinned(graph, n) {
                &mut fp32_readers
            } else {
                &mut fp16_readers
            };
            for &v in &graph.node(n).inputs {
                counts[v.index()] += 1;
            }
        }
        let mut fp16_copy: HashMap<ValueId, ValueId> = HashMap::new();
        for index in 0..graph.values.len() {
            let ValueDef::Const(t) = &graph.values[index].def else {
                continue;
            };
            if t.ty.dtype != DType::F32 || fp16_readers[index] == 0 {
                continue;
            }
            let tensor = t.cast(DType::F16);
            if fp32_readers[index] == 0 {
                let value = &mut graph.values[index];
                value.ty = tensor.ty.clone();
                value.def = ValueDef::Const(tensor);
            } else {
                let name = format!("{}_fp16", graph.values[index].name);
                let copy = graph.add_const(name, tensor);
                graph.record_derived(copy, ValueId(index as u32));
                fp16_copy.insert(ValueId(index as u32), copy);
            }
        }

        // Inputs: cast on entry, for the unpinned readers.
        let mut order = Vec::with_capacity(graph.order.len());
        let mut to_fp16: HashMap<ValueId, ValueId> = fp16_copy;
        for &input in &graph.inputs.clone() {
            if graph.ty(input).dtype != DType::F32 || graph.users(input).iter().all(|&n| pinned(graph, n)) {
                continue;
            }
            let name = format!("{}_to_fp16", graph.value(input).name);
            let cast = make_cast(graph, input, DType::F16, name, "", &mut order)?;
            to_fp16.insert(input, cast);
        }

        // Re-type every node in order; ONNX casts to fp32 now target fp16. Operands crossing
        // between fp16 and pinned fp32 nodes get (shared) casts.
        let mut to_fp32: HashMap<ValueId, ValueId> = HashMap::new();
        for id in graph.order.clone() {
            let keep_fp32 = pinned(graph, id);
            if !keep_fp32 && graph.node(id).op == (Op::Cast { to: DType::F32 }) {
                graph.node_mut(id).op = Op::Cast { to: DType::F16 };
            }
            let origin = graph.node(id).origin.clone();
            for slot in 0..graph.node(id).inputs.len() {
                let v = graph.node(id).inputs[slot];
                let dtype = graph.ty(v).dtype;
                let replacement = match (keep_fp32, dtype) {
                    (false, DType::F32) => match to_fp16.get(&v) {
                        Some(&c) => c,
                        None if graph.producer(v).is_some_and(|p| pinned(graph, p)) => {
                            let name = format!("{}_to_fp16", graph.value(v).name);
                            let c = make_cast(graph, v, DType::F16, name, &origin, &mut order)?;
                            to_fp16.insert(v, c);
                            c
                        }
                        None => continue,
                    },
                    (true, DType::F16) => match to_fp32.get(&v) {
                        Some(&c) => c,
                        None => {
                            let name = format!("{}_to_fp32", graph.value(v).name);
                            let c = make_cast(graph, v, DType::F32, name, &origin, &mut order)?;
                            to_fp32.insert(v, c);
                            c
                        }
                    },
                    _ => continue,
                };
                graph.node_mut(id).inputs[slot] = replacement;
            }
            let node = graph.node(id);
            let types: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
            let inferred = node.op.infer(&types).map_err(|e| fail(&node.origin, e))?;
            let outputs = node.outputs.clone();
            for (out, ty) in outputs.into_iter().zip(inferred) {
                graph.value_mut(out).ty = ty;
            }
            order.push(id);
        }
        graph.order = order;

        // Outputs: cast back on exit; the cast takes over the published name. An output a
        // pinned node computes is fp32 already. A body's outputs are all fp16 instead.
        let outputs = std::mem::take(&mut graph.outputs);
        let mut new_outputs = Vec::with_capacity(outputs.len());
        for (GraphOutput { name, value }, was_f32) in outputs.into_iter().zip(was_f32) {
            let dtype = graph.ty(value).dtype;
            let to = if options.in_region {
                (dtype == DType::F32).then_some(DType::F16)
            } else {
                let published_input = matches!(graph.value(value).def, ValueDef::Input(_));
                (was_f32 && dtype == DType::F16 && !published_input).then_some(DType::F32)
            };
            let Some(to) = to else {
                new_outputs.push(GraphOutput { name, value });
                continue;
            };
            let inner = graph.value(value).name.clone();
            let suffix = if to == DType::F32 { "fp16" } else { "fp32" };
            graph.value_mut(value).name = format!("{inner}_{suffix}");
            let cast = graph
                .add_node(Op::Cast { to }, vec![value], &[inner], "")
                .map_err(|e| fail("", e))?;
            new_outputs.push(GraphOutput { name, value: cast[0] });
        }
        graph.outputs = new_outputs;
        Ok(())
    }
}

/// A cast of `value` to `to`, appended to `order` (not to `graph.order`, which is being rebuilt).
fn make_cast(
    graph: &mut Graph,
    value: ValueId,
    to: DType,
    name: String,
    origin: &str,
    order: &mut Vec<NodeId>,
) -> Result<ValueId, PassError> {
    let out = graph
        .add_node(Op::Cast { to }, vec![value], &[name], origin)
        .map_err(|e| fail(origin, e))?[0];
    order.push(graph.order.pop().expect("add_node appends"));
    Ok(out)
}
