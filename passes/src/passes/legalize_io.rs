//! Make the model interface one Core ML can carry: before iOS 16, inputs and outputs cannot be
//! fp16, so an fp16 input becomes fp32 with a cast to fp16 on entry, and an fp16 output gets a
//! cast to fp32 on exit (as Core ML's own converter does).

use crate::ir::{DType, Graph, GraphOutput, ValueDef};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};

pub struct LegalizeIo;

impl Pass for LegalizeIo {
    fn name(&self) -> &'static str {
        "legalize_io"
    }

    fn enabled(&self, options: &PassOptions) -> bool {
        !options.fp16_io
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let fail = |e: crate::op::InferError| PassError {
            pass: "legalize_io",
            origin: String::new(),
            message: e.0,
        };
        let mut prologue = Vec::new();
        for input in graph.inputs.clone() {
            if graph.ty(input).dtype != DType::F16 {
                continue;
            }
            let name = graph.value(input).name.clone();
            let shape = graph.ty(input).shape.clone();
            graph.value_mut(input).ty.dtype = DType::F32;
            let cast = graph
                .add_node(
                    Op::Cast { to: DType::F16 },
                    vec![input],
                    &[format!("{name}_to_fp16")],
                    "",
                )
                .map_err(fail)?;
            debug_assert_eq!(graph.ty(cast[0]).shape, shape);
            prologue.push(graph.order.pop().expect("add_node appends"));
            for &id in &graph.order {
                for v in &mut graph.nodes[id.index()].inputs {
                    if *v == input {
                        *v = cast[0];
                    }
                }
            }
            for out in &mut graph.outputs {
                if out.value == input {
                    out.value = cast[0];
                }
            }
        }
        graph.order.splice(0..0, prologue);
        let outputs = std::mem::take(&mut graph.outputs);
        for GraphOutput { name, value } in outputs {
            let value = if graph.ty(value).dtype == DType::F16 && !matches!(graph.value(value).def, ValueDef::Input(_))
            {
                let inner = graph.value(value).name.clone();
                graph.value_mut(value).name = format!("{inner}_fp16");
                graph
                    .add_node(Op::Cast { to: DType::F32 }, vec![value], &[inner], "")
                    .map_err(fail)?[0]
            } else {
                value
            };
            graph.outputs.push(GraphOutput { name, value });
        }
        Ok(())
    }
}
