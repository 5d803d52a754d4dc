//! Make the model interface one Core ML can carry:
//! - inputs and outputs need rank ≥ 1: a scalar input is published as shape `[1]` and reshaped
//!   to a scalar on entry; a scalar output is reshaped to `[1]`;
//! - before iOS 16 they cannot be fp16: an fp16 input becomes fp32 with a cast to fp16 on entry,
//!   and an fp16 output gets a cast to fp32 on exit (as Core ML's own converter does);
//! - they cannot be bool at all: a bool input is published as int32 (0/1) and cast to bool on
//!   entry, a bool output is cast to int32 on exit.

use crate::ir::{DType, Graph, GraphOutput, NodeId, ValueDef, ValueId};
use crate::op::{InferError, Op};
use crate::pass::{Pass, PassError, PassOptions};

pub struct LegalizeIo;

fn fail(e: InferError) -> PassError {
    PassError {
        pass: "legalize_io",
        origin: String::new(),
        message: e.0,
    }
}

impl Pass for LegalizeIo {
    fn name(&self) -> &'static str {
        "legalize_io"
    }

    /// A body's inputs and outputs are values inside the program, not the model's interface.
    fn runs_in_regions(&self) -> bool {
        false
    }

    fn run(&self, graph: &mut Graph, options: &PassOptions) -> Result<(), PassError> {
        let mut prologue: Vec<NodeId> = Vec::new();
        for input in graph.inputs.clone() {
            let ty = graph.ty(input).clone();
            let narrow_type = ty.dtype == DType::F16 && !options.fp16_io;
            let boolean = ty.dtype == DType::Bool;
            let scalar = ty.rank() == 0;
            if !narrow_type && !boolean && !scalar {
                continue;
            }
            let name = graph.value(input).name.clone();
            // Retype the published input, then build the entry chain from it.
            let mut inner = input;
            let mut chain = Vec::new();
            {
                let published = graph.value_mut(input);
                if narrow_type {
                    published.ty.dtype = DType::F32;
                }
                if boolean {
                    published.ty.dtype = DType::I32;
                }
                if scalar {
                    published.ty.shape = vec![1];
                }
            }
            // Back from the published form to what the graph computes with, in this order.
            let steps = [
                (scalar, Op::Reshape { shape: vec![] }, "scalar"),
                (narrow_type, Op::Cast { to: DType::F16 }, "to_fp16"),
                (boolean, Op::Cast { to: DType::Bool }, "to_bool"),
            ];
            for (needed, op, suffix) in steps {
                if needed {
                    inner = entry_step(graph, op, inner, format!("{name}_{suffix}"), &mut chain)?;
                }
            }
            // The entry chain is not in `order` yet, so it keeps reading the input.
            graph.replace_all_uses(input, inner);
            prologue.extend(chain);
        }
        graph.order.splice(0..0, prologue);

        let outputs = std::mem::take(&mut graph.outputs);
        for GraphOutput { name, value } in outputs {
            let is_input = matches!(graph.value(value).def, ValueDef::Input(_));
            let mut value = value;
            if graph.ty(value).dtype == DType::F16 && !options.fp16_io && !is_input {
                value = exit_step(graph, Op::Cast { to: DType::F32 }, value, "_fp16")?;
            }
            if graph.ty(value).dtype == DType::Bool {
                value = if is_input {
                    // A bool input published unchanged is already int32.
                    value
                } else {
                    exit_step(graph, Op::Cast { to: DType::I32 }, value, "_bool")?
                };
            }
            if graph.ty(value).rank() == 0 {
                value = exit_step(graph, Op::Reshape { shape: vec![1] }, value, "_scalar")?;
            }
            graph.outputs.push(GraphOutput { name, value });
        }
        Ok(())
    }
}

/// Add an entry op reading `from` (appended to `chain`, not yet placed in `order`).
fn entry_step(
    graph: &mut Graph,
    op: Op,
    from: ValueId,
    name: String,
    chain: &mut Vec<NodeId>,
) -> Result<ValueId, PassError> {
    let out = graph.add_node(op, vec![from], &[name], "").map_err(fail)?[0];
    chain.push(graph.order.pop().expect("add_node appends"));
    Ok(out)
}

/// Add an exit op after `value`; it takes over the value's name, which gets `suffix`.
fn exit_step(graph: &mut Graph, op: Op, value: ValueId, suffix: &str) -> Result<ValueId, PassError> {
    let name = graph.value(value).name.clone();
    graph.value_mut(value).name = format!("{name}{suffix}");
    Ok(graph.add_node(op, vec![value], &[name], "").map_err(fail)?[0])
}
