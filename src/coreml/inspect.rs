//! Read a package back: the manifest, the model spec, the name map; summarise it for
//! `edgec inspect`.

use super::package::{NAMES_PATH, PLAN_PATH, WEIGHTS_DIR, WEIGHTS_REPORT_PATH};
use super::text;
use crate::error::{Error, Result};
use crate::proto::coreml::{feature_type, model, FeatureDescription, Model};
use prost::Message;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

pub struct Package {
    pub model: Model,
    /// (source name, MIL name) pairs, if the package has edgec's name map.
    pub names: Vec<(String, String)>,
    pub weight_bytes: u64,
    /// edgec's weight report (`Data/com.edgec/weights.json`), if present.
    pub weight_report: Option<serde_json::Value>,
    /// edgec's compute-unit plan (`Data/com.edgec/plan.json`), if present.
    pub plan: Option<serde_json::Value>,
}

/// The root model file of a package, from its `Manifest.json` (relative to the package).
pub fn root_model_path(path: &Path) -> Result<String> {
    let err = |message: String| Error::Package {
        path: path.to_path_buf(),
        message,
    };
    let manifest_path = path.join("Manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| err(format!("no readable Manifest.json ({e}); is this an .mlpackage?")))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest).map_err(|e| err(format!("Manifest.json is not JSON: {e}")))?;
    let root = manifest["rootModelIdentifier"]
        .as_str()
        .ok_or_else(|| err("Manifest.json has no rootModelIdentifier".into()))?;
    let model_rel = manifest["itemInfoEntries"][root]["path"]
        .as_str()
        .ok_or_else(|| err(format!("Manifest.json has no item {root:?} with a path")))?;
    // The root model is read from inside the package, never through `..` or an absolute path.
    let inside = Path::new(model_rel)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside || model_rel.is_empty() {
        return Err(err(format!(
            "Manifest.json's root model path {model_rel:?} leads outside the package's Data folder"
        )));
    }
    Ok(format!("Data/{model_rel}"))
}

pub fn read_package(path: &Path) -> Result<Package> {
    let err = |message: String| Error::Package {
        path: path.to_path_buf(),
        message,
    };
    let model_rel = root_model_path(path)?;
    let bytes = std::fs::read(path.join(&model_rel)).map_err(|e| err(format!("cannot read {model_rel}: {e}")))?;
    let model = Model::decode(bytes.as_slice()).map_err(|e| err(format!("{model_rel} is not a Core ML model: {e}")))?;
    let names = std::fs::read_to_string(path.join(NAMES_PATH))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| serde_json::from_value::<Vec<(String, String)>>(v["values"].clone()).ok())
        .unwrap_or_default();
    let weight_bytes = std::fs::metadata(path.join(WEIGHTS_DIR).join("weight.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    let weight_report = std::fs::read_to_string(path.join(WEIGHTS_REPORT_PATH))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    let plan = std::fs::read_to_string(path.join(PLAN_PATH))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    Ok(Package {
        model,
        names,
        weight_bytes,
        weight_report,
        plan,
    })
}

fn feature_line(f: &FeatureDescription) -> String {
    let ty = match f.r#type.as_ref().and_then(|t| t.r#type.as_ref()) {
        Some(feature_type::Type::MultiArrayType(a)) => {
            let dt = crate::proto::coreml::array_feature_type::ArrayDataType::try_from(a.data_type)
                .map(|d| d.as_str_name().to_string())
                .unwrap_or_else(|_| a.data_type.to_string());
            format!("{dt}{:?}", a.shape)
        }
        Some(other) => format!("{other:?}"),
        None => "<untyped>".into(),
    };
    let note = if f.short_description.is_empty() {
        String::new()
    } else {
        format!("  ({})", f.short_description)
    };
    format!("{} : {ty}{note}", f.name)
}

