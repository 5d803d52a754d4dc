//! Cost estimates per op: floating-point operations and bytes moved, folded into one number so
//! ops can be compared as shares of the program (as `MLComputePlan` reports an estimated share of
//! the prediction time). These are textbook counts, not a device model: a conv is
//! 2·output·(input channels/groups)·kernel, an elementwise op one operation per output element;
//! data movement costs only its bytes.

use super::program::{ProgramView, TensorInfo};
use crate::proto::coreml::mil_spec::Operation;

/// How many floating-point operations one byte of memory traffic is worth: the balance point of
/// an accelerator whose arithmetic outruns its memory (a guess; calibrate on a device). An op
/// costs the larger of its FLOPs and its bytes times this.
pub const FLOPS_PER_BYTE: u64 = 32;

/// Every op costs at least this much (a dispatch), so shares never divide by zero.
pub const MIN_OP_COST: u64 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub flops: u64,
    pub bytes: u64,
}

impl Cost {
    /// The single number shares are computed from.
    pub fn weight(self) -> u64 {
        self.flops
            .max(self.bytes.saturating_mul(FLOPS_PER_BYTE))
            .max(MIN_OP_COST)
    }
}

/// Ops that compute one result per output element from one or two operands.
const ELEMENTWISE: &[&str] = &[
    "add",
    "sub",
    "mul",
    "real_div",
    "floor_div",
    "mod",
    "pow",
    "maximum",
    "minimum",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "sigmoid",
    "sigmoid_hard",
    "silu",
    "tanh",
    "gelu",
    "softplus",
    "softsign",
    "erf",
    "exp",
    "exp2",
    "log",
    "sqrt",
    "rsqrt",
    "inverse",
    "abs",
    "sign",
    "floor",
    "ceil",
    "round",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "atanh",
    "clip",
    "thresholded_relu",
    "prelu",
    "scaled_tanh",
    "linear_activation",
    "select",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
];

pub fn estimate(view: &ProgramView, op: &Operation) -> Cost {
    let outputs: Vec<&TensorInfo> = op
        .outputs
        .iter()
        .filter_map(|o| view.types.get(o.name.as_str()))
        .collect();
    let out_elements: u64 = outputs.iter().map(|t| t.elements()).sum();
    let out_bytes: u64 = outputs.iter().map(|t| t.bytes()).sum();
    let input = |param: &str| view.input_type(op, param);
    let in_elements = |param: &str| input(param).map_or(0, TensorInfo::elements);
    // Bytes read: every tensor operand, weights included; a gather reads only the rows it
    // returns, not its whole table.
    let gathers = matches!(op.r#type.as_str(), "gather" | "gather_nd" | "gather_along_axis");
    let in_bytes: u64 = op
        .inputs
        .iter()
        .filter(|(param, _)| !(gathers && param.as_str() == "x"))
        .filter_map(|(param, _)| input(param))
        .filter(|t| !t.shape.is_empty())
        .map(TensorInfo::bytes)
        .sum::<u64>()
        + if gathers { out_bytes } else { 0 };

    let flops = match op.r#type.as_str() {
        "conv" => {
            // weight [C_out, C_in/groups, k...]: each output element takes (C_in/groups)·k MACs.
            let per_output = input("weight").map_or(0, |w| {
                w.elements() / w.shape.first().copied().unwrap_or(1).max(1) as u64
            });
            2 * out_elements * per_output
        }
        "conv_transpose" => {
            // weight [C_in, C_out/groups, k...]: each input element scatters into (C_out/groups)·k.
            let per_input = input("weight").map_or(0, |w| {
                w.elements() / w.shape.first().copied().unwrap_or(1).max(1) as u64
            });
            2 * in_elements("x") * per_input
        }
        "linear" => {
            let k = input("x").and_then(|t| t.shape.last().copied()).unwrap_or(1) as u64;
            2 * out_elements * k
        }
        "matmul" => {
            let k = input("x")
                .map(|t| {
                    let rank = t.shape.len();
                    let axis = if view.flag(op, "transpose_x") == Some(true) {
                        rank.saturating_sub(2)
                    } else {
                        rank.saturating_sub(1)
                    };
                    t.shape.get(axis).copied().unwrap_or(1)
                })
                .unwrap_or(1) as u64;
            2 * out_elements * k
        }
        "scaled_dot_product_attention" => {
            // Q·Kᵀ then ·V: 2·(L·S·E) each, per batch and head.
            let q = input("query");
            let k = input("key");
            match (q, k) {
                (Some(q), Some(k)) => {
                    let s = k.shape.get(k.shape.len().saturating_sub(2)).copied().unwrap_or(1) as u64;
                    4 * q.elements() * s + 5 * out_elements
                }
                _ => out_elements,
            }
        }
        "max_pool" | "avg_pool" | "l2_pool" => {
            let window: u64 = view
                .ints(op, "kernel_sizes")
                .map_or(1, |k| k.iter().map(|&v| v.max(1) as u64).product());
            out_elements * window
        }
        t if t.starts_with("reduce_") => in_elements("x"),
        "softmax" => 5 * out_elements,
        "layer_norm" | "batch_norm" | "instance_norm" | "l2_norm" | "local_response_norm" => 8 * out_elements,
        "lstm" | "gru" | "rnn" => {
            // Every step of every batch row multiplies each weight of each direction once.
            let weights: u64 = ["weight_ih", "weight_hh", "weight_ih_back", "weight_hh_back"]
                .iter()
                .map(|p| in_elements(p))
                .sum();
            let x = input("x").map(|t| t.shape.clone()).unwrap_or_default();
            let (steps, batch) = (x.first().copied().unwrap_or(1), x.get(1).copied().unwrap_or(1));
            2 * weights * steps as u64 * batch as u64
        }
        "upsample_bilinear" | "resize_bilinear" | "crop_resize" => 4 * out_elements,
        "cumsum" | "topk" | "argsort" => {
            let n = in_elements("x").max(1);
            n * (64 - n.leading_zeros() as u64)
        }
        t if ELEMENTWISE.contains(&t) => out_elements,
        // Data movement: reshape, transpose, concat, slices, gathers, casts, pads, tiles...
        _ => 0,
    };
    Cost {
        flops,
        bytes: in_bytes + out_bytes,
    }
}
