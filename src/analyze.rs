//! `edgec analyze`: what a model needs before it can be compiled.
//!
//! Reads the ONNX file only (no compilation unless every input shape is known): op types with
//! counts and whether edgec imports them, the inputs' dynamic dimensions and the
//! `--input-shape` arguments that would fix them, and the weights. When the shapes are
//! static (or given), it also runs the front end and the passes, and reports how many nodes
//! of each op type were folded away at compile time and how many remain as Core ML ops.

use crate::driver::{build_ir, CompileOptions};
use crate::error::Result;
use crate::onnx::{self, InputShapes};
use crate::proto::onnx::tensor_proto::{DataLocation, DataType};
use crate::proto::onnx::{tensor_shape_proto::dimension, type_proto, ValueInfoProto};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// Op types that always become constants (shapes are static in edgec).
const COMPILE_TIME_OPS: &[&str] = &["Constant", "Shape", "Size", "ConstantOfShape", "Range"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(u64),
    /// A named symbolic dimension (`dim_param`).
    Symbol(String),
    /// Neither a value nor a name.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ONNX element type name, e.g. `INT64`.
    pub dtype: String,
    /// `None` when the rank is unknown.
    pub dims: Option<Vec<Dim>>,
}

#[derive(Clone, Debug)]
pub struct OpTypeUse {
    pub op_type: String,
    pub domain: String,
    pub count: usize,
    pub supported: bool,
    /// Nodes of this type that still produce Core ML ops after the passes (trial compile only).
    pub remaining: Option<usize>,
}

/// The outcome of compiling the model's IR (no package written).
#[derive(Clone, Debug)]
pub enum TrialCompile {
    /// Some input dims are unknown; nothing was compiled.
    NeedsShapes,
    /// The front end, every pass and the lowering succeeded, to these ops.
    Ok {
        ops: crate::coreml::OpCounts,
    },
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct Analysis {
    pub path: String,
    pub ir_version: i64,
    pub opset: Option<i64>,
    pub producer: String,
    pub node_count: usize,
    pub op_types: Vec<OpTypeUse>,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub initializers: usize,
    pub parameters: u64,
    pub weight_bytes: u64,
    pub external_files: Vec<String>,
    /// `--input-shape` arguments still needed, with symbolic dims as upper-case placeholders.
    pub needed_shapes: Vec<String>,
    pub trial: TrialCompile,
}

fn dtype_name(code: i32) -> String {
    DataType::try_from(code).map_or_else(|_| format!("type {code}"), |d| d.as_str_name().to_string())
}

fn tensor_info(v: &ValueInfoProto) -> TensorInfo {
    let tensor = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => Some(t),
        _ => None,
    };
    let dims = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) if *v > 0 => Dim::Fixed(*v as u64),
                Some(dimension::Value::DimParam(p)) if !p.is_empty() => Dim::Symbol(p.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    });
    TensorInfo {
        name: v.name.clone(),
        dtype: tensor.map_or_else(|| "non-tensor".to_string(), |t| dtype_name(t.elem_type)),
        dims,
    }
}

