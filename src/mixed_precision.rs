//! `--precision auto`: calibrated mixed precision.
//!
//! The program is compiled in fp32, then run on calibration inputs in two lanes (fp32, and fp16
//! emulated with some ops kept in fp32: [`crate::interp::emulate`]). While an output's cosine
//! against fp32 is below the target, the search finds where fp16 first goes wrong — the first
//! op whose error passes [`ORIGIN_ERROR`] while its operands are still within it — and keeps
//! that op in fp32. If the op is in fp32 already, its operands lost the signal before it
//! (cancellation: `x − mean(x)` of a value with a large offset; or a reduction picking the one
//! element fp16 flushed), so the nearest fp16 ops they come from are kept in fp32 instead. When the target is reached, the ops the search added are tried
//! back in fp16 (halves, then quarters, ... then one by one) and stay there if the target
//! still holds. Both phases are bounded ([`MAX_ROUNDS`], [`MAX_TRIALS`]); the result says
//! whether the target was reached.

use crate::error::Result;
use crate::interp::emulate::{trace_fp16, OpStats, Trace};
use crate::interp::NdArray;
use edgec_passes::ir::NodeId;
use edgec_passes::precision::{Divergence, Fp32Reason};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Output cosine against fp32 that the search aims for.
pub const DEFAULT_MIN_COSINE: f64 = 0.9999;
/// Relative L2 error at which an op counts as where fp16 went wrong (cosine 0.9999 is a
/// relative error of about 1.4e-2).
pub const ORIGIN_ERROR: f64 = 1e-2;
/// A share of flushed nonzero values above this is an underflow.
pub const UNDERFLOW_SHARE: f64 = 0.1;
/// Rounds of the search (one pin, or one group of producers, per round).
pub const MAX_ROUNDS: usize = 48;
/// Runs spent trying pins back in fp16.
pub const MAX_TRIALS: usize = 48;

/// What the search found.
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// The ops to keep in fp32 beyond those pinned before, with why, in program order.
    pub pins: Vec<(NodeId, Fp32Reason)>,
    /// Output cosines against fp32 with only the earlier pins, and with the result.
    pub cosine_before: Vec<(String, f64)>,
    pub cosine_after: Vec<(String, f64)>,
    pub reached: bool,
    /// Two-lane runs made.
    pub runs: usize,
    /// The fp32 lane's outputs (for checking the emitted package).
    pub reference: Vec<(String, NdArray)>,
}

/// Why an op is where fp16 fails, in words, with the values at fault.
pub fn describe(s: &OpStats) -> (Divergence, String) {
    let range = |r: (f32, f32)| format!("[{:.4e}, {:.4e}]", r.0, r.1);
    if s.new_nan > 0 {
        let d = format!(
            "fp16 gives NaN in {} of {} values (fp32 range {})",
            s.new_nan,
            s.elements,
            range(s.ref_range)
        );
        return (Divergence::Nan, d);
    }
    if s.new_inf > 0 || s.ref_above_fp16 > 0 {
        let d = format!(
            "fp16 gives inf in {} of {} values; fp32 range {} exceeds 65504",
            s.new_inf,
            s.elements,
            range(s.ref_range)
        );
        return (Divergence::Overflow, d);
    }
    // Values fp16 cannot hold at all; a flush of values it can hold is cancellation.
    let below_share = s.ref_below_fp16 as f64 / s.ref_nonzero.max(1) as f64;
    if s.flushed_share() > UNDERFLOW_SHARE && below_share > UNDERFLOW_SHARE {
        let d = format!(
            "fp16 flushes {} of {} nonzero values to 0 (fp32 range {})",
            s.flushed,
            s.ref_nonzero,
            range(s.ref_range)
        );
        return (Divergence::Underflow, d);
    }
    let d = format!(
        "relative error {:.2e} from operands within {:.2e} (fp32 range {}, fp16 range {})",
        s.rel_error,
        s.input_rel_error,
        range(s.ref_range),
        range(s.emu_range)
    );
    (Divergence::Cancellation, d)
}

/// Whether every output reaches `min_cosine`.
pub fn passes(trace: &Trace, min_cosine: f64) -> bool {
    trace.outputs.iter().all(|o| o.cosine >= min_cosine)
}

/// The first op where fp16 goes wrong: its error passes [`ORIGIN_ERROR`] while its operands'
/// errors are within it; if none, the op amplifying error the most. `None` when no op shows
/// error at all.
pub fn origin(trace: &Trace) -> Option<&OpStats> {
    let broke = |s: &&OpStats| s.rel_error > ORIGIN_ERROR && s.input_rel_error <= ORIGIN_ERROR;
    trace.ops.iter().find(broke).or_else(|| {
        let floor = f64::from(half::f16::EPSILON.to_f32()) / 2.0;
        trace
            .ops
            .iter()
            .filter(|s| s.rel_error.is_finite() && s.rel_error > s.input_rel_error)
            .max_by(|a, b| {
                let gain = |s: &OpStats| s.rel_error / s.input_rel_error.max(floor);
                gain(a).total_cmp(&gain(b))
            })
    })
}

