//! The plan as people and programs read it: the one-line summary every compile prints, the
//! per-op table (`-v`, `edgec plan`), and `Data/com.edgec/plan.json` (schema in
//! `docs/placement.md`).

use super::{rules, ComputeUnits, Plan, Unit};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write;

fn percent(share: f64) -> String {
    if share == 0.0 {
        "0%".into()
    } else {
        format!("{:.1}%", share * 100.0)
    }
}

/// `plan: ANE 97.8% of cost (812/830 ops), GPU 0%, CPU 2.2% (18 ops); 3 segments, 2 transitions`
pub fn summary(plan: &Plan) -> String {
    let s = &plan.summary;
    let others: Vec<String> = [Unit::Gpu, Unit::Cpu]
        .into_iter()
        .map(|u| {
            let ops = s.ops_on(u);
            let count = if ops > 0 {
                format!(" ({ops} ops)")
            } else {
                String::new()
            };
            format!("{} {}{count}", u.label(), percent(s.share_on(u)))
        })
        .collect();
    format!(
        "plan: ANE {} of cost ({}/{} ops), {}; {} segment{}, {} transition{}",
        percent(s.share_on(Unit::Ane)),
        s.ops_on(Unit::Ane),
        s.ops,
        others.join(", "),
        s.segments,
        if s.segments == 1 { "" } else { "s" },
        s.transitions,
        if s.transitions == 1 { "" } else { "s" },
    )
}

/// The per-op plan in program order (op, type, unit, cost share, reasons), the ONNX nodes fused
/// into each op, then the segments.
pub fn table(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compute plan for computeUnits = {} (predicted from published facts, not measured; rules version {}):",
        plan.compute_units.core_ml_name(),
        rules::RULES_VERSION
    );
    let width = plan.ops.iter().map(|o| o.name.len()).max().unwrap_or(2).clamp(2, 48);
    let type_width = plan.ops.iter().map(|o| o.op_type.len()).max().unwrap_or(4).clamp(4, 28);
    let _ = writeln!(out, "  {:<width$}  {:<type_width$}  unit  cost    reason", "op", "type");
    for op in &plan.ops {
        let reasons: Vec<String> = op.reasons.iter().map(|r| format!("{}: {}", r.rule, r.text)).collect();
        let _ = writeln!(
            out,
            "  {:<width$}  {:<type_width$}  {}   {:>6}  {}",
            op.name,
            op.op_type,
            op.unit.label(),
            format!("{:.1}%", op.cost_share * 100.0),
            reasons.join("; ")
        );
        if op.onnx_nodes.len() > 1 {
            let _ = writeln!(out, "      fused into {}: {}", op.name, op.onnx_nodes[1..].join(", "));
        }
    }
    let _ = writeln!(out, "segments:");
    for (i, s) in plan.segments.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>3}. {} {:>5} op{} {:>6}  {} .. {}",
            i + 1,
            s.unit.label(),
            s.ops,
            if s.ops == 1 { " " } else { "s" },
            format!("{:.1}%", s.cost_share * 100.0),
            s.first_op,
            s.last_op
        );
    }
    out
}

/// Shares rounded to 6 decimals: stable text, enough for a percentage with 4 digits.
fn rounded(share: f64) -> f64 {
    (share * 1e6).round() / 1e6
}

/// `Data/com.edgec/plan.json`.
pub fn to_json(plan: &Plan) -> Value {
    let s = &plan.summary;
    let ops: Vec<Value> = plan
        .ops
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "type": o.op_type,
                "unit": o.unit.name(),
                "supported": o.supported.iter().map(|u| u.name()).collect::<Vec<_>>(),
                "reasons": o.reasons.iter().map(|r| json!({ "rule": r.rule, "text": r.text })).collect::<Vec<_>>(),
                "cost_share": rounded(o.cost_share),
                "onnx_nodes": o.onnx_nodes,
            })
        })
        .collect();
    let segments: Vec<Value> = plan
        .segments
        .iter()
        .map(|g| {
            json!({
                "unit": g.unit.name(),
                "first_op": g.first_op,
                "last_op": g.last_op,
                "ops": g.ops,
                "cost_share": rounded(g.cost_share),
            })
        })
        .collect();
    json!({
        "compute_units": plan.compute_units.core_ml_name(),
        "rules_version": rules::RULES_VERSION,
        "summary": {
            "ops": s.ops,
            "ane_ops": s.ops_on(Unit::Ane),
            "gpu_ops": s.ops_on(Unit::Gpu),
            "cpu_ops": s.ops_on(Unit::Cpu),
            "ane_cost_share": rounded(s.share_on(Unit::Ane)),
            "gpu_cost_share": rounded(s.share_on(Unit::Gpu)),
            "cpu_cost_share": rounded(s.share_on(Unit::Cpu)),
            "segments": s.segments,
            "transitions": s.transitions,
        },
        "ops": ops,
        "segments": segments,
    })
}

