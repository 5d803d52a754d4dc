//! Fold `conv(x, W, b) + c` into the conv's bias when `c` is a per-output-channel constant
//! (shape `[C,1,..]` or `[1,C,1,..]`) and the conv output feeds only the add.

use crate::ir::{Graph, Tensor};
use crate::op::{BinaryOp, Op};
use crate::pass::{Pass, PassError, PassOptions};

pub struct FuseConvBias;

impl Pass for FuseConvBias {
    fn name(&self) -> &'static str {
        "fuse_conv_bias"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id).clone();
            if node.op != Op::Binary(BinaryOp::Add) {
                return Ok::<_, PassError>(None);
            }
            // Either operand may be the conv.
            for (conv_side, const_side) in [(0, 1), (1, 0)] {
                let (conv_out, addend) = (node.inputs[conv_side], node.inputs[const_side]);
                let Some(conv_id) = graph.producer(conv_out) else {
                    continue;
                };
                let conv = graph.node(conv_id);
                let Some(c) = graph.constant(addend) else {
                    continue;
                };
                if !matches!(conv.op, Op::Conv(_)) || uses[conv_out.index()] != 1 || graph.is_graph_output(conv_out) {
                    continue;
                }
                let out_ty = graph.ty(conv_out);
                let channels = out_ty.shape[1];
                if !is_per_channel(&c.ty.shape, out_ty.rank(), channels) || graph.ty(node.outputs[0]) != out_ty {
                    continue;
                }
                let addend = c.to_f32_vec();
                let old_bias = match conv.inputs.get(2) {
                    Some(&b) => match graph.constant(b) {
                        Some(t) => t.to_f32_vec(),
                        None => continue,
                    },
                    None => vec![0.0; channels],
                };
                let dtype = graph.constant(conv.inputs[1]).map_or(out_ty.dtype, |w| w.ty.dtype);
                let bias: Vec<f32> = old_bias.iter().zip(&addend).map(|(b, a)| b + a).collect();
                let name = format!("{}_bias_fused", graph.value(conv_out).name);
                let bias = graph.add_const(name, Tensor::from_f32(vec![channels], &bias).cast(dtype));
                let add_name = graph.value(node.outputs[0]).name.clone();
                let conv = graph.node_mut(conv_id);
                conv.inputs.truncate(2);
                conv.inputs.push(bias);
                graph.value_mut(conv_out).name = add_name;
                graph.record_fusion(conv_id, id);
                return Ok(Some(vec![conv_out]));
            }
            Ok(None)
        })?;
        Ok(())
    }
}

/// Whether a constant of `shape` broadcast onto a rank-`rank` conv output varies only along
/// axis 1 and has exactly `channels` elements.
fn is_per_channel(shape: &[usize], rank: usize, channels: usize) -> bool {
    if shape.len() > rank || shape.iter().product::<usize>() != channels {
        return false;
    }
    // Align right: the channel axis of the output is at position 1.
    let offset = rank - shape.len();
    shape.iter().enumerate().all(|(i, &d)| i + offset == 1 || d == 1)
}
