//! Fold an inference BatchNorm into the convolution before it.
//!
//! `bn(conv(x, W, b))` = `conv(x, W·s, (b − mean)·s + beta)` with `s = gamma / sqrt(var + eps)`
//! per output channel. Applies when the conv's weight, bias and the BatchNorm parameters are
//! constants and the conv output feeds only the BatchNorm.

use crate::ir::{Graph, Tensor};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};
use rayon::prelude::*;

pub struct FuseConvBatchNorm;

impl Pass for FuseConvBatchNorm {
    fn name(&self) -> &'static str {
        "fuse_conv_batchnorm"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Op::BatchNorm { epsilon } = node.op else {
                return Ok::<_, PassError>(None);
            };
            let conv_out = node.inputs[0];
            let Some(conv_id) = graph.producer(conv_out) else {
                return Ok(None);
            };
            let conv = graph.node(conv_id);
            if !matches!(conv.op, Op::Conv(_)) || uses[conv_out.index()] != 1 || graph.is_graph_output(conv_out) {
                return Ok(None);
            }
            let params: Option<Vec<Vec<f32>>> = node.inputs[1..]
                .iter()
                .map(|&v| graph.constant(v).map(Tensor::to_f32_vec))
                .collect();
            let Some(weight) = graph.constant(conv.inputs[1]) else {
                return Ok(None);
            };
            let bias = match conv.inputs.get(2) {
                Some(&b) => match graph.constant(b) {
                    Some(t) => Some(t.to_f32_vec()),
                    None => return Ok(None),
                },
                None => None,
            };
            let Some(params) = params else {
                return Ok(None);
            };
            let [mean, var, gamma, beta] = [&params[0], &params[1], &params[2], &params[3]];
            let channels = mean.len();
            let scale: Vec<f32> = (0..channels).map(|c| gamma[c] / (var[c] + epsilon).sqrt()).collect();
            let new_bias: Vec<f32> = (0..channels)
                .map(|c| (bias.as_ref().map_or(0.0, |b| b[c]) - mean[c]) * scale[c] + beta[c])
                .collect();
            let weight_dtype = weight.ty.dtype;
            let weight_shape = weight.ty.shape.clone();
            let mut w = weight.to_f32_vec();
            let per_channel = w.len() / channels.max(1);
            w.par_chunks_mut(per_channel.max(1))
                .zip(scale.par_iter())
                .for_each(|(chunk, s)| {
                    chunk.iter_mut().for_each(|v| *v *= s);
                });
            let conv_name = graph.value(conv_out).name.clone();
            let bn_name = graph.value(node.outputs[0]).name.clone();
            let new_weight = graph.add_const(
                format!("{conv_name}_weight_bn"),
                Tensor::from_f32(weight_shape, &w).cast(weight_dtype),
            );
            let new_bias = graph.add_const(
                format!("{conv_name}_bias_bn"),
                Tensor::from_f32(vec![channels], &new_bias).cast(weight_dtype),
            );
            graph.record_derived(new_weight, graph.node(conv_id).inputs[1]);
            let conv = graph.node_mut(conv_id);
            conv.inputs.truncate(1);
            conv.inputs.extend([new_weight, new_bias]);
            // The fused conv publishes the BatchNorm's name.
            graph.value_mut(conv_out).name = bn_name;
            graph.record_fusion(conv_id, id);
            Ok(Some(vec![conv_out]))
        })?;
        Ok(())
    }
}
