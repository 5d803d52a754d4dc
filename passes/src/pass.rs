//! The `Pass` trait and the one ordered list of passes.
//!
//! Each pass lives in its own file under `passes/`, does one job, and is named in [`PIPELINE`].
//! The driver runs the list in order, timing each pass and (in tests) verifying the graph after
//! each one.

use crate::ir::Graph;
use crate::passes;

/// Numeric precision of the compiled program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// fp16 weights and compute, fp32 model inputs and outputs (Core ML's default).
    #[default]
    Fp16,
    /// fp32 throughout.
    Fp32,
}

/// `--gelu`: which formula exact GELUs are computed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GeluChoice {
    /// The model's own formula.
    Exact,
    /// Exact GELU becomes the tanh approximation (MIL `gelu` `TANH_APPROXIMATION`).
    Fast,
    /// `Fast` in fp16 (the approximation's error is below fp16's rounding on the values GELU
    /// sees), `Exact` in fp32.
    #[default]
    Auto,
}

impl GeluChoice {
    /// `Exact` or `Fast`: what `Auto` means at `precision`.
    pub fn resolve(self, precision: Precision) -> GeluChoice {
        match (self, precision) {
            (GeluChoice::Auto, Precision::Fp16) => GeluChoice::Fast,
            (GeluChoice::Auto, Precision::Fp32) => GeluChoice::Exact,
            (choice, _) => choice,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GeluChoice::Exact => "exact",
            GeluChoice::Fast => "fast",
            GeluChoice::Auto => "auto",
        }
    }
}

/// What the passes need to know about the compilation.
#[derive(Clone, Debug, Default)]
pub struct PassOptions {
    pub precision: Precision,
    /// Whether model inputs and outputs may be fp16 (Core ML allows it from iOS 16).
    pub fp16_io: bool,
    /// `--weights` rules, in order (empty: every weight dense).
    pub weights: Vec<crate::compressed::WeightRule>,
    /// Weights with at most this many elements stay dense (coremltools' `weight_threshold`).
    pub weights_min_elements: usize,
    /// `--gelu`.
    pub gelu: GeluChoice,
    /// Whether the target has a fused attention op (`softmax(q·kᵀ/√d + mask)·v` as one op):
    /// `fuse_attention` runs only then.
    pub fused_attention: bool,
    /// Whether the target's recurrent layers (`lstm`, `gru`, `rnn`) compute in fp16; without
    /// it they stay fp32 in an fp16 program.
    pub fp16_recurrent: bool,
    /// Whether the target stores int8 weights with per-tensor or per-channel scales
    /// (`constexpr_affine_dequantize`, iOS 16).
    pub quantized_weights: bool,
    /// Whether the target stores block-wise quantized weights (`constexpr_blockwise_shift_scale`,
    /// iOS 18).
    pub blockwise_weights: bool,
    /// The graph is the body of a control-flow op (set by [`apply`]): its inputs and outputs are
    /// values inside the program, not the model's interface.
    pub in_region: bool,
}

/// A failure inside a pass, naming the ONNX node it concerns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pass {pass}: {message}{}", crate::verify::node_suffix(origin))]
pub struct PassError {
    pub pass: &'static str,
    pub origin: String,
    pub message: String,
}

pub trait Pass: Sync {
    fn name(&self) -> &'static str;

    /// Whether this pass runs under `options`.
    fn enabled(&self, _options: &PassOptions) -> bool {
        true
    }

    /// Whether this pass also runs on the bodies of control-flow ops (see [`apply`]). Passes
    /// about the model's own interface do not.
    fn runs_in_regions(&self) -> bool {
        true
    }

    fn run(&self, graph: &mut Graph, options: &PassOptions) -> Result<(), PassError>;
}

