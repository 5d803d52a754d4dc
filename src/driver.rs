//! The whole pipeline in one function: [`compile`].

use crate::coreml::{self, describe::ProvenanceInfo, DeploymentTarget, PackageInfo};
use crate::error::{Error, Result};
use crate::onnx::{self, InputShapes};
use edgec_passes::compressed::{WeightReport, WeightRule};
use edgec_passes::pass::{split_for_precision, Pass, PassOptions, PIPELINE};
use edgec_passes::precision::{PrecisionAction, PrecisionDecision};
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

#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub target: Target,
    pub deployment_target: DeploymentTarget,
    pub precision: Precision,
    /// `--precision auto`: fp16 with the ops calibration finds in fp32 (needs `precision` fp16).
    pub auto_precision: Option<AutoPrecision>,
    pub input_shapes: InputShapes,
    /// `--weights` rules, in order: a later one wins for the weights it selects.
    pub weights: Vec<WeightRule>,
    /// Weights with at most this many elements stay dense (coremltools' default: 2048).
    pub weights_min_elements: usize,
    /// Run the IR verifier after every pass (tests do; it is cheap but not free).
    pub verify_each_pass: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            target: Target::default(),
            deployment_target: DeploymentTarget::default(),
            precision: Precision::default(),
            auto_precision: None,
            input_shapes: InputShapes::default(),
            weights: Vec::new(),
            weights_min_elements: DEFAULT_WEIGHTS_MIN_ELEMENTS,
            verify_each_pass: false,
        }
    }
}

/// `--weights-min-elements` when not given (coremltools' `weight_threshold`).
pub const DEFAULT_WEIGHTS_MIN_ELEMENTS: usize = 2048;

/// Calibrated mixed precision (see [`crate::mixed_precision`]).
#[derive(Clone, Debug)]
pub struct AutoPrecision {
    /// Calibration inputs, keyed by ONNX input name; without them, inputs are generated from
    /// the input types with `seed` (real inputs are better).
    pub calibration: Option<PathBuf>,
    pub seed: u64,
    /// Every output's cosine against the fp32 program must reach this.
    pub min_cosine: f64,
}

impl Default for AutoPrecision {
    fn default() -> Self {
        AutoPrecision {
            calibration: None,
            seed: 0,
            min_cosine: crate::mixed_precision::DEFAULT_MIN_COSINE,
        }
    }
}

/// One step of the pipeline and what it took.
#[derive(Clone, Debug)]
pub struct StepTiming {
    pub name: String,
    pub duration: Duration,
    /// Live IR nodes after the step (0 for non-IR steps).
    pub nodes_after: usize,
}

/// What calibration did (`--precision auto`).
#[derive(Clone, Debug)]
pub struct CalibrationReport {
    /// Where the inputs came from, in words.
    pub inputs: String,
    /// Ops the search kept in fp32 (the package's `fp32_ops` lists them with the static ones).
    pub calibrated_ops: usize,
    pub reached: bool,
    pub min_cosine: f64,
    pub runs: usize,
    /// Per output: cosine against fp32 with fp16 everywhere the static guard allows, and of the
    /// emitted package (run by the interpreter with fp16 rounding).
    pub cosine_before: Vec<(String, f64)>,
    pub cosine_package: Vec<(String, f64)>,
}

#[derive(Clone, Debug)]
pub struct CompileReport {
    pub onnx_nodes: usize,
    pub steps: Vec<StepTiming>,
    pub package: PackageInfo,
    /// Everything done to keep fp16 from changing what the model computes.
    pub precision_log: Vec<PrecisionDecision>,
    /// One row per float constant in the weight file: compressed how, with what error, or why not.
    pub weights: Vec<WeightReport>,
    /// `--weights` rules that selected nothing.
    pub warnings: Vec<String>,
    pub calibration: Option<CalibrationReport>,
}