/// Search for the fp32 ops that bring every output to `min_cosine` against the fp32 program
/// `reference` when the rest runs in fp16 as `fp16_probe` holds it (the two programs' ops map to
/// IR nodes by `op_nodes`). `pinned` are the nodes
/// already kept in fp32 (by the static range guard); `progress` hears about each round.
pub fn search(
    reference: &Path,
    fp16_probe: &Path,
    op_nodes: &[(String, NodeId)],
    pinned: &BTreeSet<NodeId>,
    inputs: &[(String, NdArray)],
    min_cosine: f64,
    progress: &mut dyn FnMut(&str),
) -> Result<SearchResult> {
    let node_of: HashMap<&str, NodeId> = op_nodes.iter().map(|(n, id)| (n.as_str(), *id)).collect();
    let mut keep: BTreeSet<NodeId> = pinned.clone();
    let mut added: Vec<(NodeId, Fp32Reason)> = Vec::new();
    let mut runs = 0;
    let mut run = |keep: &BTreeSet<NodeId>| -> Result<Trace> {
        runs += 1;
        trace_fp16(reference, fp16_probe, inputs, &|op| {
            node_of.get(op).is_some_and(|n| keep.contains(n))
        })
    };
    let cosines = |t: &Trace| -> Vec<(String, f64)> { t.outputs.iter().map(|o| (o.name.clone(), o.cosine)).collect() };

    let mut trace = run(&keep)?;
    let cosine_before = cosines(&trace);
    let mut rounds = 0;
    while !passes(&trace, min_cosine) && rounds < MAX_ROUNDS {
        rounds += 1;
        let new = culprits(&trace, &node_of, &keep);
        if new.is_empty() {
            break;
        }
        for (id, reason, op) in new {
            progress(&format!("round {rounds}: keep {op} in fp32 ({reason})"));
            keep.insert(id);
            added.push((id, reason));
        }
        trace = run(&keep)?;
    }
    let reached = passes(&trace, min_cosine);

    // Try the added ops back in fp16: halves first, then quarters, ... down to single ops,
    // latest first within each pass, while trials last.
    if reached {
        let mut trials = 0;
        let mut chunk = added.len().div_ceil(2);
        while chunk > 0 && trials < MAX_TRIALS && !added.is_empty() {
            let mut end = added.len();
            while end > 0 && trials < MAX_TRIALS {
                let start = end.saturating_sub(chunk);
                trials += 1;
                for (id, _) in &added[start..end] {
                    keep.remove(id);
                }
                let t = run(&keep)?;
                if passes(&t, min_cosine) {
                    progress(&format!(
                        "{} op(s) back in fp16: the target holds without them",
                        end - start
                    ));
                    added.drain(start..end);
                    trace = t;
                } else {
                    keep.extend(added[start..end].iter().map(|(id, _)| *id));
                }
                end = start;
            }
            chunk = if chunk == 1 { 0 } else { chunk.div_ceil(2) };
        }
    }
    let order: HashMap<NodeId, usize> = op_nodes.iter().enumerate().map(|(i, (_, id))| (*id, i)).collect();
    added.sort_by_key(|(id, _)| order.get(id).copied().unwrap_or(usize::MAX));
    let reference = trace
        .outputs
        .iter()
        .map(|o| (o.name.clone(), o.reference.clone()))
        .collect();
    Ok(SearchResult {
        pins: added,
        cosine_before,
        cosine_after: cosines(&trace),
        reached,
        runs,
        reference,
    })
}

/// The nodes to keep in fp32 this round, with reasons and the MIL op names for progress.
fn culprits(
    trace: &Trace,
    node_of: &HashMap<&str, NodeId>,
    keep: &BTreeSet<NodeId>,
) -> Vec<(NodeId, Fp32Reason, String)> {
    let by_name: HashMap<&str, &OpStats> = trace.ops.iter().map(|s| (s.op.as_str(), s)).collect();
    // Ops already considered and found unfixable are skipped, so the search moves on.
    let mut candidates: Vec<&OpStats> = Vec::new();
    if let Some(first) = origin(trace) {
        candidates.push(first);
    }
    candidates.extend(
        trace
            .ops
            .iter()
            .filter(|s| s.rel_error > ORIGIN_ERROR && s.input_rel_error <= ORIGIN_ERROR),
    );
    for s in candidates {
        let Some(&id) = node_of.get(s.op.as_str()) else {
            continue;
        };
        let (kind, detail) = describe(s);
        if !keep.contains(&id) {
            return vec![(id, Fp32Reason::Calibration { kind, detail }, s.op.clone())];
        }
        // Already fp32: its operands arrive with too little precision; keep in fp32 the nearest
        // fp16 ops they come from (through ops already in fp32).
        let mut producers: Vec<(NodeId, Fp32Reason, String)> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut frontier: Vec<&str> = s.inputs.iter().map(String::as_str).collect();
        while let Some(input) = frontier.pop() {
            let Some(p) = by_name.get(input).filter(|_| seen.insert(input)) else {
                continue;
            };
            let Some(&pid) = node_of.get(p.op.as_str()) else {
                continue;
            };
            if keep.contains(&pid) {
                frontier.extend(p.inputs.iter().map(String::as_str));
            } else if p.fp16 {
                let detail = format!("feeds {} ({}), which {detail}", s.op, s.op_type);
                let reason = Fp32Reason::Calibration {
                    kind: Divergence::Cancellation,
                    detail,
                };
                producers.push((pid, reason, p.op.clone()));
            }
        }
        if !producers.is_empty() {
            return producers;
        }
    }
    Vec::new()
}
