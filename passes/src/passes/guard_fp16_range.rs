//! The static fp16 range guard (fp16 precision only; runs just before `cast_to_fp16`): no
//! constant may silently change class when stored as fp16. For every float constant an op
//! reads, and every epsilon attribute:
//!
//! - a BatchNorm whose statistics fp16 cannot hold (a `running_var` of 497,160, say) is folded,
//!   in fp32, into a per-channel scale and shift: `batch_norm(x, 0, 1, γ/√(var+ε), β−mean·γ/√(var+ε), ε=0)`,
//!   exact up to fp32 rounding;
//! - a sentinel (|v| ≥ 1e38, e.g. `finfo(float32).min` in an attention mask) is stored as
//!   ±65,504 rather than ±inf, so `0 · sentinel` stays 0 instead of NaN;
//! - a nonzero value that would round to 0 in a small constant (under 400 elements, coremltools'
//!   cut) added, subtracted or clamped against (an epsilon), or in an epsilon attribute, becomes
//!   the smallest fp16 of its sign, as coremltools does: nonzero stays nonzero;
//! - a scalar multiplier or divisor that would round to 0 keeps the op in fp32
//!   ([`Fp32Reason::ConstantUnderflow`]): raising it would scale the result by a wrong factor
//!   (1e-9 → 6e-8); in any other constant (a weight) a flushed value is rounding noise and left
//!   alone;
//! - any other finite value beyond ±65,504 keeps the op in fp32 (coremltools' rule), pinned with
//!   [`Fp32Reason::ConstantOverflow`]. A reciprocal rewrite (`x / c` → `x · (1/c)`) is not used:
//!   `1/c` of an fp16-overflowing `c` is an fp16 subnormal with ~1% error, so it is not exact.
//!
//! A recurrent layer (`lstm`, `gru`, `rnn`) on a target whose recurrent ops are fp32-only
//! ([`PassOptions::fp16_recurrent`] off) is kept in fp32 ([`Fp32Reason::Fp32OnlyOp`]).
//!
//! Every decision goes to [`Graph::precision_log`].

use crate::ir::{DType, Graph, Tensor, ValueId};
use crate::op::{BinaryOp, Op};
use crate::pass::{Pass, PassError, PassOptions, Precision};
use crate::precision::{
    fits_fp16, fp16_class, Fp16Class, Fp16Rewrite, Fp32Reason, PrecisionAction, PrecisionDecision, FP16_MAX,
};
use half::f16;

pub struct GuardFp16Range;

/// Constants smaller than this are epsilons and scalars whose zero-flush matters (coremltools).
const SMALL_CONSTANT_ELEMENTS: usize = 400;