/// Load and import `model`, then run the pass pipeline; the legal IR ready for lowering.
pub fn build_ir(
    model_path: &Path,
    options: &CompileOptions,
    steps: &mut Vec<StepTiming>,
) -> Result<(onnx::OnnxModel, Graph)> {
    let model = load(model_path, steps)?;
    let mut runner = PassRunner::new(&model, options);
    let mut graph = runner.import(&model, steps)?;
    runner.run(&mut graph, PIPELINE, steps)?;
    runner.finish(&graph)?;
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

/// Runs passes over the imported graph: timing each, verifying after each when asked.
struct PassRunner<'a> {
    path: PathBuf,
    options: &'a CompileOptions,
    pass_options: PassOptions,
    /// Whether `legalize` has run (the verifier's stage).
    legal: bool,
}

impl<'a> PassRunner<'a> {
    fn new(model: &onnx::OnnxModel, options: &'a CompileOptions) -> Self {
        PassRunner {
            path: model.path.clone(),
            options,
            pass_options: PassOptions {
                precision: options.precision,
                fp16_io: options.deployment_target >= DeploymentTarget::Ios16,
                weights: options.weights.clone(),
                weights_min_elements: options.weights_min_elements,
            },
            legal: false,
        }
    }

    fn check(&self, graph: &Graph, stage: Stage, after: &str) -> Result<()> {
        verify(graph, stage).map_err(|source| Error::Verify {
            path: self.path.clone(),
            after: after.to_string(),
            source,
        })
    }

    fn import(&self, model: &onnx::OnnxModel, steps: &mut Vec<StepTiming>) -> Result<Graph> {
        let t = Instant::now();
        let graph = onnx::import(model, &self.options.input_shapes)?;
        steps.push(StepTiming {
            name: "import".into(),
            duration: t.elapsed(),
            nodes_after: graph.live_node_count(),
        });
        if self.options.verify_each_pass {
            self.check(&graph, Stage::Imported, "import")?;
        }
        Ok(graph)
    }

    fn run(&mut self, graph: &mut Graph, passes: &[&dyn Pass], steps: &mut Vec<StepTiming>) -> Result<()> {
        for pass in passes.iter().filter(|p| p.enabled(&self.pass_options)) {
            let t = Instant::now();
            pass.run(graph, &self.pass_options).map_err(|source| Error::Pass {
                path: self.path.clone(),
                source,
            })?;
            steps.push(StepTiming {
                name: pass.name().into(),
                duration: t.elapsed(),
                nodes_after: graph.live_node_count(),
            });
            self.legal |= pass.name() == "legalize";
            if self.options.verify_each_pass {
                let stage = if self.legal { Stage::Legal } else { Stage::Imported };
                self.check(graph, stage, pass.name())?;
            }
        }
        Ok(())
    }

    /// The back end's contract, checked always: a violation here is an edgec bug or an
    /// unsupported construct, reported instead of producing a package Core ML would reject.
    fn finish(&self, graph: &Graph) -> Result<()> {
        self.check(graph, Stage::Final, "the last pass")
    }
}

/// Compile the ONNX model at `model_path` into the package at `out`.
pub fn compile(model_path: &Path, out: &Path, options: &CompileOptions) -> Result<CompileReport> {
    compile_with_progress(model_path, out, options, &mut |_| {})
}

