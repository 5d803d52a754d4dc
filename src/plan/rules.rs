//! The placement rules, as data: one [`Rule`] per fact of `docs/placement.md` (copied from the
//! shared notes, with their sources), each with its effect on the units, its confidence, and the
//! check that finds it. Every threshold is a named constant here. The checks name the tensor,
//! shape or dtype at fault; rules that are guesses say so in their text.

use super::program::{ProgramView, TensorInfo};
use super::Unit;
use crate::proto::coreml::mil_spec::{DataType, Operation};
use std::collections::HashMap;

/// Bump when a rule, threshold or the cost model changes what a plan says.
pub const RULES_VERSION: u32 = 2;

/// The ANE's per-axis limit on width, height and a matmul's contraction, up to A15 (M1/M2
/// generation); A16 and later raise it to 65,536. The plan assumes the older chips.
pub const ANE_MAX_SPATIAL: usize = 16_384;
/// The ANE's limit on channels.
pub const ANE_MAX_CHANNELS: usize = 65_536;
/// ANE work is 4-D (Core ML accepts rank 5 but the ANE prefers at most this).
pub const ANE_MAX_RANK: usize = 4;
/// Conv kernel width and pooling window beyond this: probably not on the ANE (a guess).
pub const ANE_MAX_WINDOW: i64 = 13;
/// Pooling strides beyond this: probably not on the ANE (a guess).
pub const ANE_MAX_POOL_STRIDE: i64 = 2;
/// Upsampling factors beyond this: probably not on the ANE (a guess).
pub const ANE_MAX_UPSAMPLE: i64 = 2;
/// `scaled_dot_product_attention` with at most this many elements in each of Q, K and V ran on
/// the CPU (1 M elements measured on the CPU, 2 M on the ANE).
pub const SDPA_CPU_MAX_ELEMENTS: u64 = 1 << 20;
/// Total weights beyond this and the model falls off the ANE (about 3 GB on an M1).
pub const ANE_MAX_WEIGHT_BYTES: u64 = 3 << 30;
/// A connected group of ANE-eligible ops doing less work than this is predicted on the CPU: a
/// single fp16 512×512 matmul (2·512³ FLOPs) is the smallest measured on the ANE, 384×384 ran on
/// the CPU. A guess to calibrate on a device.
pub const ANE_MIN_SEGMENT_FLOPS: u64 = 2 * 512 * 512 * 512;
/// The same floor for a GPU segment (no measurement: the same dispatch argument, a guess).
pub const GPU_MIN_SEGMENT_FLOPS: u64 = 2 * 512 * 512 * 512;

/// How a rule changes a placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The unit cannot run the op: it leaves the supported set.
    RulesOut(Unit),
    /// The unit could run it but is predicted not to be chosen (the size floors).
    NotPreferred(Unit),
    /// Sources conflict or are silent about the unit: the placement stands, the reason says
    /// "uncertain".
    Uncertain(Unit),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confidence {
    High,
    MediumHigh,
    Medium,
    LowMedium,
    Low,
}

impl Confidence {
    pub fn name(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::MediumHigh => "medium-high",
            Confidence::Medium => "medium",
            Confidence::LowMedium => "low-medium",
            Confidence::Low => "low",
        }
    }
}

/// What an op-level check sees.
pub struct OpContext<'a> {
    pub view: &'a ProgramView<'a>,
    pub op: &'a Operation,
    pub fp16_program: bool,
    /// Why edgec keeps this op in fp32 (`com.edgec.fp32_ops`), if it does.
    pub fp32_pin: Option<&'a str>,
    /// Values carrying `topk` indices (directly or through reshapes, tiles, casts...), with the
    /// topk op they come from.
    pub topk_indices: &'a HashMap<&'a str, String>,
}

/// What a model-level check sees.
pub struct ModelContext<'a> {
    pub fp16_program: bool,
    pub weight_bytes: u64,
    /// Inputs with a flexible shape, and how (`range` or `enumerated`).
    pub flexible_inputs: &'a [(String, &'static str)],
}