/// The summary `edgec inspect` prints: interface, metadata, op counts, name map, MIL text.
/// What `edgec inspect` prints: the interface, metadata, op counts, weights and plan; with
/// `show_names` the ONNX → MIL name map, with `show_program` the whole MIL program.
pub fn summary(pkg: &Package, show_names: bool, show_program: bool) -> String {
    let mut out = String::new();
    let m = &pkg.model;
    let _ = writeln!(out, "specificationVersion: {}", m.specification_version);
    if let Some(d) = &m.description {
        out.push_str("inputs:\n");
        for f in &d.input {
            let _ = writeln!(out, "  {}", feature_line(f));
        }
        out.push_str("outputs:\n");
        for f in &d.output {
            let _ = writeln!(out, "  {}", feature_line(f));
        }
        if let Some(md) = &d.metadata {
            out.push_str("metadata:\n");
            let _ = writeln!(out, "  author: {}", md.author);
            for (k, v) in &md.user_defined {
                let _ = writeln!(out, "  {k}: {v}");
            }
        }
    }
    if let Some(model::Type::MlProgram(p)) = &m.r#type {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for f in p.functions.values() {
            if let Some(b) = f.block_specializations.get(&f.opset) {
                for op in b.operations.iter().filter(|op| op.r#type != "const") {
                    *counts.entry(op.r#type.as_str()).or_default() += 1;
                }
            }
        }
        let onnx_nodes = m
            .description
            .as_ref()
            .and_then(|d| d.metadata.as_ref())
            .and_then(|md| md.user_defined.get("com.edgec.onnx_nodes"))
            .and_then(|n| n.parse().ok());
        let _ = writeln!(out, "ops: {}", super::OpCounts::of_program(p, onnx_nodes));
        for (k, v) in &counts {
            let _ = writeln!(out, "  {k}: {v}");
        }
        let _ = writeln!(
            out,
            "weight.bin: {} ({} bytes)",
            super::human_size(pkg.weight_bytes),
            pkg.weight_bytes
        );
        if let Some(rows) = pkg.weight_report.as_ref().and_then(|r| r["weights"].as_array()) {
            let compressed: Vec<&serde_json::Value> = rows.iter().filter(|r| r["scheme"] != "dense").collect();
            let _ = writeln!(out, "weights: {} tensors, {} compressed", rows.len(), compressed.len());
            for r in compressed {
                let _ = writeln!(
                    out,
                    "  {} {} {} -> {} bytes, snr {} dB",
                    r["name"].as_str().unwrap_or(""),
                    r["scheme"].as_str().unwrap_or(""),
                    r["bytes_before"],
                    r["bytes_after"],
                    r["snr_db"]
                );
            }
        }
        let metadata = m.description.as_ref().and_then(|d| d.metadata.as_ref());
        if let Some(units) = metadata.and_then(|md| md.user_defined.get("com.edgec.compute_units")) {
            let _ = writeln!(
                out,
                "compute units: {units} (set MLModelConfiguration.computeUnits = .{units}; the plan assumes it)"
            );
        }
        if let Some(plan) = &pkg.plan {
            let s = &plan["summary"];
            let pinned = p
                .functions
                .values()
                .flat_map(|f| f.block_specializations.values())
                .flat_map(|b| &b.operations)
                .filter(|op| op.attributes.contains_key(crate::plan::pin::INTENDED_BACKEND))
                .count();
            let _ = writeln!(
                out,
                "plan (predicted): {} ops: {} ANE, {} GPU, {} CPU; ANE cost share {}; {} segments, {} transitions; {pinned} ops pinned (IntendedBackend)",
                s["ops"], s["ane_ops"], s["gpu_ops"], s["cpu_ops"], s["ane_cost_share"], s["segments"], s["transitions"]
            );
        }
        if show_names {
            out.push_str("names (source -> MIL):\n");
            for (src, mil) in &pkg.names {
                let _ = writeln!(out, "  {src:?} -> {mil}");
            }
        }
        if show_program {
            out.push_str("program:\n");
            out.push_str(&text::program_text(p));
        }
    } else {
        out.push_str("(not an ML Program)\n");
    }
    out
}