/// Analyse the model at `path`; `shapes` are the `--input-shape` values already chosen.
pub fn analyze(path: &Path, shapes: &InputShapes, options: &CompileOptions) -> Result<Analysis> {
    let model = onnx::load(path)?;
    let graph = model.proto.graph.as_ref().expect("load checks the graph");
    let initializer_names: BTreeSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();

    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for n in &graph.node {
        *counts.entry((n.domain.clone(), n.op_type.clone())).or_default() += 1;
    }
    let supported = onnx::supported_op_types();

    let inputs: Vec<TensorInfo> = graph
        .input
        .iter()
        .filter(|i| !initializer_names.contains(i.name.as_str()))
        .map(tensor_info)
        .collect();
    let needed_shapes = inputs
        .iter()
        .filter(|i| shapes.0.iter().all(|(n, _)| n != &i.name))
        .filter_map(|i| {
            let dims = i.dims.as_ref()?;
            if dims.iter().all(|d| matches!(d, Dim::Fixed(_))) {
                return None;
            }
            let spelled: Vec<String> = dims
                .iter()
                .enumerate()
                .map(|(k, d)| match d {
                    Dim::Fixed(v) => v.to_string(),
                    Dim::Symbol(s) => s.to_uppercase(),
                    Dim::Unknown => format!("DIM{k}"),
                })
                .collect();
            Some(format!("{}={}", i.name, spelled.join("x")))
        })
        .collect::<Vec<_>>();
    let rank_unknown = inputs
        .iter()
        .any(|i| i.dims.is_none() && shapes.0.iter().all(|(n, _)| n != &i.name));

    let mut parameters = 0u64;
    let mut weight_bytes = 0u64;
    let mut external_files = BTreeSet::new();
    for init in &graph.initializer {
        let count: u64 = init.dims.iter().map(|&d| d.max(0) as u64).product();
        parameters += count;
        let elem = match DataType::try_from(init.data_type) {
            Ok(DataType::Double | DataType::Int64 | DataType::Uint64) => 8,
            Ok(DataType::Float | DataType::Int32 | DataType::Uint32) => 4,
            Ok(DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16) => 2,
            _ => 1,
        };
        weight_bytes += count * elem;
        if init.data_location == DataLocation::External as i32 {
            if let Some(e) = init.external_data.iter().find(|e| e.key == "location") {
                external_files.insert(e.value.clone());
            }
        }
    }

    let trial = if !needed_shapes.is_empty() || rank_unknown {
        TrialCompile::NeedsShapes
    } else {
        let options = CompileOptions {
            input_shapes: shapes.clone(),
            ..options.clone()
        };
        match build_ir(path, &options, &mut Vec::new()) {
            Ok((built, ir)) => {
                // Which ONNX nodes (by name) still own an IR node.
                let mut remaining_by_node: HashMap<&str, usize> = HashMap::new();
                for &id in &ir.order {
                    *remaining_by_node.entry(ir.node(id).origin.as_str()).or_default() += 1;
                }
                let mut remaining: BTreeMap<(String, String), usize> = BTreeMap::new();
                for n in graph.node.iter().filter(|n| !n.name.is_empty()) {
                    if remaining_by_node.contains_key(n.name.as_str()) {
                        *remaining.entry((n.domain.clone(), n.op_type.clone())).or_default() += 1;
                    }
                }
                let named_all = graph.node.iter().all(|n| !n.name.is_empty());
                let trial = match crate::driver::count_ops(&built, &ir, &options) {
                    Ok(ops) => TrialCompile::Ok { ops },
                    Err(e) => TrialCompile::Failed(e.to_string()),
                };
                return Ok(finish(
                    &model,
                    counts,
                    &supported,
                    named_all.then_some(remaining),
                    inputs,
                    graph.output.iter().map(tensor_info).collect(),
                    (graph.initializer.len(), parameters, weight_bytes, external_files),
                    needed_shapes,
                    trial,
                ));
            }
            Err(e) => TrialCompile::Failed(e.to_string()),
        }
    };
    Ok(finish(
        &model,
        counts,
        &supported,
        None,
        inputs,
        graph.output.iter().map(tensor_info).collect(),
        (graph.initializer.len(), parameters, weight_bytes, external_files),
        needed_shapes,
        trial,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    model: &onnx::OnnxModel,
    counts: BTreeMap<(String, String), usize>,
    supported: &[&str],
    remaining: Option<BTreeMap<(String, String), usize>>,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    (initializers, parameters, weight_bytes, external_files): (usize, u64, u64, BTreeSet<String>),
    needed_shapes: Vec<String>,
    trial: TrialCompile,
) -> Analysis {
    let node_count = counts.values().sum();
    let mut op_types: Vec<OpTypeUse> = counts
        .into_iter()
        .map(|((domain, op_type), count)| {
            let default_domain = domain.is_empty() || domain == "ai.onnx";
            OpTypeUse {
                supported: default_domain && supported.contains(&op_type.as_str()),
                remaining: remaining
                    .as_ref()
                    .map(|r| r.get(&(domain.clone(), op_type.clone())).copied().unwrap_or(0)),
                op_type,
                domain,
                count,
            }
        })
        .collect();
    op_types.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.op_type.cmp(&b.op_type)));
    Analysis {
        path: model.path.display().to_string(),
        ir_version: model.proto.ir_version,
        opset: model.opset(),
        producer: format!("{} {}", model.proto.producer_name, model.proto.producer_version)
            .trim()
            .to_string(),
        node_count,
        op_types,
        inputs,
        outputs,
        initializers,
        parameters,
        weight_bytes,
        external_files: external_files.into_iter().collect(),
        needed_shapes,
        trial,
    }
}

