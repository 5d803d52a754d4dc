//! onnxruntime's dynamic quantization, recognised before import.
//!
//! `quantize_dynamic` writes every quantized MatMul or Conv as
//! `DynamicQuantizeLinear(x) → MatMulInteger/ConvInteger(x_q, w_q, x_zp, w_zp) → Cast(float) →
//! Mul(·, Mul(x_scale, w_scale))`. The integer products are large (|Σ| up to 255·128·K), beyond
//! fp16, and only the final multiply brings them back. So the chain is imported as what it
//! computes, the product of the two dequantized operands: the MatMulInteger or ConvInteger node
//! is given the two scales as extra inputs 4 and 5, takes over the Mul's output, and the Cast and
//! Mul are dropped. Older exports add an int32 bias (in the product's scale) before the Cast:
//! it becomes input 6, and the Add is dropped too. Its weight is then a DequantizeLinear of a constant, kept as Core ML int8
//! (`Graph::prequantized`), and compute stays in float at its usual magnitudes.
//!
//! onnxruntime's older dynamic quantization also writes `com.microsoft::DynamicQuantizeLSTM`: an
//! LSTM whose `W` and `R` are int8, laid out `[directions, input, 4·hidden]` (ONNX's transposed),
//! with one scale and zero point per direction. It becomes a DequantizeLinear (axis 0) and a
//! Transpose of each, feeding an ONNX LSTM with the same attributes. Other scale layouts are
//! left alone (and reported as an unsupported op).

use crate::proto::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, NodeProto,
};
use std::collections::HashMap;

/// The graph's nodes with each dynamic-quantization chain fused and each DynamicQuantizeLSTM
/// expanded, or `None` when there is none.
pub fn fuse(graph: &GraphProto) -> Option<Vec<NodeProto>> {
    let expanded = expand_quantized_lstms(graph);
    let nodes = expanded.as_deref().unwrap_or(&graph.node);
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

    let mut rewritten = nodes.to_vec();
    let mut dropped = vec![false; nodes.len()];
    let mut fused = 0;
    for (i, node) in nodes.iter().enumerate() {
        if !matches!(node.op_type.as_str(), "MatMulInteger" | "ConvInteger") || node.input.len() > 4 {
            continue;
        }
        let Some(product) = node.output.first() else { continue };
        // Older exports add the int32 bias (quantized with the product's scale) before the cast.
        let bias_add = sole_reader(product).filter(|&a| nodes[a].op_type == "Add" && nodes[a].input.len() == 2);
        let (integer_result, bias) = match bias_add {
            Some(a) => (
                &nodes[a].output[0],
                nodes[a].input.iter().find(|n| *n != product).cloned(),
            ),
            None => (product, None),
        };
        let Some(cast) = sole_reader(integer_result).filter(|&c| {
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
        if let (Some(a), Some(bias)) = (bias_add, bias) {
            inputs.push(bias);
            dropped[a] = true;
        }
        rewritten[i].input = inputs;
        rewritten[i].output = vec![nodes[mul].output[0].clone()];
        dropped[cast] = true;
        dropped[mul] = true;
        fused += 1;
    }
    if fused == 0 {
        return expanded;
    }
    Some(
        rewritten
            .into_iter()
            .zip(dropped)
            .filter_map(|(n, drop)| (!drop).then_some(n))
            .collect(),
    )
}

/// Each `com.microsoft::DynamicQuantizeLSTM` with per-direction scales as DequantizeLinear,
/// Transpose and LSTM nodes; `None` when there is none.
fn expand_quantized_lstms(graph: &GraphProto) -> Option<Vec<NodeProto>> {
    let per_direction = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .is_some_and(|t| t.dims.len() == 1)
    };
    let mut out = Vec::with_capacity(graph.node.len());
    let mut expanded = 0;
    for node in &graph.node {
        let input = |i: usize| node.input.get(i).cloned().unwrap_or_default();
        let quantized = node.op_type == "DynamicQuantizeLSTM"
            && node.domain == "com.microsoft"
            && per_direction(&input(8))
            && per_direction(&input(10));
        if !quantized {
            out.push(node.clone());
            continue;
        }
        let mut weight = |codes: String, scale: String, zero_point: String, what: &str| {
            let base = format!("{}_{what}", node.name);
            out.push(NodeProto {
                name: format!("{base}_dequantize"),
                op_type: "DequantizeLinear".into(),
                input: vec![codes, scale, zero_point],
                output: vec![format!("{base}_dequantized")],
                attribute: vec![AttributeProto {
                    name: "axis".into(),
                    r#type: AttributeType::Int as i32,
                    i: 0,
                    ..Default::default()
                }],
                ..Default::default()
            });
            out.push(NodeProto {
                name: format!("{base}_transpose"),
                op_type: "Transpose".into(),
                input: vec![format!("{base}_dequantized")],
                output: vec![format!("{base}_onnx_layout")],
                attribute: vec![AttributeProto {
                    name: "perm".into(),
                    r#type: AttributeType::Ints as i32,
                    ints: vec![0, 2, 1],
                    ..Default::default()
                }],
                ..Default::default()
            });
            format!("{base}_onnx_layout")
        };
        let w = weight(input(1), input(8), input(9), "W");
        let r = weight(input(2), input(10), input(11), "R");
        let mut inputs = vec![input(0), w, r];
        inputs.extend((3..8).map(input));
        while inputs.last().is_some_and(String::is_empty) {
            inputs.pop();
        }
        out.push(NodeProto {
            op_type: "LSTM".into(),
            domain: String::new(),
            input: inputs,
            ..node.clone()
        });
        expanded += 1;
    }
    (expanded > 0).then_some(out)
}