/// From a package's plan.json: each op's ONNX nodes (the MIL program does not hold them), and
/// the compute units it was planned for.
pub fn read_json(plan: &Value) -> (HashMap<String, Vec<String>>, Option<ComputeUnits>) {
    let nodes = plan["ops"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .filter_map(|o| {
                    let name = o["name"].as_str()?.to_string();
                    let nodes = o["onnx_nodes"]
                        .as_array()?
                        .iter()
                        .filter_map(|n| n.as_str().map(String::from))
                        .collect();
                    Some((name, nodes))
                })
                .collect()
        })
        .unwrap_or_default();
    let units = plan["compute_units"].as_str().and_then(ComputeUnits::from_name);
    (nodes, units)
}

/// What `--require-ane` prints: one line per op predicted off the Neural Engine.
pub fn off_ane_lines(plan: &Plan) -> Vec<String> {
    plan.off_ane()
        .map(|o| {
            let reasons: Vec<String> = o
                .reasons
                .iter()
                .filter(|r| r.rule != "unlisted_op")
                .map(|r| format!("{}: {}", r.rule, r.text))
                .collect();
            let nodes = if o.onnx_nodes.is_empty() {
                String::new()
            } else {
                format!(" (ONNX {})", o.onnx_nodes.join(", "))
            };
            format!(
                "{} ({}{nodes}) on the {}: {}",
                o.name,
                o.op_type,
                o.unit.label(),
                reasons.join("; ")
            )
        })
        .collect()
}

/// The rules table (markdown) for docs/placement.md: name, effect, confidence, what it says,
/// source.
pub fn rules_markdown() -> String {
    use super::rules::{Effect, RULES};
    let mut out = String::from("| rule | effect | confidence | says | source |\n|---|---|---|---|---|\n");
    for r in RULES {
        let effect = match r.effect {
            // The user's choice rules out whichever units it leaves out.
            Effect::RulesOut(_) if r.name == "compute_units" => "rules out the units left out".into(),
            Effect::RulesOut(u) => format!("rules out the {}", u.label()),
            Effect::NotPreferred(u) => format!("{} not preferred", u.label()),
            Effect::Uncertain(Unit::Ane) => "uncertain (placement stands)".into(),
            Effect::Uncertain(u) => format!("uncertain for the {} (placement stands)", u.label()),
        };
        let _ = writeln!(
            out,
            "| `{}` | {effect} | {} | {} | {} |",
            r.name,
            r.confidence.name(),
            r.says.replace('|', "\\|"),
            r.source.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        out,
        "\nThresholds: ANE per-axis limit {} (A15 and earlier), channels {}, rank {}, windows {}, pool stride {}, upsampling {}, attention floor {} elements per Q/K/V, weights {} MB, ANE segment floor {} FLOPs, GPU segment floor {} FLOPs; cost = max(FLOPs, {} × bytes).",
        super::rules::ANE_MAX_SPATIAL,
        super::rules::ANE_MAX_CHANNELS,
        super::rules::ANE_MAX_RANK,
        super::rules::ANE_MAX_WINDOW,
        super::rules::ANE_MAX_POOL_STRIDE,
        super::rules::ANE_MAX_UPSAMPLE,
        super::rules::SDPA_CPU_MAX_ELEMENTS,
        super::rules::ANE_MAX_WEIGHT_BYTES >> 20,
        super::rules::ANE_MIN_SEGMENT_FLOPS,
        super::rules::GPU_MIN_SEGMENT_FLOPS,
        super::cost::FLOPS_PER_BYTE
    );
    out
}
