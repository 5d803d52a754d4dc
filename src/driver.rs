//! The whole pipeline in one function: [`compile`].

use crate::coreml::package::PlanOptions;
use crate::coreml::{self, describe::ProvenanceInfo, DeploymentTarget, PackageInfo};
use crate::error::{Error, Result};
use crate::onnx::{self, InputShapes};
use crate::plan::{ComputeUnits, Plan};
use crate::progress::{self, Progress};
use edgec_passes::compressed::{WeightReport, WeightRule};
use edgec_passes::pass::{self, split_for_precision, GeluChoice, Pass, PassOptions, PIPELINE};
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
    /// `--input-value`: inputs compiled in as constants.
    pub input_values: crate::onnx::InputValues,
    /// `--weights` rules, in order: a later one wins for the weights it selects.
    pub weights: Vec<WeightRule>,
    /// Weights with at most this many elements stay dense (coremltools' default: 2048).
    pub weights_min_elements: usize,
    /// When weights are compressed: measure the outputs against dense weights and leave the
    /// worst weights dense until they reach the bar (`None`: `--weights-min-cosine off`).
    pub compression_guard: Option<crate::compression_guard::CompressionGuard>,
    /// Run the IR verifier after every pass (tests do; it is cheap but not free).
    pub verify_each_pass: bool,
    /// `--gelu`: exact GELU as written, or the tanh approximation (`auto`: fast in fp16).
    pub gelu: GeluChoice,
    /// The units the app will allow (`MLModelConfiguration.computeUnits`): the plan uses only
    /// these, and the package metadata records them.
    pub compute_units: ComputeUnits,
    /// Write each op's predicted unit as its `IntendedBackend` attribute.
    pub pin_compute_units: bool,
    /// Fail (write nothing) when any op is predicted off the Neural Engine.
    pub require_ane: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            target: Target::default(),
            deployment_target: DeploymentTarget::default(),
            precision: Precision::default(),
            auto_precision: None,
            input_shapes: InputShapes::default(),
            input_values: Default::default(),
            weights: Vec::new(),
            weights_min_elements: DEFAULT_WEIGHTS_MIN_ELEMENTS,
            compression_guard: Some(Default::default()),
            verify_each_pass: false,
            gelu: GeluChoice::default(),
            compute_units: ComputeUnits::default(),
            pin_compute_units: false,
            require_ane: false,
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
    /// SHA-256 of the model file, hex (the package's provenance records it too).
    pub source_sha256: String,
    pub steps: Vec<StepTiming>,
    pub package: PackageInfo,
    /// Everything done to keep fp16 from changing what the model computes.
    pub precision_log: Vec<PrecisionDecision>,
    /// One row per float constant in the weight file: compressed how, with what error, or why not.
    pub weights: Vec<WeightReport>,
    /// What the user should hear about: empty inputs compiled as constants, `--weights` rules
    /// that selected nothing, ...
    pub warnings: Vec<String>,
    pub calibration: Option<CalibrationReport>,
    /// What the compression guard measured and did (when weights were compressed).
    pub compression_guard: Option<crate::compression_guard::GuardReport>,
    /// What the pattern passes rewrote (`-v`), by description.
    pub rewrites: std::collections::BTreeMap<String, usize>,
    /// The compute-unit plan of the package (also in `Data/com.edgec/plan.json`).
    pub plan: Plan,
    /// The files the model keeps tensor data in ([`onnx::OnnxModel::external_data_files`]).
    pub external_data: Vec<PathBuf>,
}

impl CompileReport {
    /// "N ONNX nodes → M MIL ops (+K constants)".
    pub fn op_counts(&self) -> coreml::OpCounts {
        coreml::OpCounts {
            onnx_nodes: Some(self.onnx_nodes),
            ..self.package.ops
        }
    }
}

impl CompileOptions {
    fn plan_options(&self) -> PlanOptions {
        PlanOptions {
            compute_units: self.compute_units,
            pin: self.pin_compute_units,
            require_ane: self.require_ane,
        }
    }
}