#[derive(Clone, Copy)]
pub enum Check {
    Op(fn(&OpContext) -> Option<String>),
    /// Op types the rule applies to, with the text each gets.
    OpTypes(&'static [&'static str], &'static str),
    Model(fn(&ModelContext) -> Option<String>),
    /// Decided by the planner over segments or the user's choice, not per op.
    Planner,
}

#[derive(Clone, Copy)]
pub struct Rule {
    pub name: &'static str,
    pub effect: Effect,
    pub confidence: Confidence,
    /// `placement.md` section and row, and the evidence there.
    pub source: &'static str,
    /// The fact, in one line (for the rules table).
    pub says: &'static str,
    pub check: Check,
}

/// Every rule, checked in this order (an op's reasons keep it).
pub const RULES: &[Rule] = &[
    Rule {
        name: "compute_units",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "coreml-format.md §8: MLModelConfiguration.computeUnits [Apple docs]",
        says: "--compute-units leaves this unit out (the GPU likewise for cpu-and-ne, both for cpu-only)",
        check: Check::Planner,
    },
    Rule {
        name: "fp32_program",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 1: runtime \"Invalid input/output tensor format: fp32\"; fp32-typed models run on GPU and CPU [A coremltools Typed Execution; M]",
        says: "an fp32-precision program does not run on the ANE",
        check: Check::Model(fp32_program),
    },
    Rule {
        name: "fp32_pinned",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 1 [A; M]",
        says: "an op edgec keeps in fp32 in an fp16 program (com.edgec.fp32_ops) is off the ANE",
        check: Check::Op(fp32_pinned),
    },
    Rule {
        name: "fp32_tensor",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 1 [A; M]",
        says: "any fp32 tensor on an op's inputs or outputs keeps it off the ANE",
        check: Check::Op(fp32_tensor),
    },
    Rule {
        name: "io_cast",
        effect: Effect::Uncertain(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 2: CPU on an M1-generation ANE under macOS 14.5, ANE on M4 under macOS 26 [M]",
        says: "the model-input cast fp32→fp16 and the output cast fp16→fp32 are placed per chip and OS",
        check: Check::Op(io_cast),
    },
    Rule {
        name: "embedding_gather",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 3: Apple's DistilBERT keeps embedding lookups on the CPU [A ml-ane-transformers]; GPT-2's token gather lists GPU and CPU [M smpanaro/CoreMLInspect]",
        says: "a gather from a constant table at runtime indices (an embedding lookup) runs on the GPU or CPU",
        check: Check::Op(embedding_gather),
    },
    Rule {
        name: "topk_indices",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 4 [M roboflow/rf-detr PR #1495]",
        says: "topk, and the ops that consume its indices, are off the ANE",
        check: Check::Op(topk_indices),
    },
    Rule {
        name: "scatter",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 5: \"falls off ANE\" [A coremltools frontend/torch/ops.py]",
        says: "scatter ops have no ANE kernel",
        check: Check::OpTypes(
            &["scatter", "scatter_nd", "scatter_along_axis"],
            "scatter falls off the ANE (coremltools' own note)",
        ),
    },
    Rule {
        name: "recurrent",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 6: \"ios18.lstm has no ANE kernel\" [M FluidAudio; C hollance]",
        says: "lstm, gru and rnn have no ANE kernel",
        check: Check::OpTypes(&["lstm", "gru", "rnn"], "recurrent layers have no ANE kernel"),
    },
    Rule {
        name: "recurrent_gpu",
        effect: Effect::Uncertain(Unit::Gpu),
        confidence: Confidence::Low,
        source: "placement.md §3 row 6 speaks of the ANE only; no source found on the GPU",
        says: "whether the GPU runs lstm, gru and rnn is unknown (planned as any op off the ANE)",
        check: Check::OpTypes(
            &["lstm", "gru", "rnn"],
            "uncertain: no source says whether the GPU runs recurrent layers",
        ),
    },
    Rule {
        name: "control_flow",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 7 [M smpanaro/more-ane-transformers]",
        says: "cond and while_loop are off the ANE",
        check: Check::OpTypes(&["cond", "while_loop"], "control flow does not run on the ANE"),
    },
    Rule {
        name: "flexible_shapes",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 8: Apple engineer, developer forums thread 724930 [A; M]",
        says: "with a shape range the ANE runs only the default shape (enumerated shapes: per shape)",
        check: Check::Model(flexible_shapes),
    },
    Rule {
        name: "ane_dimension_limit",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::High,
        source: "placement.md §3 row 9: \"Output blob dimensions exceed ANE limit\" on a 50257-wide linear [M smpanaro; Anemll; C aneforge]",
        says: "an axis over 16384 (width, height, contraction; 65536 from A16) or channels over 65536 is off the ANE",
        check: Check::Op(dimension_limit),
    },
    Rule {
        name: "rank_over_4",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 10 [A coremltools optimize_tensor_operation.py; C Anemll]",
        says: "ANE work is 4-D: a tensor of rank 5 or more keeps the op off it",
        check: Check::Op(rank_over_4),
    },
    Rule {
        name: "int32_tensor",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::MediumHigh,
        source: "placement.md §3 row 11: coremltools casts index parameters to int16 [A passes/defs/quantization.py]; int32 rejected [C aneforge]",
        says: "int32 tensors computed at runtime (indices, integer arithmetic, casts to int32) are off the ANE",
        check: Check::Op(int32_tensor),
    },
    Rule {
        name: "runtime_slice",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 12 [M smpanaro]",
        says: "a slice whose begin, end or size comes from a tensor is off the ANE",
        check: Check::Op(runtime_slice),
    },
    Rule {
        name: "matrix_band_part",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 13 [M]",
        says: "matrix_band_part is off the ANE",
        check: Check::OpTypes(&["band_part", "matrix_band_part"], "matrix_band_part is off the ANE"),
    },
    Rule {
        name: "reduce_prod_trig",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::LowMedium,
        source: "placement.md §3 row 14 [C]",
        says: "reduce_prod, and sin/cos before A15, are off the ANE",
        check: Check::OpTypes(
            &["reduce_prod", "sin", "cos"],
            "reported off the ANE (community claim; sin/cos only before A15)",
        ),
    },
    Rule {
        name: "large_window",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::Low,
        source: "placement.md §3 row 16 [C hollance/neural-engine, NeuralNetwork era, \"some of these are guesses\"]",
        says: "conv kernel width > 13, pooling window > 13 or stride > 2, upsampling > 2: probably off the ANE",
        check: Check::Op(large_window),
    },
    Rule {
        name: "dilated_conv",
        effect: Effect::Uncertain(Unit::Ane),
        confidence: Confidence::Low,
        source: "placement.md §3 row 17 [C, conflicting]",
        says: "dilated convolutions: sources conflict",
        check: Check::Op(dilated_conv),
    },
    Rule {
        name: "sdpa_size_floor",
        effect: Effect::NotPreferred(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 20, §4: ≤ 1 M elements per Q/K/V on the CPU, 2 M and more on the ANE [M vx-lang/Vx #437]",
        says: "a small scaled_dot_product_attention runs on the CPU",
        check: Check::Op(sdpa_size_floor),
    },
    Rule {
        name: "total_weights",
        effect: Effect::RulesOut(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §3 row 22: about 3 GB on an M1 [M smpanaro; A ml-stable-diffusion]",
        says: "a model with more than about 3 GB of weights falls off the ANE",
        check: Check::Model(total_weights),
    },
    Rule {
        name: "unlisted_op",
        effect: Effect::Uncertain(Unit::Ane),
        confidence: Confidence::Low,
        source: "placement.md §3 row 15 (the ops known to run on the ANE)",
        says: "an op type not among those known to run on the ANE, with no rule against it, is planned there by default",
        check: Check::Planner,
    },
    Rule {
        name: "size_floor",
        effect: Effect::NotPreferred(Unit::Ane),
        confidence: Confidence::Medium,
        source: "placement.md §4: a 512×512 fp16 matmul on the ANE, 384×384 on the CPU [M vx-lang/Vx #435]; small whole programs ran on the CPU [M]",
        says: "a connected group of ANE-eligible ops doing too little work is predicted on the CPU (threshold a guess)",
        check: Check::Planner,
    },
    Rule {
        name: "gpu_size_floor",
        effect: Effect::NotPreferred(Unit::Gpu),
        confidence: Confidence::Low,
        source: "placement.md §4 (the same dispatch-cost argument; no GPU measurement)",
        says: "off the ANE, a connected group doing too little work stays on the CPU rather than the GPU (a guess)",
        check: Check::Planner,
    },
];

/// Op types known to run on the ANE in fp16 with static shapes within limits (placement.md §3
/// rows 15, 18-21), plus the elementwise ops of the same families.
pub const ANE_KNOWN_OPS: &[&str] = &[
    "conv",
    "conv_transpose",
    "linear",
    "matmul",
    "einsum",
    "max_pool",
    "avg_pool",
    "l2_pool",
    "relu",
    "relu6",
    "leaky_relu",
    "prelu",
    "sigmoid",
    "sigmoid_hard",
    "silu",
    "tanh",
    "gelu",
    "softplus",
    "softsign",
    "elu",
    "erf",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "inverse",
    "abs",
    "clip",
    "add",
    "sub",
    "mul",
    "real_div",
    "pow",
    "maximum",
    "minimum",
    "softmax",
    "concat",
    "split",
    "slice_by_index",
    "slice_by_size",
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "batch_norm",
    "instance_norm",
    "layer_norm",
    "l2_norm",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_l2_norm",
    "upsample_nearest_neighbor",
    "upsample_bilinear",
    "resize_bilinear",
    "resize",
    "scaled_dot_product_attention",
    "cast",
    "identity",
    "pad",
    "pixel_shuffle",
    "depth_to_space",
    "space_to_depth",
    "floor",
    "ceil",
    "gather",
];

/// The rule called `name` (every name the planner uses is in [`RULES`]).
pub fn rule(name: &str) -> &'static Rule {
    RULES.iter().find(|r| r.name == name).unwrap_or(&RULES[0])
}

fn fp32_program(m: &ModelContext) -> Option<String> {
    (!m.fp16_program).then(|| "the program computes in fp32 (--precision fp32); the ANE computes in fp16".into())
}

fn fp32_pinned(c: &OpContext) -> Option<String> {
    c.fp32_pin.map(|reason| format!("kept in fp32 by edgec ({reason})"))
}

/// A cast at the program's boundary: from a model input, or producing a model output.
pub fn is_io_cast(view: &ProgramView, op: &Operation) -> bool {
    op.r#type == "cast"
        && (view.input(op, "x").is_some_and(|x| view.function_inputs.contains(x))
            || op.outputs.iter().any(|o| view.block_outputs.contains(o.name.as_str())))
}

fn fp32_tensor(c: &OpContext) -> Option<String> {
    if !c.fp16_program || c.fp32_pin.is_some() || is_io_cast(c.view, c.op) {
        return None;
    }
    let fp32 = |t: &TensorInfo| t.is(DataType::Float32);
    if let Some((param, name)) = c
        .view
        .runtime_inputs(c.op)
        .into_iter()
        .find(|(_, n)| c.view.types.get(n).is_some_and(fp32))
    {
        return Some(format!("input {param} %{name} is {}", c.view.types[name]));
    }
    c.op.outputs
        .iter()
        .find(|o| c.view.types.get(o.name.as_str()).is_some_and(fp32))
        .map(|o| format!("output %{} is {}", o.name, c.view.types[o.name.as_str()]))
}

fn io_cast(c: &OpContext) -> Option<String> {
    if !is_io_cast(c.view, c.op) {
        return None;
    }
    let which = if c
        .view
        .input(c.op, "x")
        .is_some_and(|x| c.view.function_inputs.contains(x))
    {
        "model-input cast"
    } else {
        "model-output cast"
    };
    Some(format!(
        "uncertain: the {which} ran on the CPU on an M1-generation ANE (macOS 14.5) and on the ANE on M4 (macOS 26); planned with its neighbours"
    ))
}

const GATHERS: &[&str] = &["gather", "gather_nd", "gather_along_axis"];

fn embedding_gather(c: &OpContext) -> Option<String> {
    if !GATHERS.contains(&c.op.r#type.as_str()) {
        return None;
    }
    let table = c.view.input(c.op, "x")?;
    let indices = c.view.input(c.op, "indices")?;
    if !c.view.is_constant(table) || c.view.is_constant(indices) {
        return None;
    }
    let ty = |n: &str| c.view.types.get(n).map(|t| t.to_string()).unwrap_or_default();
    Some(format!(
        "looks up rows of the constant table %{table} {} at runtime indices %{indices} {} (an embedding lookup)",
        ty(table),
        ty(indices)
    ))
}

fn topk_indices(c: &OpContext) -> Option<String> {
    if c.op.r#type == "topk" {
        return Some("topk runs off the ANE".into());
    }
    c.view.runtime_inputs(c.op).into_iter().find_map(|(_, name)| {
        c.topk_indices
            .get(name)
            .map(|topk| format!("reads %{name}, the indices of topk %{topk}"))
    })
}

/// The runtime tensors an op reads and writes, with how to name each in a reason (built only
/// when a rule fires).
fn runtime_tensors<'o>(c: &OpContext<'o>) -> Vec<(Option<&'o str>, &'o str)> {
    let mut tensors: Vec<(Option<&str>, &str)> = c
        .view
        .runtime_inputs(c.op)
        .into_iter()
        .map(|(p, n)| (Some(p), n))
        .collect();
    tensors.extend(c.op.outputs.iter().map(|o| (None, o.name.as_str())));
    tensors
}

fn label(param: Option<&str>, name: &str) -> String {
    match param {
        Some(p) => format!("input {p} %{name}"),
        None => format!("output %{name}"),
    }
}

fn dimension_limit(c: &OpContext) -> Option<String> {
    for (param, name) in runtime_tensors(c) {
        let Some(t) = c.view.types.get(name) else {
            continue;
        };
        let rank = t.shape.len();
        for (axis, &d) in t.shape.iter().enumerate() {
            let spatial = axis + 2 >= rank;
            if spatial && d > ANE_MAX_SPATIAL {
                return Some(format!(
                    "{} {t}: axis {axis} is {d}, over the ANE's per-axis limit of {ANE_MAX_SPATIAL} (A15 and earlier; 65536 from A16)",
                    label(param, name)
                ));
            }
            if rank == 4 && axis == 1 && d > ANE_MAX_CHANNELS {
                return Some(format!(
                    "{} {t}: {d} channels, over the ANE's limit of {ANE_MAX_CHANNELS}",
                    label(param, name)
                ));
            }
        }
    }
    None
}

fn rank_over_4(c: &OpContext) -> Option<String> {
    runtime_tensors(c).into_iter().find_map(|(param, name)| {
        let t = c.view.types.get(name)?;
        (t.shape.len() > ANE_MAX_RANK)
            .then(|| format!("{} {t} has rank {}; ANE work is 4-D", label(param, name), t.shape.len()))
    })
}

fn int32_tensor(c: &OpContext) -> Option<String> {
    let int32 = |n: &str| c.view.types.get(n).is_some_and(|t| t.is(DataType::Int32));
    if let Some((param, name)) = c.view.runtime_inputs(c.op).into_iter().find(|(_, n)| int32(n)) {
        return Some(format!("input {param} %{name} is {}", c.view.types[name]));
    }
    c.op.outputs
        .iter()
        .find(|o| int32(&o.name))
        .map(|o| format!("output %{} is {}", o.name, c.view.types[o.name.as_str()]))
}

fn runtime_slice(c: &OpContext) -> Option<String> {
    if !matches!(c.op.r#type.as_str(), "slice_by_index" | "slice_by_size") {
        return None;
    }
    ["begin", "end", "size"].iter().find_map(|param| {
        let name = c.view.input(c.op, param)?;
        (!c.view.is_constant(name)).then(|| format!("{param} comes from the tensor %{name}, not a constant"))
    })
}

fn large_window(c: &OpContext) -> Option<String> {
    let guess = "probably off the ANE (a NeuralNetwork-era list of guesses)";
    match c.op.r#type.as_str() {
        "conv" | "conv_transpose" => {
            let w = c.view.input_type(c.op, "weight")?;
            let width = *w.shape.last()? as i64;
            (width > ANE_MAX_WINDOW)
                .then(|| format!("kernel width {width} (weight {w}) is over {ANE_MAX_WINDOW}: {guess}"))
        }
        "max_pool" | "avg_pool" | "l2_pool" => {
            let kernel = c.view.ints(c.op, "kernel_sizes").unwrap_or_default();
            let strides = c.view.ints(c.op, "strides").unwrap_or_default();
            if let Some(k) = kernel.iter().find(|&&k| k > ANE_MAX_WINDOW) {
                return Some(format!("pooling window {k} is over {ANE_MAX_WINDOW}: {guess}"));
            }
            strides
                .iter()
                .find(|&&s| s > ANE_MAX_POOL_STRIDE)
                .map(|s| format!("pooling stride {s} is over {ANE_MAX_POOL_STRIDE}: {guess}"))
        }
        "upsample_nearest_neighbor" | "upsample_bilinear" => ["scale_factor_height", "scale_factor_width"]
            .iter()
            .filter_map(|p| c.view.ints(c.op, p).and_then(|v| v.first().copied()))
            .find(|&f| f > ANE_MAX_UPSAMPLE)
            .map(|f| format!("upsampling factor {f} is over {ANE_MAX_UPSAMPLE}: {guess}")),
        _ => None,
    }
}

fn dilated_conv(c: &OpContext) -> Option<String> {
    if c.op.r#type != "conv" {
        return None;
    }
    let dilations = c.view.ints(c.op, "dilations")?;
    dilations
        .iter()
        .any(|&d| d > 1)
        .then(|| format!("uncertain: dilations {dilations:?}; sources conflict on dilated convs on the ANE"))
}