impl Pass for GuardFp16Range {
    fn name(&self) -> &'static str {
        "guard_fp16_range"
    }

    fn enabled(&self, options: &PassOptions) -> bool {
        options.precision == Precision::Fp16
    }

    fn run(&self, graph: &mut Graph, options: &PassOptions) -> Result<(), PassError> {
        for id in graph.order.clone() {
            let node = graph.node(id);
            // Casts only move values between types; pinned nodes already compute in fp32.
            if matches!(node.op, Op::Cast { .. }) || node.keep_fp32.is_some() {
                continue;
            }
            if matches!(node.op, Op::Lstm(_) | Op::Gru(_) | Op::Rnn(_)) && !options.fp16_recurrent {
                let reason = Fp32Reason::Fp32OnlyOp;
                let detail = reason.to_string();
                graph.keep_in_fp32(id, reason);
                log(graph, id, PrecisionAction::KeptFp32, detail);
                continue;
            }
            if matches!(node.op, Op::BatchNorm { .. }) && fold_batchnorm(graph, id) {
                continue;
            }
            let logged = graph.precision_log.len();
            raise_epsilon(graph, id);
            let additive = matches!(
                graph.node(id).op,
                Op::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Maximum | BinaryOp::Minimum)
            );
            let scaling = matches!(graph.node(id).op, Op::Binary(BinaryOp::Mul | BinaryOp::Div));
            let mut worst_overflow: Option<f32> = None;
            let mut underflow: Option<f32> = None;
            for slot in 0..graph.node(id).inputs.len() {
                let input = graph.node(id).inputs[slot];
                let Some(t) = graph.constant(input) else {
                    continue;
                };
                if t.ty.dtype != DType::F32 {
                    continue;
                }
                let values = t.to_f32_vec();
                let (mut overflow, mut sentinels, mut flushes) = (0.0f32, 0usize, 0usize);
                for &v in &values {
                    match fp16_class(v) {
                        Fp16Class::Kept => {}
                        Fp16Class::Overflows => overflow = overflow.max(v.abs()),
                        Fp16Class::Sentinel => sentinels += 1,
                        Fp16Class::FlushesToZero => flushes += 1,
                    }
                }
                if overflow > 0.0 {
                    worst_overflow = Some(worst_overflow.map_or(overflow, |w| w.max(overflow)));
                    continue;
                }
                let splat = values.iter().all(|&v| v == values[0]);
                if scaling && flushes > 0 && splat {
                    underflow = Some(values[0]);
                    continue;
                }
                let small = additive && values.len() < SMALL_CONSTANT_ELEMENTS;
                if sentinels == 0 && (flushes == 0 || !small) {
                    continue;
                }
                let name = graph.value(input).name.clone();
                let fixed: Vec<f32> = values
                    .iter()
                    .map(|&v| match fp16_class(v) {
                        Fp16Class::Sentinel => FP16_MAX.copysign(v),
                        Fp16Class::FlushesToZero if small => f16::from_bits(1).to_f32().copysign(v),
                        _ => v,
                    })
                    .collect();
                let replacement = graph.add_const(
                    format!("{name}_fp16_safe"),
                    Tensor::from_f32(t.ty.shape.clone(), &fixed),
                );
                graph.record_derived(replacement, input);
                remember(graph, id);
                graph.node_mut(id).inputs[slot] = replacement;
                if sentinels > 0 {
                    log(
                        graph,
                        id,
                        PrecisionAction::SaturatedSentinel,
                        format!("constant {name:?}: {sentinels} value(s) of magnitude >= 1e38 stored as +-65504"),
                    );
                }
                if flushes > 0 && small {
                    let smallest = f16::from_bits(1).to_f32();
                    log(
                        graph,
                        id,
                        PrecisionAction::RaisedToFp16Minimum,
                        format!(
                            "constant {name:?}: {flushes} nonzero value(s) that round to 0 stored as +-{smallest:e}"
                        ),
                    );
                }
            }
            let reason = match (worst_overflow, underflow) {
                (Some(max_abs), _) => Some(Fp32Reason::ConstantOverflow { max_abs }),
                (None, Some(value)) => Some(Fp32Reason::ConstantUnderflow { value }),
                (None, None) => None,
            };
            if let Some(reason) = reason {
                // In fp32 the op needs none of the fp16 fixes made to it above.
                graph.precision_log.truncate(logged);
                let detail = reason.to_string();
                graph.keep_in_fp32(id, reason);
                log(graph, id, PrecisionAction::KeptFp32, detail);
            }
        }
        Ok(())
    }
}

/// Remember `id` as it is, before its first change for fp16 storage.
fn remember(graph: &mut Graph, id: crate::ir::NodeId) {
    if !graph.fp16_rewrites.iter().any(|r| r.node == id) {
        let node = graph.node(id);
        let original = Fp16Rewrite {
            node: id,
            op: node.op.clone(),
            inputs: node.inputs.clone(),
        };
        graph.fp16_rewrites.push(original);
    }
}

fn log(graph: &mut Graph, id: crate::ir::NodeId, action: PrecisionAction, detail: String) {
    let node = graph.node(id);
    let decision = PrecisionDecision {
        origin: node.origin.clone(),
        op: node.op.name(),
        action,
        detail,
    };
    graph.precision_log.push(decision);
}

