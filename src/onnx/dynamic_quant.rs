//! onnxruntime's dynamic quantization, recognised before import.
//!
//! `quantize_dynamic` writes every quantized MatMul or Conv as
//! `DynamicQuantizeLinear(x) → MatMulInteger/ConvInteger(x_q, w_q, x_zp, w_zp) → Cast(float) →
//! Mul(·, Mul(x_scale, w_scale))`. The integer products are large (|Σ| up to 255·128·K), beyond
//! fp16, and only the final multiply brings them back. So the chain is imported as what it
//! computes, the product of the two dequantized operands: the MatMulInteger or ConvInteger node
//! is given the two scales as extra inputs 4 and 5, takes over the Mul's output, and the Cast and
//! Mul are dropped. Its weight is then a DequantizeLinear of a constant, kept as Core ML int8
//! (`Graph::prequantized`), and compute stays in float at its usual magnitudes.

use crate::proto::onnx::{tensor_proto::DataType, GraphProto, NodeProto};
use std::collections::HashMap;

/// The graph's nodes with each dynamic-quantization chain fused, or `None` when there is none.
pub fn fuse(graph: &GraphProto) -> Option<Vec<NodeProto>> {
    let nodes = &graph.node;
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for out in &node.output {
            producer.insert(out.as_str(), i);
        }
        for input in node.input.iter().filter(|n| !n.is_empty()) {
            consumers.entry(input.as_str()).or_default().push(i);
        }
    }
    let is_graph_output = |name: &str| graph.output.iter().any(|o| o.name == name);
    // The only reader of `value`, when it has exactly one and is not a graph output.
    let sole_reader = |value: &str| match consumers.get(value).map(Vec::as_slice) {
        Some([only]) if !is_graph_output(value) => Some(*only),
        _ => None,
    };

    let mut rewritten = nodes.clone();
    let mut dropped = vec![false; nodes.len()];
    let mut fused = 0;
    for (i, node) in nodes.iter().enumerate() {
        if !matches!(node.op_type.as_str(), "MatMulInteger" | "ConvInteger") || node.input.len() > 4 {
            continue;
        }
        let Some(product) = node.output.first() else { continue };
        let Some(cast) = sole_reader(product).filter(|&c| {
            let n = &nodes[c];
            n.op_type == "Cast"
                && n.attribute
                    .iter()
                    .any(|a| a.name == "to" && a.i == DataType::Float as i64)
        }) else {
            continue;
        };
        let Some(mul) = nodes[cast]
            .output
            .first()
            .and_then(|o| sole_reader(o))
            .filter(|&m| nodes[m].op_type == "Mul" && nodes[m].input.len() == 2)
        else {
            continue;
        };
        let cast_out = &nodes[cast].output[0];
        let Some(scale_product) = nodes[mul].input.iter().find(|n| *n != cast_out) else {
            continue;
        };
        // The scale product: the input's scale (DynamicQuantizeLinear's second output, of the
        // quantizer that made this node's input) times the weight's.
        let Some(&p) = producer.get(scale_product.as_str()) else {
            continue;
        };
        let scales = &nodes[p];
        let Some(&q) = node.input.first().and_then(|x| producer.get(x.as_str())) else {
            continue;
        };
        let quantizer = &nodes[q];
        if scales.op_type != "Mul" || scales.input.len() != 2 || quantizer.op_type != "DynamicQuantizeLinear" {
            continue;
        }
        let Some(input_scale) = quantizer.output.get(1) else {
            continue;
        };
        let Some(weight_scale) = scales.input.iter().find(|n| *n != input_scale) else {
            continue;
        };
        if !scales.input.contains(input_scale) {
            continue;
        }
        let mut inputs = node.input.clone();
        inputs.resize(4, String::new());
        inputs.push(input_scale.clone());
        inputs.push(weight_scale.clone());
        rewritten[i].input = inputs;
        rewritten[i].output = vec![nodes[mul].output[0].clone()];
        dropped[cast] = true;
        dropped[mul] = true;
        fused += 1;
    }
    if fused == 0 {
        return None;
    }
    Some(
        rewritten
            .into_iter()
            .zip(dropped)
            .filter_map(|(n, drop)| (!drop).then_some(n))
            .collect(),
    )
}