/// Run `pass` on `graph` and on the bodies of its control-flow ops, innermost first: a body's
/// interface types (int64 narrowed, fp16) are settled before the op holding it re-infers its
/// results from them. The bodies of an op pinned to fp32 are compiled in fp32. What a pass
/// reports inside a body (warnings, precision decisions, the weight report, rewrite counts) is
/// moved up to `graph`, so the model's report lists it.
pub fn apply(pass: &dyn Pass, graph: &mut Graph, options: &PassOptions) -> Result<(), PassError> {
    // The bodies' reports, moved up after the pass has run on `graph` too: a pass may rebuild
    // its own report.
    let mut from_regions = Graph::default();
    if pass.runs_in_regions() {
        for &id in &graph.order {
            let node = &mut graph.nodes[id.index()];
            let inner = PassOptions {
                in_region: true,
                precision: if node.keep_fp32.is_some() {
                    Precision::Fp32
                } else {
                    options.precision
                },
                ..options.clone()
            };
            if !pass.enabled(&inner) {
                continue;
            }
            for region in node.op.regions_mut() {
                apply(pass, region, &inner)?;
                move_reports(region, &mut from_regions);
            }
        }
    }
    pass.run(graph, options)?;
    move_reports(&mut from_regions, graph);
    Ok(())
}

/// Move what passes reported in `from` (warnings, precision decisions, weight-report rows,
/// rewrite counts) to the end of `to`'s.
fn move_reports(from: &mut Graph, to: &mut Graph) {
    to.warnings.append(&mut from.warnings);
    to.precision_log.append(&mut from.precision_log);
    to.weight_report.append(&mut from.weight_report);
    for (what, count) in std::mem::take(&mut from.rewrite_counts) {
        *to.rewrite_counts.entry(what).or_default() += count;
    }
}

/// Every pass, in the order the driver runs them.
pub const PIPELINE: &[&dyn Pass] = &[
    &passes::legalize::Legalize,
    &passes::eliminate_identity::EliminateIdentity,
    &passes::fold_constants::FoldConstants,
    &passes::inline_known_branches::InlineKnownBranches,
    &passes::fuse_conv_batchnorm::FuseConvBatchNorm,
    &passes::fuse_conv_bias::FuseConvBias,
    &passes::fuse_linear::FuseLinear,
    &passes::cancel_casts::CancelCasts,
    &passes::fold_transpose_reshape::FoldTransposeReshape,
    &passes::dedup_constants::DedupConstants,
    &passes::eliminate_common_subexpressions::EliminateCommonSubexpressions,
    &passes::fuse_gelu::FuseGelu,
    &passes::fast_gelu::FastGelu,
    &passes::fuse_layer_norm::FuseLayerNorm,
    &passes::fuse_silu::FuseSilu,
    &passes::fuse_hard_swish::FuseHardSwish,
    &passes::fuse_clip::FuseClip,
    &passes::fuse_attention::FuseAttention,
    &passes::dead_code::DeadCode,
    &passes::narrow_int64::NarrowInt64,
    &passes::guard_fp16_range::GuardFp16Range,
    &passes::cast_to_fp16::CastToFp16,
    &passes::compress_weights::CompressWeights,
    &passes::legalize_io::LegalizeIo,
];

/// [`PIPELINE`] in three parts around the fp16 range guard: the passes before it (the program
/// is still the model's fp32 program), the guard (the fp16 program's constants and static pins),
/// and the rest from `cast_to_fp16` on. Calibrated mixed precision finishes the first part's
/// output as a reference fp32 program, the second's as the fp16 program to emulate, and after
/// the search runs the rest in fp16.
pub fn split_for_precision() -> [&'static [&'static dyn Pass]; 3] {
    let at = |name: &str| PIPELINE.iter().position(|p| p.name() == name).unwrap_or(PIPELINE.len());
    let guard = at(passes::guard_fp16_range::GuardFp16Range.name());
    let cast = at(passes::cast_to_fp16::CastToFp16.name()).max(guard);
    [&PIPELINE[..guard], &PIPELINE[guard..cast], &PIPELINE[cast..]]
}
