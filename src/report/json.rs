//! The report as JSON (`--report FILE.json`, and the data embedded in the HTML report). The
//! schema is documented in docs/reports.md; [`SCHEMA_VERSION`] changes whenever a field is
//! removed, renamed or changes meaning (adding a field does not change it). The weights rows are
//! those of the package's `Data/com.edgec/weights.json` and the plan is its `plan.json`, so each
//! has one shape wherever edgec writes it.

use super::Report;
use crate::compression_guard::GuardReport;
use crate::driver::CalibrationReport;
use serde_json::{json, Value};

/// The version of the document's layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The report as a JSON value (keys sorted, as serde_json keeps them).
pub fn to_json(report: &Report) -> Value {
    let compile = report.compile;
    let counts = report.op_counts();
    let sizes = report.weight_sizes();
    let steps: Vec<Value> = compile
        .steps
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "seconds": s.duration.as_secs_f64(),
                "nodes_after": s.nodes_after,
            })
        })
        .collect();
    let fp32_ops: Vec<Value> = compile
        .package
        .fp32_ops
        .iter()
        .map(|o| json!({ "op": o.op, "node": o.node, "reason": o.reason }))
        .collect();
    let decisions: Vec<Value> = compile
        .precision_log
        .iter()
        .map(|d| {
            json!({
                "action": d.action.name(),
                "node": d.origin,
                "op": d.op,
                "detail": d.detail,
            })
        })
        .collect();
    let weights = crate::compression::to_json(&compile.weights)["weights"].take();
    json!({
        "schema_version": SCHEMA_VERSION,
        "edgec_version": env!("CARGO_PKG_VERSION"),
        "summary": {
            "model": report.model.display().to_string(),
            "package": report.package.display().to_string(),
            "source_sha256": report.source_sha256(),
            "target": report.target_name(),
            "deployment_target": report.options.deployment_target.to_string(),
            "precision": report.precision_name(),
            "compute_units": compile.plan.compute_units.core_ml_name(),
            "seconds": report.duration().as_secs_f64(),
        },
        "op_counts": {
            "onnx_nodes": counts.onnx_nodes,
            "mil_ops": counts.mil_ops,
            "constants": counts.constants,
            "text": counts.to_string(),
        },
        "sizes": {
            "weight_tensors": sizes.tensors,
            "compressed_tensors": sizes.compressed,
            "weights_dense_bytes": sizes.dense_bytes,
            "weights_stored_bytes": sizes.stored_bytes,
            "weight_file_bytes": sizes.weight_file_bytes,
        },
        "steps": steps,
        "weights": weights,
        "compression_guard": compile.compression_guard.as_ref().map(guard),
        "precision": {
            "fp32_ops": fp32_ops,
            "decisions": decisions,
            "calibration": compile.calibration.as_ref().map(calibration),
        },
        "warnings": compile.warnings,
        "plan": crate::plan::report::to_json(&compile.plan),
    })
}

/// The report as pretty-printed JSON text, ending in a newline.
pub fn to_string(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(&to_json(report)).unwrap_or_default();
    text.push('\n');
    text
}

fn cosines(per_output: &[(String, f64)]) -> Vec<Value> {
    per_output
        .iter()
        .map(|(output, cosine)| json!({ "output": output, "cosine": cosine }))
        .collect()
}

fn calibration(c: &CalibrationReport) -> Value {
    json!({
        "inputs": c.inputs,
        "min_cosine": c.min_cosine,
        "reached": c.reached,
        "calibrated_ops": c.calibrated_ops,
        "runs": c.runs,
        "cosine_before": cosines(&c.cosine_before),
        "cosine_package": cosines(&c.cosine_package),
    })
}

fn guard(g: &GuardReport) -> Value {
    json!({
        "min_cosine": g.min_cosine,
        "inputs": g.inputs,
        "reached": g.reached(),
        "cosine_requested": cosines(&g.cosine_requested),
        "cosine_package": cosines(&g.cosine_package),
        "compressed_before": g.compressed_before,
        "left_dense": g.left_dense,
        "runs": g.runs,
        "text": crate::compression_guard::summary(g),
    })
}
