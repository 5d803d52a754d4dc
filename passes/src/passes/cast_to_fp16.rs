//! fp16 compute: float constants become fp16, each fp32 graph input is cast to fp16 on entry,
//! and each output is cast back to fp32, so the model's interface stays fp32 (as Core ML's own
//! converter does). Casts to fp32 inside the graph become casts to fp16.

use crate::ir::{DType, Graph, GraphOutput, ValueDef};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions, Precision};

pub struct CastToFp16;

impl Pass for CastToFp16 {
    fn name(&self) -> &'static str {
        "cast_to_fp16"
    }

    fn enabled(&self, options: &PassOptions) -> bool {
        options.precision == Precision::Fp16
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let fail = |origin: &str, e: crate::op::InferError| PassError {
            pass: "cast_to_fp16",
            origin: origin.into(),
            message: e.0,
        };

        // Only outputs that were fp32 get a cast back; an fp16 output keeps its type.
        let was_f32: Vec<bool> = graph
            .outputs
            .iter()
            .map(|o| graph.ty(o.value).dtype == DType::F32)
            .collect();

        // Constants read by live nodes. One at a time (each conversion is itself parallel), so
        // an fp32 buffer owned by the graph (a transposed weight, say) is freed as soon as its
        // fp16 copy exists: peak memory grows by one tensor, not by all of them.
        let uses = graph.use_counts();
        for (value, &used) in graph.values.iter_mut().zip(&uses) {
            if let ValueDef::Const(t) = &value.def {
                if t.ty.dtype == DType::F32 && used > 0 {
                    let tensor = t.cast(DType::F16);
                    value.ty = tensor.ty.clone();
                    value.def = ValueDef::Const(tensor);
                }
            }
        }

        // Inputs: cast on entry.
        let mut prologue = Vec::new();
        for &input in &graph.inputs.clone() {
            if graph.ty(input).dtype != DType::F32 {
                continue;
            }
            let name = format!("{}_to_fp16", graph.value(input).name);
            let cast = graph
                .add_node(Op::Cast { to: DType::F16 }, vec![input], &[name], "")
                .map_err(|e| fail("", e))?;
            let cast_node = graph.order.pop().expect("add_node appends");
            graph.replace_uses_in_nodes(input, cast[0]);
            prologue.push(cast_node);
        }
        graph.order.splice(0..0, prologue);

        // Re-type every node in order; ONNX casts to fp32 now target fp16.
        for &id in &graph.order.clone() {
            let node = graph.node_mut(id);
            if node.op == (Op::Cast { to: DType::F32 }) {
                node.op = Op::Cast { to: DType::F16 };
            }
            let node = graph.node(id);
            let types: Vec<_> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
            let inferred = node.op.infer(&types).map_err(|e| fail(&node.origin, e))?;
            let outputs = node.outputs.clone();
            for (out, ty) in outputs.into_iter().zip(inferred) {
                graph.value_mut(out).ty = ty;
            }
        }

        // Outputs: cast back on exit; the cast takes over the published name.
        let outputs = std::mem::take(&mut graph.outputs);
        let mut new_outputs = Vec::with_capacity(outputs.len());
        for (GraphOutput { name, value }, was_f32) in outputs.into_iter().zip(was_f32) {
            if !was_f32 || graph.ty(value).dtype != DType::F16 || matches!(graph.value(value).def, ValueDef::Input(_)) {
                new_outputs.push(GraphOutput { name, value });
                continue;
            }
            let inner = graph.value(value).name.clone();
            graph.value_mut(value).name = format!("{inner}_fp16");
            let cast = graph
                .add_node(Op::Cast { to: DType::F32 }, vec![value], &[inner], "")
                .map_err(|e| fail("", e))?;
            new_outputs.push(GraphOutput { name, value: cast[0] });
        }
        graph.outputs = new_outputs;
        Ok(())
    }
}