fn sdpa_size_floor(c: &OpContext) -> Option<String> {
    if c.op.r#type != "scaled_dot_product_attention" {
        return None;
    }
    let largest = ["query", "key", "value"]
        .iter()
        .filter_map(|p| c.view.input_type(c.op, p))
        .map(TensorInfo::elements)
        .max()?;
    (largest <= SDPA_CPU_MAX_ELEMENTS).then(|| {
        format!("Q/K/V hold at most {largest} elements each, under the ANE floor of {SDPA_CPU_MAX_ELEMENTS} (measured on the CPU)")
    })
}

/// Only a range rules the ANE out; enumerated shapes are planned per shape, as here.
fn flexible_shapes(m: &ModelContext) -> Option<String> {
    let (name, _) = m.flexible_inputs.iter().find(|(_, kind)| *kind == "range")?;
    Some(format!(
        "input {name} has a shape range: the ANE runs only its default shape (fix it with --input-shape)"
    ))
}

fn total_weights(m: &ModelContext) -> Option<String> {
    (m.weight_bytes > ANE_MAX_WEIGHT_BYTES).then(|| {
        format!(
            "{} MB of weights, over the ANE's {} MB (M1); split the model",
            m.weight_bytes >> 20,
            ANE_MAX_WEIGHT_BYTES >> 20
        )
    })
}
