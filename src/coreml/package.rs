//! Write a `.mlpackage` directory: `Manifest.json`, `Data/com.apple.CoreML/model.mlmodel`,
//! `Data/com.apple.CoreML/weights/weight.bin`, and edgec's name map under `Data/com.edgec/`.
//!
//! Everything is written into a temporary sibling directory that is renamed into place only
//! when complete, so a failure never leaves a half-written package. Output is deterministic:
//! manifest identifiers derive from the source model's hash, and no timestamps are written.

use super::describe::{describe, ProvenanceInfo};
use super::lower::{lower, IoFeature};
use super::target::DeploymentTarget;
use super::weights::WeightWriter;
use crate::error::{Error, Result};
use crate::plan::{ComputeUnits, Plan, PlanContext};
use crate::proto::coreml::{model, Model, ModelDescription};
use edgec_passes::ir::{Graph, NodeId};
use prost::Message;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const MODEL_PATH: &str = "Data/com.apple.CoreML/model.mlmodel";
pub const WEIGHTS_DIR: &str = "Data/com.apple.CoreML/weights";
pub const NAMES_PATH: &str = "Data/com.edgec/names.json";
pub const WEIGHTS_REPORT_PATH: &str = "Data/com.edgec/weights.json";
pub const PLAN_PATH: &str = "Data/com.edgec/plan.json";

/// What was written.
#[derive(Clone, Debug)]
pub struct PackageInfo {
    /// The program's ops (no ONNX node count: the driver knows it, see `CompileReport::op_counts`).
    pub ops: super::OpCounts,
    pub weight_bytes: u64,
    pub inputs: Vec<IoFeature>,
    pub outputs: Vec<IoFeature>,
    /// The ops of an fp16 program that compute in fp32, in program order.
    pub fp32_ops: Vec<Fp32Op>,
    /// Every non-const MIL op and the IR node it lowers (see `Lowered::op_nodes`).
    pub op_nodes: Vec<(String, NodeId)>,
    /// The compute-unit plan of the program as written.
    pub plan: Plan,
    /// How long planning took.
    pub plan_duration: std::time::Duration,
}

/// What the compute-unit plan does to a package.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    pub compute_units: ComputeUnits,
    /// Write each op's predicted unit as its `IntendedBackend` attribute.
    pub pin: bool,
    /// Refuse (and write nothing) when an op is predicted off the Neural Engine.
    pub require_ane: bool,
}

/// An op kept in fp32, as the package metadata (`com.edgec.fp32_ops`) records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fp32Op {
    /// The MIL op (its output's name).
    pub op: String,
    /// The ONNX node it comes from.
    pub node: String,
    pub reason: String,
}

/// The fp32 ops of a lowered graph: one per pinned node, named by its first MIL op.
fn fp32_ops(graph: &Graph, op_nodes: &[(String, NodeId)]) -> Vec<Fp32Op> {
    let mut seen = std::collections::HashSet::new();
    op_nodes
        .iter()
        .filter(|(_, id)| seen.insert(*id))
        .filter_map(|(op, id)| {
            let node = graph.node(*id);
            node.keep_fp32.as_ref().map(|reason| Fp32Op {
                op: op.clone(),
                node: node.origin.clone(),
                reason: reason.to_string(),
            })
        })
        .collect()
}

/// Removes the directory on drop unless disarmed.
/// The lowered program with its description and plan: everything but the files.
struct Prepared {
    lowered: super::lower::Lowered,
    description: ModelDescription,
    fp32_ops: Vec<Fp32Op>,
    weight_bytes: u64,
    plan: Plan,
    plan_duration: std::time::Duration,
}

fn prepare(
    graph: &Graph,
    target: DeploymentTarget,
    info: ProvenanceInfo,
    plan_options: &PlanOptions,
    mut weights: WeightWriter,
    weight_path: &Path,
) -> Result<Prepared> {
    let lowered = lower(graph, target, &mut weights).map_err(|e| match e {
        super::lower::LowerError::Io(source) => Error::Io {
            path: weight_path.to_path_buf(),
            source,
        },
        other => Error::Model {
            path: PathBuf::from(&info.source_file),
            message: other.to_string(),
        },
    })?;
    let weight_bytes = weights.finish().map_err(|source| Error::Io {
        path: weight_path.to_path_buf(),
        source,
    })?;

    let io_names: serde_json::Map<String, serde_json::Value> = lowered
        .inputs
        .iter()
        .chain(&lowered.outputs)
        .map(|f| (f.source_name.clone(), serde_json::Value::String(f.mil_name.clone())))
        .collect();
    let fp32_ops = fp32_ops(graph, &lowered.op_nodes);
    let fp32_ops_json = (info.precision != "fp32").then(|| {
        let list: Vec<serde_json::Value> = fp32_ops
            .iter()
            .map(|o| serde_json::json!({ "op": o.op, "node": o.node, "reason": o.reason }))
            .collect();
        serde_json::Value::Array(list).to_string()
    });
    let info = ProvenanceInfo {
        io_names_json: serde_json::Value::Object(io_names).to_string(),
        fp32_ops_json,
        ..info
    };
    let mut description = describe(&lowered.inputs, &lowered.outputs, &info).map_err(|message| Error::Model {
        path: PathBuf::from(&info.source_file),
        message,
    })?;

    // The plan reads what the package will hold (program and metadata), as `edgec plan` reads
    // a package back.
    let t = std::time::Instant::now();
    let context = PlanContext::for_package(
        &lowered.program,
        Some(&description),
        weight_bytes,
        onnx_nodes(graph, &lowered.op_nodes),
        plan_options.compute_units,
    );
    let plan = crate::plan::plan(&lowered.program, &context);
    let plan_duration = t.elapsed();
    if let Some(metadata) = description.metadata.as_mut() {
        metadata.user_defined.extend(crate::plan::metadata(&plan));
    }
    Ok(Prepared {
        lowered,
        description,
        fp32_ops,
        weight_bytes,
        plan,
        plan_duration,
    })
}