/// [`compile`], telling `progress` about long-running work (calibration rounds).
pub fn compile_with_progress(
    model_path: &Path,
    out: &Path,
    options: &CompileOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<CompileReport> {
    crate::compression::check_target(&options.weights, options.deployment_target).map_err(Error::Usage)?;
    let mut steps = Vec::new();
    let model = load(model_path, &mut steps)?;
    // The source hash (package ids and provenance) is only needed when writing: compute it on
    // another thread while the front end and the passes run.
    let file = model.file_bytes();
    let hashing = std::thread::spawn(move || onnx::sha256_hex(&file));
    let mut runner = PassRunner::new(&model, options);
    let mut graph = runner.import(&model, &mut steps)?;
    let [before, guard, after] = split_for_precision();
    runner.run(&mut graph, before, &mut steps)?;
    // Calibration compares with the model's own fp32 program: the graph before the guard.
    let fp32_program = options.auto_precision.is_some().then(|| graph.clone());
    runner.run(&mut graph, guard, &mut steps)?;
    let calibration = match (&options.auto_precision, fp32_program) {
        (Some(auto), Some(fp32_program)) => {
            if options.precision != Precision::Fp16 {
                return Err(Error::Usage("automatic mixed precision needs fp16 precision".into()));
            }
            let t = Instant::now();
            let found = calibrate(&mut graph, fp32_program, &model, options, auto, &runner, progress)?;
            steps.push(StepTiming {
                name: "calibrate_precision".into(),
                duration: t.elapsed(),
                nodes_after: graph.live_node_count(),
            });
            Some(found)
        }
        _ => None,
    };
    runner.run(&mut graph, after, &mut steps)?;
    runner.finish(&graph)?;
    let onnx_nodes = model.proto.graph.as_ref().map_or(0, |g| g.node.len());
    let source_sha256 = hashing.join().unwrap_or_else(|_| model.sha256());

    let t = Instant::now();
    let info = provenance(&model, options, source_sha256);
    let package = coreml::write_package(&graph, options.deployment_target, info, out)?;
    steps.push(StepTiming {
        name: "write_package".into(),
        duration: t.elapsed(),
        nodes_after: 0,
    });
    let calibration = match calibration {
        Some((mut report, inputs, reference)) => {
            // The proof is the emitted package itself, run as a device would round it.
            let options = crate::interp::InterpOptions { fp16_rounding: true };
            let actual = crate::interp::run_package(out, &inputs, &options)?;
            report.cosine_package = reference
                .iter()
                .zip(&actual)
                .map(|((name, r), (_, a))| (name.clone(), crate::verify::compare(name, r, a, Precision::Fp16).cosine))
                .collect();
            Some(report)
        }
        None => None,
    };
    let warnings = crate::compression::unmatched_rules(&options.weights, &graph.weight_report);
    Ok(CompileReport {
        onnx_nodes,
        steps,
        package,
        precision_log: graph.precision_log,
        weights: graph.weight_report,
        warnings,
        calibration,
    })
}

fn provenance(model: &onnx::OnnxModel, options: &CompileOptions, source_sha256: String) -> ProvenanceInfo {
    ProvenanceInfo {
        source_file: model
            .path
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
        fp32_ops_json: None,
        source_dtypes: source_dtypes(model),
    }
}

/// A scratch folder in the temporary directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(purpose: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SCRATCH_ID: AtomicUsize = AtomicUsize::new(0);
        Scratch(std::env::temp_dir().join(format!(
            "edgec-{purpose}-{}-{}",
            std::process::id(),
            SCRATCH_ID.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Finish `graph` as an fp32 program (the passes from `cast_to_fp16` on, in fp32) and write it
/// to `package`. Given the IR before the fp16 range guard this is the model's fp32 program;
/// given the IR after it, the fp16 program with fp32 types, for emulation.
fn write_fp32(
    graph: &Graph,
    model: &onnx::OnnxModel,
    options: &CompileOptions,
    runner: &PassRunner,
    package: &Path,
) -> Result<PackageInfo> {
    let [_, _, after] = split_for_precision();
    let mut program = graph.clone();
    // The programs fp16 emulation compares are dense: compression is measured on its own.
    let fp32 = PassOptions {
        precision: Precision::Fp32,
        weights: Vec::new(),
        ..runner.pass_options.clone()
    };
    for pass in after.iter().filter(|p| p.enabled(&fp32)) {
        pass.run(&mut program, &fp32).map_err(|source| Error::Pass {
            path: runner.path.clone(),
            source,
        })?;
    }
    runner.finish(&program)?;
    let info = ProvenanceInfo {
        precision: "fp32".into(),
        ..provenance(model, options, String::new())
    };
    coreml::write_package(&program, options.deployment_target, info, package)
}

/// The two programs fp16 emulation runs (see [`crate::interp::emulate`]), as fp32 packages in a
/// scratch folder: the model's fp32 program, and the fp16 program an fp16 compile with the same
/// options emits (same rewrites and static pins) before its casts; with the ONNX node of each
/// MIL op.
pub struct Probe {
    pub scratch: Scratch,
    pub reference: PathBuf,
    pub fp16: PathBuf,
    pub package: PackageInfo,
    pub origins: std::collections::HashMap<String, String>,
}

/// Build the [`Probe`] of `model_path` under `options`.
pub fn compile_probe(model_path: &Path, options: &CompileOptions) -> Result<Probe> {
    let mut steps = Vec::new();
    let model = load(model_path, &mut steps)?;
    let options = CompileOptions {
        precision: Precision::Fp16,
        auto_precision: None,
        ..options.clone()
    };
    let mut runner = PassRunner::new(&model, &options);
    let mut graph = runner.import(&model, &mut steps)?;
    let [before, guard, _] = split_for_precision();
    runner.run(&mut graph, before, &mut steps)?;
    let scratch = Scratch::new("probe");
    let reference = scratch.0.join("fp32.mlpackage");
    write_fp32(&graph, &model, &options, &runner, &reference)?;
    runner.run(&mut graph, guard, &mut steps)?;
    let fp16 = scratch.0.join("fp16_probe.mlpackage");
    let package = write_fp32(&graph, &model, &options, &runner, &fp16)?;
    let origins = package
        .op_nodes
        .iter()
        .filter(|(_, id)| id.index() < graph.nodes.len())
        .map(|(op, id)| (op.clone(), graph.node(*id).origin.clone()))
        .collect();
    Ok(Probe {
        scratch,
        reference,
        fp16,
        package,
        origins,
    })
}

type Calibrated = (
    CalibrationReport,
    Vec<(String, crate::interp::NdArray)>,
    Vec<(String, crate::interp::NdArray)>,
);

/// Compile `graph` (the IR just before `cast_to_fp16`) as an fp32 program to a scratch package,
/// search for the ops fp16 breaks, and pin them in `graph`.
fn calibrate(
    graph: &mut Graph,
    fp32_program: Graph,
    model: &onnx::OnnxModel,
    options: &CompileOptions,
    auto: &AutoPrecision,
    runner: &PassRunner,
    progress: &mut dyn FnMut(&str),
) -> Result<Calibrated> {
    let scratch = Scratch::new("calibrate");
    let reference = scratch.0.join("fp32.mlpackage");
    write_fp32(&fp32_program, model, options, runner, &reference)?;
    drop(fp32_program);
    let package = scratch.0.join("fp16_probe.mlpackage");
    let written = write_fp32(graph, model, options, runner, &package)?;

    let (inputs, described) = match &auto.calibration {
        Some(file) => {
            let inputs = crate::npy::read_npz(file)?
                .into_iter()
                .filter(|(k, _)| !k.starts_with("output:"))
                .map(|(k, a)| (k.strip_prefix("input:").unwrap_or(&k).to_string(), a))
                .collect();
            (inputs, format!("calibration inputs from {}", file.display()))
        }
        None => (
            crate::verify::deterministic_inputs(&package, auto.seed)?,
            format!(
                "generated inputs (seed {}; normal floats, integers in 0..10): real inputs (--calibration) are better",
                auto.seed
            ),
        ),
    };
    progress(&format!("calibrating fp16 on {described}"));
    let pinned = graph
        .order
        .iter()
        .copied()
        .filter(|&n| graph.node(n).keep_fp32.is_some())
        .collect();
    // Nodes the fp32-only passes added (I/O adapters) are not the graph's to pin.
    let op_nodes: Vec<_> = written
        .op_nodes
        .into_iter()
        .filter(|(_, id)| id.index() < graph.nodes.len())
        .collect();
    let found = crate::mixed_precision::search(
        &reference,
        &package,
        &op_nodes,
        &pinned,
        &inputs,
        auto.min_cosine,
        progress,
    )?;
    for (id, reason) in &found.pins {
        graph.keep_in_fp32(*id, reason.clone());
        let node = graph.node(*id);
        let decision = PrecisionDecision {
            origin: node.origin.clone(),
            op: node.op.name(),
            action: PrecisionAction::KeptFp32,
            detail: reason.to_string(),
        };
        graph.precision_log.push(decision);
    }
    let report = CalibrationReport {
        inputs: described,
        calibrated_ops: found.pins.len(),
        reached: found.reached,
        min_cosine: auto.min_cosine,
        runs: found.runs,
        cosine_before: found.cosine_before,
        cosine_package: Vec::new(),
    };
    Ok((report, inputs, found.reference))
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