/// Load and import `model`, then run the pass pipeline; the legal IR ready for lowering.
pub fn build_ir(
    model_path: &Path,
    options: &CompileOptions,
    steps: &mut Vec<StepTiming>,
) -> Result<(onnx::OnnxModel, Graph)> {
    let model = load(model_path, steps)?;
    let mut runner = PassRunner::new(&model, options);
    let mut graph = runner.import(&model, steps, &mut progress::silent)?;
    runner.run(&mut graph, PIPELINE, steps, &mut progress::silent)?;
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
                gelu: options.gelu,
                fused_attention: options.deployment_target >= DeploymentTarget::Ios18,
                fp16_recurrent: options.deployment_target >= DeploymentTarget::Ios17,
                quantized_weights: options.deployment_target >= DeploymentTarget::Ios16,
                blockwise_weights: options.deployment_target >= DeploymentTarget::Ios18,
                in_region: false,
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

    fn import(
        &self,
        model: &onnx::OnnxModel,
        steps: &mut Vec<StepTiming>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Graph> {
        progress(Progress::Stage("import"));
        let t = Instant::now();
        let graph = onnx::import(model, &self.options.input_shapes, &self.options.input_values)?;
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

    fn run(
        &mut self,
        graph: &mut Graph,
        passes: &[&dyn Pass],
        steps: &mut Vec<StepTiming>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<()> {
        for pass in passes.iter().filter(|p| p.enabled(&self.pass_options)) {
            progress(Progress::Stage(pass.name()));
            let t = Instant::now();
            pass::apply(*pass, graph, &self.pass_options).map_err(|source| Error::Pass {
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

/// The compression guard measures the weights of the model's graph, not those inside the bodies
/// of control-flow ops: a warning names the compressed ones it could not check.
fn unguarded_region_weights(graph: &Graph) -> Option<String> {
    use edgec_passes::compressed::Scheme;
    let guarded: std::collections::HashSet<&str> =
        graph.compressed.keys().map(|&v| graph.initializer_name(v)).collect();
    let unguarded: Vec<&str> = graph
        .weight_report
        .iter()
        .filter(|row| !matches!(row.scheme, Scheme::Dense | Scheme::FromModel { .. }))
        .map(|row| row.name.as_str())
        .filter(|name| !guarded.contains(name))
        .collect();
    if unguarded.is_empty() {
        return None;
    }
    Some(format!(
        "{} compressed weight(s) inside If/Loop bodies are not checked by the compression guard: {}; compare `edgec run` with the model's outputs, or keep them dense with --weights name:GLOB=fp16",
        unguarded.len(),
        unguarded.join(", ")
    ))
}

/// Compile the ONNX model at `model_path` into the package at `out`.
pub fn compile(model_path: &Path, out: &Path, options: &CompileOptions) -> Result<CompileReport> {
    compile_with_progress(model_path, out, options, &mut progress::silent)
}

/// [`compile`], telling `progress` the stage it is in and what calibration and the compression
/// guard decide.
pub fn compile_with_progress(
    model_path: &Path,
    out: &Path,
    options: &CompileOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<CompileReport> {
    crate::compression::check_target(&options.weights, options.deployment_target).map_err(Error::Usage)?;
    // A bad output path is said before minutes of work, not after.
    coreml::package::check_output(out)?;
    // What killed compiles and verifies left in the temp directory.
    crate::temp::remove_stale_scratch();
    let mut steps = Vec::new();
    progress(Progress::Stage("load"));
    let model = load(model_path, &mut steps)?;
    // The source hash (package ids and provenance) is only needed when writing: compute it on
    // another thread while the front end and the passes run.
    let file = model.file_bytes();
    let hashing = std::thread::spawn(move || onnx::sha256_hex(&file));
    let mut runner = PassRunner::new(&model, options);
    let mut graph = runner.import(&model, &mut steps, progress)?;
    let [before, guard, after] = split_for_precision();
    runner.run(&mut graph, before, &mut steps, progress)?;
    // Calibration compares with the model's own fp32 program: the graph before the guard.
    let fp32_program = options.auto_precision.is_some().then(|| graph.clone());
    runner.run(&mut graph, guard, &mut steps, progress)?;
    let calibration = match (&options.auto_precision, fp32_program) {
        (Some(auto), Some(fp32_program)) => {
            if options.precision != Precision::Fp16 {
                return Err(Error::Usage("automatic mixed precision needs fp16 precision".into()));
            }
            progress(Progress::Stage("calibrate fp16"));
            let t = Instant::now();
            let mut note = |line: &str| progress(Progress::Note(line));
            let found = calibrate(&mut graph, fp32_program, &model, options, auto, &runner, &mut note)?;
            steps.push(StepTiming {
                name: "calibrate_precision".into(),
                duration: t.elapsed(),
                nodes_after: graph.live_node_count(),
            });
            Some(found)
        }
        _ => None,
    };
    runner.run(&mut graph, after, &mut steps, progress)?;
    runner.finish(&graph)?;
    let compression_guard = match &options.compression_guard {
        // The model's own quantized weights are its values: only edgec's compression is measured.
        Some(guard)
            if graph
                .compressed
                .values()
                .any(|form| !matches!(form, edgec_passes::compressed::CompressedForm::FromModel(_))) =>
        {
            let t = Instant::now();
            // The guard's interpreter runs map packages of their own: the model file's pages
            // the import touched need not stay resident beside them.
            onnx::release_mapped_pages();
            let scratch = Scratch::new("guard");
            crate::temp::create_dir_all(&scratch.0).map_err(|e| Error::Io {
                path: scratch.0.clone(),
                source: e,
            })?;
            let write = |program: &Graph, path: &Path| {
                let info = provenance(&model, options, String::new());
                // Trial programs are measured, not shipped: plan them with the defaults.
                coreml::write_package(program, options.deployment_target, info, &PlanOptions::default(), path)
                    .map(|_| ())
            };
            progress(Progress::Stage("compression guard"));
            let mut note = |line: &str| progress(Progress::Note(line));
            let report =
                crate::compression_guard::apply(&mut graph, guard, options.precision, &scratch.0, &write, &mut note)?;
            steps.push(StepTiming {
                name: "compression_guard".into(),
                duration: t.elapsed(),
                nodes_after: graph.live_node_count(),
            });
            Some(report)
        }
        _ => None,
    };
    let onnx_nodes = model.proto.graph.as_ref().map_or(0, |g| g.node.len());
    let source_sha256 = hashing.join().unwrap_or_else(|_| model.sha256());

    let t = Instant::now();
    let mut info = provenance(&model, options, source_sha256.clone());
    // So `inspect` can say how many ONNX nodes the program came from.
    info.extra_metadata
        .insert("com.edgec.onnx_nodes".into(), onnx_nodes.to_string());
    if !graph.fixed_inputs.is_empty() {
        // So `run` and `verify` can accept (and check) the values a caller still passes.
        info.extra_metadata.insert(
            "com.edgec.fixed_inputs".into(),
            serde_json::to_string(&graph.fixed_inputs).unwrap_or_default(),
        );
    }
    info.extra_metadata.insert(
        "com.edgec.rewrites".into(),
        serde_json::to_string(&graph.rewrite_counts).unwrap_or_default(),
    );
    progress(Progress::Stage("write package"));
    let package = coreml::write_package(&graph, options.deployment_target, info, &options.plan_options(), out)?;
    steps.push(StepTiming {
        name: "plan_compute_units".into(),
        duration: package.plan_duration,
        nodes_after: 0,
    });
    steps.push(StepTiming {
        name: "write_package".into(),
        duration: t.elapsed().saturating_sub(package.plan_duration),
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
    let mut warnings = graph.warnings.clone();
    if let Some(warning) = fake_quant_in_fp16(&model, options.precision) {
        warnings.push(warning);
    }
    warnings.extend(crate::compression::unmatched_rules(
        &options.weights,
        &graph.weight_report,
    ));
    if options.compression_guard.is_some() {
        warnings.extend(unguarded_region_weights(&graph));
    }
    let plan = package.plan.clone();
    Ok(CompileReport {
        external_data: model.external_data_files(),
        onnx_nodes,
        source_sha256,
        steps,
        package,
        precision_log: graph.precision_log,
        weights: graph.weight_report,
        warnings,
        calibration,
        compression_guard,
        rewrites: graph.rewrite_counts,
        plan,
    })
}

/// In an fp16 program, activations quantized at run time (QuantizeLinear or
/// DynamicQuantizeLinear between activations) are rounded to their codes in fp16, which can move
/// values to the neighbouring code: say so, since the package may then drift from the model
/// (a statically quantized MiniLM falls to cosine 0.19; CNNs stay above 0.9998).
fn fake_quant_in_fp16(model: &onnx::OnnxModel, precision: Precision) -> Option<String> {
    if precision != Precision::Fp16 {
        return None;
    }
    let graph = model.proto.graph.as_ref()?;
    let count = graph
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "QuantizeLinear" | "DynamicQuantizeLinear"))
        .count();
    (count > 0).then(|| {
        format!(
            "the model quantizes activations at run time ({count} QuantizeLinear/DynamicQuantizeLinear node(s)), which an fp16 program rounds to codes in fp16: check the package with `edgec verify` on real inputs, or compile with --precision fp32"
        )
    })
}

/// The op counts `graph` (built by [`build_ir`] from `model`) lowers to, writing nothing.
pub fn count_ops(model: &onnx::OnnxModel, graph: &Graph, options: &CompileOptions) -> Result<coreml::OpCounts> {
    let info = provenance(model, options, String::new());
    let counts = coreml::package::count_ops(graph, options.deployment_target, info)?;
    Ok(coreml::OpCounts {
        onnx_nodes: Some(model.proto.graph.as_ref().map_or(0, |g| g.node.len())),
        ..counts
    })
}

/// The compute-unit plan `compile` would give the package, without writing it (`edgec plan`).
pub fn plan_model(model_path: &Path, options: &CompileOptions) -> Result<Plan> {
    if options.auto_precision.is_some() {
        return Err(Error::Usage(
            "planning with --precision auto needs calibration: compile the model, then plan the package".into(),
        ));
    }
    let mut steps = Vec::new();
    let (model, graph) = build_ir(model_path, options, &mut steps)?;
    let info = provenance(&model, options, String::new());
    coreml::package::plan_graph(&graph, options.deployment_target, info, options.compute_units)
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
        // The formula exact GELUs were compiled with (`--gelu auto` resolved).
        extra_metadata: std::collections::BTreeMap::from([(
            "com.edgec.gelu".to_string(),
            options.gelu.resolve(options.precision).name().to_string(),
        )]),
    }
}

/// A scratch folder in the temporary directory, removed on drop (and by an interrupt).
pub struct Scratch(
    pub PathBuf,
    /// Held for its `Drop`, which removes the folder (and for the interrupt handler's list).
    #[allow(dead_code)]
    crate::temp::TempFolder,
);

impl Scratch {
    pub fn new(purpose: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SCRATCH_ID: AtomicUsize = AtomicUsize::new(0);
        // Scratch folders of edgec processes that were killed before they could remove them.
        crate::temp::remove_stale_scratch();
        let path = std::env::temp_dir().join(format!(
            "{}{purpose}-{}-{}",
            crate::temp::SCRATCH_PREFIX,
            std::process::id(),
            SCRATCH_ID.fetch_add(1, Ordering::Relaxed)
        ));
        Scratch(path.clone(), crate::temp::TempFolder::new(path))
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
        pass::apply(*pass, &mut program, &fp32).map_err(|source| Error::Pass {
            path: runner.path.clone(),
            source,
        })?;
    }
    runner.finish(&program)?;
    let info = ProvenanceInfo {
        precision: "fp32".into(),
        ..provenance(model, options, String::new())
    };
    coreml::write_package(
        &program,
        options.deployment_target,
        info,
        &PlanOptions::default(),
        package,
    )
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
    let mut graph = runner.import(&model, &mut steps, &mut progress::silent)?;
    let [before, guard, _] = split_for_precision();
    runner.run(&mut graph, before, &mut steps, &mut progress::silent)?;
    let scratch = Scratch::new("probe");
    let reference = scratch.0.join("fp32.mlpackage");
    write_fp32(&graph, &model, &options, &runner, &reference)?;
    runner.run(&mut graph, guard, &mut steps, &mut progress::silent)?;
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
                "generated inputs (seed {}; normal floats, integers in 0..10 or below the table they index): real inputs (--calibration) are better",
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