/// Each MIL op's ONNX nodes: the node it lowers, then the nodes fused into that one.
fn onnx_nodes(graph: &Graph, op_nodes: &[(String, NodeId)]) -> std::collections::HashMap<String, Vec<String>> {
    op_nodes
        .iter()
        .map(|(op, id)| {
            let node = graph.node(*id);
            let fused = graph.fusions.get(id).into_iter().flatten().map(|f| f.origin.clone());
            let nodes = std::iter::once(node.origin.clone())
                .chain(fused)
                .filter(|n| !n.is_empty())
                .collect();
            (op.clone(), nodes)
        })
        .collect()
}

/// The MIL op counts `graph` lowers to, writing nothing (`edgec analyze`'s trial compile).
pub fn count_ops(graph: &Graph, target: DeploymentTarget, info: ProvenanceInfo) -> Result<super::OpCounts> {
    let prepared = prepare(
        graph,
        target,
        info,
        &PlanOptions::default(),
        WeightWriter::counting(),
        Path::new("weight.bin"),
    )?;
    Ok(super::OpCounts::of_program(&prepared.lowered.program, None))
}

/// Lower `graph` and plan it, writing nothing (`edgec plan MODEL.onnx`).
pub fn plan_graph(
    graph: &Graph,
    target: DeploymentTarget,
    info: ProvenanceInfo,
    compute_units: ComputeUnits,
) -> Result<Plan> {
    let options = PlanOptions {
        compute_units,
        ..PlanOptions::default()
    };
    let prepared = prepare(
        graph,
        target,
        info,
        &options,
        WeightWriter::counting(),
        Path::new("weight.bin"),
    )?;
    Ok(prepared.plan)
}