/// Fold a BatchNorm whose constant statistics do not fit fp16 into scale-and-shift form, when
/// the scale and shift do. Returns whether it did.
fn fold_batchnorm(graph: &mut Graph, id: crate::ir::NodeId) -> bool {
    let node = graph.node(id);
    let Op::BatchNorm { epsilon } = node.op else {
        return false;
    };
    let params: Option<Vec<(ValueId, Vec<f32>)>> = node.inputs[1..]
        .iter()
        .map(|&v| {
            graph
                .constant(v)
                .filter(|t| t.ty.dtype == DType::F32)
                .map(|t| (v, t.to_f32_vec()))
        })
        .collect();
    let Some(params) = params else {
        return false;
    };
    let names = ["mean", "variance", "gamma", "beta"];
    let bad: Vec<String> = params
        .iter()
        .zip(names)
        .filter(|((_, v), _)| !fits_fp16(v))
        .map(|((_, v), name)| {
            let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            format!("{name} up to {max:e}")
        })
        .collect();
    let eps_flushes = fp16_class(epsilon) == Fp16Class::FlushesToZero;
    if bad.is_empty() && !eps_flushes {
        return false;
    }
    let [(_, mean), (_, var), (_, gamma), (_, beta)] = [&params[0], &params[1], &params[2], &params[3]];
    let scale: Vec<f32> = (0..mean.len()).map(|c| gamma[c] / (var[c] + epsilon).sqrt()).collect();
    let shift: Vec<f32> = (0..mean.len()).map(|c| beta[c] - mean[c] * scale[c]).collect();
    if !fits_fp16(&scale) || !fits_fp16(&shift) {
        return false;
    }
    let shape = graph.ty(params[0].0).shape.clone();
    let name = graph.value(node.outputs[0]).name.clone();
    let channels = mean.len();
    let zeros = graph.add_const(
        format!("{name}_mean_folded"),
        Tensor::from_f32(shape.clone(), &vec![0.0; channels]),
    );
    let ones = graph.add_const(
        format!("{name}_variance_folded"),
        Tensor::from_f32(shape.clone(), &vec![1.0; channels]),
    );
    let scale = graph.add_const(format!("{name}_scale_folded"), Tensor::from_f32(shape.clone(), &scale));
    let shift = graph.add_const(format!("{name}_shift_folded"), Tensor::from_f32(shape, &shift));
    remember(graph, id);
    let node = graph.node_mut(id);
    node.inputs.truncate(1);
    node.inputs.extend([zeros, ones, scale, shift]);
    node.op = Op::BatchNorm { epsilon: 0.0 };
    let mut why = bad;
    if eps_flushes {
        why.push(format!("epsilon {epsilon:e} rounds to 0"));
    }
    log(
        graph,
        id,
        PrecisionAction::FoldedBatchNorm,
        format!("{} in fp16; the folded scale and shift fit", why.join(", ")),
    );
    true
}

/// An epsilon attribute that would round to 0 in fp16 becomes fp16's smallest positive value.
fn raise_epsilon(graph: &mut Graph, id: crate::ir::NodeId) {
    let was = match graph.node(id).op {
        Op::BatchNorm { epsilon } | Op::LayerNorm { epsilon, .. } => epsilon,
        _ => return,
    };
    if fp16_class(was) != Fp16Class::FlushesToZero {
        return;
    }
    remember(graph, id);
    let (Op::BatchNorm { epsilon } | Op::LayerNorm { epsilon, .. }) = &mut graph.node_mut(id).op else {
        return;
    };
    *epsilon = f16::from_bits(1).to_f32();
    let now = *epsilon;
    log(
        graph,
        id,
        PrecisionAction::RaisedToFp16Minimum,
        format!("epsilon {was:e} rounds to 0 in fp16; stored as {now:e}"),
    );
}