fn dims_text(dims: &Option<Vec<Dim>>) -> String {
    match dims {
        None => "[rank unknown]".into(),
        Some(d) => {
            let parts: Vec<String> = d
                .iter()
                .map(|d| match d {
                    Dim::Fixed(v) => v.to_string(),
                    Dim::Symbol(s) => s.clone(),
                    Dim::Unknown => "?".into(),
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

impl Analysis {
    /// The report `edgec analyze` prints.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let opset = self.opset.map_or_else(|| "none".to_string(), |o| o.to_string());
        let _ = writeln!(s, "model: {}", self.path);
        let _ = writeln!(
            s,
            "  ir_version {}, opset {opset}, producer {:?}",
            self.ir_version, self.producer
        );
        let _ = writeln!(
            s,
            "  {} nodes, {} initializers ({} parameters, {:.1} MB){}",
            self.node_count,
            self.initializers,
            self.parameters,
            self.weight_bytes as f64 / 1e6,
            if self.external_files.is_empty() {
                String::new()
            } else {
                format!(", external data in {}", self.external_files.join(", "))
            }
        );
        let _ = writeln!(s, "inputs:");
        for i in &self.inputs {
            let note = if i.dtype == "INT64" {
                "  (int32 in the package)"
            } else if i.dtype == "DOUBLE" {
                "  (fp32 in the package)"
            } else {
                ""
            };
            let _ = writeln!(s, "  {:<24} {:<8} {}{note}", i.name, i.dtype, dims_text(&i.dims));
        }
        let _ = writeln!(s, "outputs:");
        for o in &self.outputs {
            let _ = writeln!(s, "  {:<24} {:<8} {}", o.name, o.dtype, dims_text(&o.dims));
        }

        let mut symbols: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in &self.inputs {
            for (k, d) in i.dims.iter().flatten().enumerate() {
                match d {
                    Dim::Symbol(sym) => symbols
                        .entry(sym.clone())
                        .or_default()
                        .push(format!("{} dim {k}", i.name)),
                    Dim::Unknown => symbols
                        .entry("(unnamed)".into())
                        .or_default()
                        .push(format!("{} dim {k}", i.name)),
                    Dim::Fixed(_) => {}
                }
            }
        }
        if symbols.is_empty() {
            let _ = writeln!(s, "dynamic dims: none");
        } else {
            let _ = writeln!(s, "dynamic dims:");
            for (sym, uses) in &symbols {
                let _ = writeln!(s, "  {sym:<12} {}", uses.join(", "));
            }
        }
        if !self.needed_shapes.is_empty() {
            let args: Vec<String> = self
                .needed_shapes
                .iter()
                .map(|a| format!("--input-shape {a}"))
                .collect();
            let _ = writeln!(
                s,
                "to compile, fix them (one value per placeholder; dims sharing a name must agree):\n  {}",
                args.join(" ")
            );
        }

        let unsupported = self.op_types.iter().filter(|o| !o.supported).count();
        let _ = writeln!(
            s,
            "op types: {} ({})",
            self.op_types.len(),
            if unsupported == 0 {
                "all supported".to_string()
            } else {
                format!("{unsupported} not supported")
            }
        );
        let with_remaining = self.op_types.iter().any(|o| o.remaining.is_some());
        if with_remaining {
            let _ = writeln!(s, "  {:>6}  {:>9}  {:<24} status", "nodes", "as ops", "op type");
        } else {
            let _ = writeln!(s, "  {:>6}  {:<24} status", "nodes", "op type");
        }
        for o in &self.op_types {
            let name = if o.domain.is_empty() || o.domain == "ai.onnx" {
                o.op_type.clone()
            } else {
                format!("{}::{}", o.domain, o.op_type)
            };
            let status = if !o.supported {
                "NOT SUPPORTED"
            } else if COMPILE_TIME_OPS.contains(&o.op_type.as_str()) {
                "supported, evaluated at compile time"
            } else {
                "supported"
            };
            match o.remaining {
                Some(r) => {
                    let _ = writeln!(s, "  {:>6}  {:>9}  {name:<24} {status}", o.count, r);
                }
                None => {
                    let _ = writeln!(s, "  {:>6}  {name:<24} {status}", o.count);
                }
            }
        }
        match &self.trial {
            TrialCompile::NeedsShapes => {
                let _ = writeln!(s, "trial compile: skipped (give the --input-shape values above)");
            }
            TrialCompile::Ok { ops } => {
                let _ = writeln!(
                    s,
                    "trial compile: ok, {ops}{}",
                    if with_remaining {
                        " (\"as ops\": nodes that still produce ops; the rest were folded or fused)"
                    } else {
                        ""
                    }
                );
            }
            TrialCompile::Failed(e) => {
                let _ = writeln!(s, "trial compile: failed: {e}");
            }
        }
        s
    }
}