/// Checks, before any work is done, that a package can be written at `out`: its name, that no
/// file stands where a folder must be, and that whatever is there already is a package.
/// Returns the parent folder and the file name.
pub fn check_output(out: &Path) -> Result<(PathBuf, String)> {
    let pkg_err = |message: String| Error::Package {
        path: out.to_path_buf(),
        message,
    };
    if out.file_name().is_some_and(|n| n == ".mlpackage") {
        return Err(pkg_err(
            "the package needs a name before .mlpackage, e.g. model.mlpackage".into(),
        ));
    }
    if out.extension().and_then(|e| e.to_str()) != Some("mlpackage") {
        return Err(pkg_err("the output path must end in .mlpackage".into()));
    }
    let file_name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| pkg_err("the output name is not valid UTF-8".into()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some(file) = parent.ancestors().find(|a| !a.as_os_str().is_empty() && a.is_file()) {
        return Err(pkg_err(format!(
            "{} is a file, not a folder, so it cannot hold the package",
            file.display()
        )));
    }
    if out.exists() && !out.join("Manifest.json").is_file() {
        return Err(pkg_err(
            "refusing to replace it: it exists and is not an ML package".into(),
        ));
    }
    Ok((parent, file_name.to_string()))
}

pub fn write_package(
    graph: &Graph,
    target: DeploymentTarget,
    info: ProvenanceInfo,
    plan_options: &PlanOptions,
    out: &Path,
) -> Result<PackageInfo> {
    let (parent, file_name) = check_output(out)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    crate::temp::create_dir_all(&parent).map_err(io(&parent))?;
    if graph.inputs.is_empty() && target < DeploymentTarget::Ios18 {
        return Err(Error::Model {
            path: PathBuf::from(&info.source_file),
            message: format!(
                "the model has no inputs, which Core ML accepts only from iOS 18 (--deployment-target ios18, not {target})"
            ),
        });
    }

    let tmp_prefix = format!(".{file_name}.edgec-tmp-");
    // What a killed compile to the same output left behind.
    crate::temp::remove_stale(&parent, &tmp_prefix);
    // The pid tells a later run whether this folder's compile is gone; the counter keeps two
    // compiles of one process (threads of a build script) apart.
    static STAGING_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let staging_id = STAGING_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp_path = parent.join(format!("{tmp_prefix}{}-{staging_id}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp_path);
    let tmp = crate::temp::TempFolder::new(tmp_path.clone());
    let weights_dir = tmp_path.join(WEIGHTS_DIR);
    crate::temp::create_dir_all(&weights_dir).map_err(io(&weights_dir))?;
    let names_path = tmp_path.join(NAMES_PATH);
    if let Some(dir) = names_path.parent() {
        crate::temp::create_dir_all(dir).map_err(io(dir))?;
    }

    let weight_path = weights_dir.join("weight.bin");
    let weights = WeightWriter::create(&weight_path).map_err(io(&weight_path))?;
    let source_sha256 = info.source_sha256.clone();
    let Prepared {
        lowered,
        description,
        fp32_ops,
        weight_bytes,
        plan,
        plan_duration,
    } = prepare(graph, target, info, plan_options, weights, &weight_path)?;
    if plan_options.require_ane && plan.off_ane().next().is_some() {
        // `tmp` removes what was written so far.
        return Err(Error::OffNeuralEngine {
            path: out.to_path_buf(),
            ops: plan.summary.ops,
            off: crate::plan::report::off_ane_lines(&plan),
        });
    }
    let mut program = lowered.program;
    if plan_options.pin {
        crate::plan::pin::pin(&mut program, &plan);
    }
    let ops = super::OpCounts::of_program(&program, None);
    let model = Model {
        specification_version: target.spec_version(),
        description: Some(description),
        is_updatable: false,
        r#type: Some(model::Type::MlProgram(program)),
    };
    let model_path = tmp_path.join(MODEL_PATH);
    std::fs::write(&model_path, model.encode_to_vec()).map_err(io(&model_path))?;

    let names = serde_json::json!({
        "description": "MIL names of the source model's values (ONNX name, MIL name), in program order",
        "values": lowered.names,
    });
    std::fs::write(&names_path, serde_json::to_string_pretty(&names).unwrap_or_default()).map_err(io(&names_path))?;

    let report_path = tmp_path.join(WEIGHTS_REPORT_PATH);
    let report = crate::compression::to_json(&graph.weight_report);
    std::fs::write(&report_path, serde_json::to_string_pretty(&report).unwrap_or_default())
        .map_err(io(&report_path))?;

    let plan_path = tmp_path.join(PLAN_PATH);
    let plan_json = crate::plan::report::to_json(&plan);
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan_json).unwrap_or_default()).map_err(io(&plan_path))?;

    let manifest_path = tmp_path.join("Manifest.json");
    std::fs::write(&manifest_path, manifest(&source_sha256)).map_err(io(&manifest_path))?;

    crate::temp::move_into_place(tmp, out).map_err(io(out))?;
    Ok(PackageInfo {
        ops,
        weight_bytes,
        inputs: lowered.inputs,
        outputs: lowered.outputs,
        fp32_ops,
        op_nodes: lowered.op_nodes,
        plan,
        plan_duration,
    })
}

/// A UUID-shaped identifier derived from `seed`, so manifests are reproducible.
fn stable_id(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = super::super::onnx::hex_string(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn manifest(source_sha256: &str) -> String {
    let item = |path: &str, name: &str, author: &str, description: &str| {
        (
            stable_id(&format!("{source_sha256}/{path}")),
            serde_json::json!({ "author": author, "description": description, "name": name, "path": path }),
        )
    };
    let (model_id, model_item) = item(
        "com.apple.CoreML/model.mlmodel",
        "model.mlmodel",
        "com.apple.CoreML",
        "CoreML Model Specification",
    );
    let (weights_id, weights_item) = item(
        "com.apple.CoreML/weights",
        "weights",
        "com.apple.CoreML",
        "CoreML Model Weights",
    );
    let (names_id, names_item) = item(
        "com.edgec/names.json",
        "names.json",
        "com.edgec",
        "edgec name map: source model names to MIL names",
    );
    let (report_id, report_item) = item(
        "com.edgec/weights.json",
        "weights.json",
        "com.edgec",
        "edgec weight report: how each weight is stored, with its error",
    );
    let (plan_id, plan_item) = item(
        "com.edgec/plan.json",
        "plan.json",
        "com.edgec",
        "edgec compute-unit plan: predicted unit, supported units and reasons per op",
    );
    let mut entries = serde_json::Map::new();
    entries.insert(model_id.clone(), model_item);
    entries.insert(weights_id, weights_item);
    entries.insert(names_id, names_item);
    entries.insert(report_id, report_item);
    entries.insert(plan_id, plan_item);
    let manifest = serde_json::json!({
        "fileFormatVersion": "1.0.0",
        "itemInfoEntries": entries,
        "rootModelIdentifier": model_id,
    });
    let mut text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    text.push('\n');
    text
}
