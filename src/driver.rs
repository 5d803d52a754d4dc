//! The whole pipeline in one function: [`compile`].

use crate::coreml::{self, describe::ProvenanceInfo, DeploymentTarget, PackageInfo};
use crate::error::{Error, Result};
use crate::onnx::{self, InputShapes};
use edgec_passes::pass::{PassOptions, PIPELINE};
use edgec_passes::verify::{verify, Stage};
use edgec_passes::{Graph, Precision};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which hardware family the package is for. Core ML on Apple devices is the only one today:
/// it schedules the program on the Neural Engine, the Metal GPU and the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    #[default]
    Metal,
}

#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    pub target: Target,
    pub deployment_target: DeploymentTarget,
    pub precision: Precision,
    pub input_shapes: InputShapes,
    /// Run the IR verifier after every pass (tests do; it is cheap but not free).
    pub verify_each_pass: bool,
}

/// One step of the pipeline and what it took.
#[derive(Clone, Debug)]
pub struct StepTiming {
    pub name: String,
    pub duration: Duration,
    /// Live IR nodes after the step (0 for non-IR steps).
    pub nodes_after: usize,
}

#[derive(Clone, Debug)]
pub struct CompileReport {
    pub onnx_nodes: usize,
    pub steps: Vec<StepTiming>,
    pub package: PackageInfo,
}

/// Load and import `model`, then run the pass pipeline; the legal IR ready for lowering.
pub fn build_ir(
    model_path: &Path,
    options: &CompileOptions,
    steps: &mut Vec<StepTiming>,
) -> Result<(onnx::OnnxModel, Graph)> {
    let model = load(model_path, steps)?;
    let graph = import_and_run_passes(&model, options, steps)?;
    Ok((model, graph))
}

fn load(model_path: &Path, steps: &mut Vec<StepTiming>) -> Result<onnx::OnnxModel> {
    let t = Instant::now();
    let model = onnx::load(model_path)?;
    steps.push(StepTiming {
        name: "load_onnx".into(),
        duration: t.elapsed(),
        nodes_after: 0,
    });
    Ok(model)
}

/// Import the loaded model and run every pass of the pipeline.
fn import_and_run_passes(
    model: &onnx::OnnxModel,
    options: &CompileOptions,
    steps: &mut Vec<StepTiming>,
) -> Result<Graph> {
    let model_path = model.path.as_path();
    let t = Instant::now();
    let mut graph = onnx::import(model, &options.input_shapes)?;
    steps.push(StepTiming {
        name: "import".into(),
        duration: t.elapsed(),
        nodes_after: graph.live_node_count(),
    });
    let path = model_path.to_path_buf();
    let check = |graph: &Graph, stage: Stage, after: &str| {
        verify(graph, stage).map_err(|source| Error::Verify {
            path: path.clone(),
            after: after.to_string(),
            source,
        })
    };
    if options.verify_each_pass {
        check(&graph, Stage::Imported, "import")?;
    }

    let pass_options = PassOptions {
        precision: options.precision,
        fp16_io: options.deployment_target >= DeploymentTarget::Ios16,
    };
    let mut legal = false;
    for pass in PIPELINE.iter().filter(|p| p.enabled(&pass_options)) {
        let t = Instant::now();
        pass.run(&mut graph, &pass_options).map_err(|source| Error::Pass {
            path: path.clone(),
            source,
        })?;
        steps.push(StepTiming {
            name: pass.name().into(),
            duration: t.elapsed(),
            nodes_after: graph.live_node_count(),
        });
        legal |= pass.name() == "legalize";
        if options.verify_each_pass {
            check(&graph, if legal { Stage::Legal } else { Stage::Imported }, pass.name())?;
        }
    }
    // The back end's contract, checked always: a violation here is an edgec bug or an
    // unsupported construct, reported instead of producing a package Core ML would reject.
    check(&graph, Stage::Final, "the last pass")?;
    Ok(graph)
}

/// Compile the ONNX model at `model_path` into the package at `out`.
pub fn compile(model_path: &Path, out: &Path, options: &CompileOptions) -> Result<CompileReport> {
    let mut steps = Vec::new();
    let model = load(model_path, &mut steps)?;
    // The source hash (package ids and provenance) is only needed when writing: compute it on
    // another thread while the front end and the passes run.
    let file = model.file_bytes();
    let hashing = std::thread::spawn(move || onnx::sha256_hex(&file));
    let graph = import_and_run_passes(&model, options, &mut steps)?;
    let onnx_nodes = model.proto.graph.as_ref().map_or(0, |g| g.node.len());
    let source_sha256 = hashing.join().unwrap_or_else(|_| model.sha256());

    let t = Instant::now();
    let info = ProvenanceInfo {
        source_file: model_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source_sha256,
        precision: match options.precision {
            Precision::Fp16 => "fp16".into(),
            Precision::Fp32 => "fp32".into(),
        },
        deployment_target: options.deployment_target.to_string(),
        short_description: model.proto.doc_string.clone(),
        io_names_json: String::new(),
        source_dtypes: source_dtypes(&model),
    };
    let package = coreml::write_package(&graph, options.deployment_target, info, out)?;
    steps.push(StepTiming {
        name: "write_package".into(),
        duration: t.elapsed(),
        nodes_after: 0,
    });
    Ok(CompileReport {
        onnx_nodes,
        steps,
        package,
    })
}

/// The ONNX element type of each graph input and output, by name (`int64`, `float`, ...).
fn source_dtypes(model: &onnx::OnnxModel) -> std::collections::BTreeMap<String, String> {
    use crate::proto::onnx::{tensor_proto::DataType, type_proto};
    let Some(graph) = model.proto.graph.as_ref() else {
        return Default::default();
    };
    graph
        .input
        .iter()
        .chain(&graph.output)
        .filter_map(|v| match v.r#type.as_ref()?.value.as_ref()? {
            type_proto::Value::TensorType(t) => {
                let name = DataType::try_from(t.elem_type).ok()?.as_str_name().to_lowercase();
                Some((v.name.clone(), name))
            }
            _ => None,
        })
        .collect()
}

/// The default output path: the model's path with `.mlpackage` for its extension.
pub fn default_output(model_path: &Path) -> PathBuf {
    model_path.with_extension("mlpackage")
}
