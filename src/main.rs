//! The `edgec` command line.

mod cli;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use cli::status::Status;
use edgec::compression_guard::CompressionGuard;
use edgec::coreml::inspect;
use edgec::driver::{default_output, Target};
use edgec::interp::{self, InterpOptions, NdArray};
use edgec::npy;
use edgec::onnx::InputShapes;
use edgec::plan::ComputeUnits;
use edgec::{AutoPrecision, CompileOptions, DeploymentTarget, Precision};
use edgec_passes::pass::GeluChoice;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const EXIT_CODES: &str = "Exit status: 0 success; 1 an error (the message names the file, node or op); \
2 compile --require-ane refused: an op is predicted off the Neural Engine (each is listed; nothing written), \
or a usage error; 130 interrupted (temporary files removed).";

#[derive(Parser)]
#[command(name = "edgec", version, about = "Compile ONNX models into Core ML ML Program packages (.mlpackage)", long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile an ONNX model into an .mlpackage.
    #[command(after_help = EXIT_CODES)]
    Compile(CompileArgs),
    /// Report what a model needs before compiling: op types (supported or not), dynamic input
    /// dims and the --input-shape values that fix them, weights; with static shapes, a trial
    /// compile shows how many nodes of each op type remain as ops after folding and fusion.
    Analyze(AnalyzeArgs),
    /// Print a summary of a package: interface, metadata, op counts, weights, plan.
    Inspect {
        /// The .mlpackage to read.
        package: PathBuf,
        /// Also list every ONNX name and the MIL name it became.
        #[arg(long)]
        names: bool,
        /// Also print the whole MIL program as text.
        #[arg(long)]
        mil: bool,
    },
    /// Print the compute-unit plan of a model or package without writing anything: per op, the
    /// predicted unit (Neural Engine, GPU, CPU), the supported units, why the others were ruled
    /// out, and its share of the estimated cost; then the segments. A prediction from published
    /// facts (docs/placement.md), not a measurement.
    Plan(PlanArgs),
    /// Execute a package on the CPU with edgec's reference interpreter (no Core ML needed).
    Run(RunArgs),
    /// Check that a package computes what its ONNX model computes (exit 1 if not).
    ///
    /// Runs the package with edgec's interpreter and the ONNX model with tract, on the same
    /// inputs. fp32 packages pass when every output's max abs error is at most 1e-4 of its
    /// largest magnitude; fp16 packages run with fp16 rounding and pass at cosine >= 0.9999.
    #[cfg(feature = "reference")]
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The .mlpackage to run.
    package: PathBuf,
    /// An input from a .npy file, by its package (MIL) name or its ONNX name (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE.npy", value_parser = parse_input_file)]
    inputs: Vec<(String, PathBuf)>,
    /// Inputs from an .npz archive; keys are input names, optionally prefixed `input:`
    /// (keys prefixed `output:`, as in edgec's reference files, are skipped).
    #[arg(long = "inputs", value_name = "FILE.npz")]
    inputs_npz: Option<PathBuf>,
    /// Where to write the outputs, by extension (any case): FILE.npz; FILE.npy when the model
    /// has one output; anything else is a directory that gets one NAME.npy per output. Without
    /// it, a summary of each output is printed.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Round every fp16 value through IEEE half, as a device computing in fp16 would.
    #[arg(long)]
    fp16_rounding: bool,
    /// Also print how long the run took.
    #[arg(short, long)]
    verbose: bool,
    /// Print no status lines; without -o the outputs' summary is still printed.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// An ONNX model (compiled in memory with the options below) or an .mlpackage.
    #[arg(required_unless_present = "rules")]
    input: Option<PathBuf>,
    /// Print the placement rules (markdown: name, effect, confidence, source) and exit.
    #[arg(long)]
    rules: bool,
    /// Print the plan as JSON (the package's Data/com.edgec/plan.json) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    settings: CompileSettings,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// The ONNX model.
    model: PathBuf,
    #[command(flatten)]
    settings: CompileSettings,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// The ONNX model (its external data files must sit in the same folder or below).
    model: PathBuf,
    /// Output package [default: MODEL with the extension .mlpackage].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Fail with exit status 2, writing nothing, when any op is predicted off the Neural
    /// Engine; each such op is listed with its reason.
    #[arg(long)]
    require_ane: bool,
    /// Also write a report of the compile (summary, pass timings, weights, compute plan), after
    /// the package: FILE.json (docs/reports.md) or FILE.html (one self-contained page).
    #[arg(long, value_name = "FILE.json|FILE.html", value_parser = edgec::report::ReportFile::parse)]
    report: Option<edgec::report::ReportFile>,
    /// Also show the passes run (timings, node counts), rewrites, precision decisions, the
    /// weights table and the per-op plan.
    #[arg(short, long)]
    verbose: bool,
    /// Print nothing but errors: no progress, summary or warnings.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    #[command(flatten)]
    settings: CompileSettings,
}

/// What `compile` (and `verify`, when it compiles) takes.
#[derive(clap::Args)]
struct CompileSettings {
    /// Hardware family to compile for.
    #[arg(long, value_enum, default_value_t = TargetArg::Metal)]
    target: TargetArg,
    /// Oldest OS the package must load on: ios15..ios18 (or macos12..macos15).
    #[arg(long, default_value = "ios16", value_parser = parse_target)]
    deployment_target: DeploymentTarget,
    /// Weight and compute precision; inputs and outputs stay fp32 either way.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Fp16)]
    precision: PrecisionArg,
    /// Calibration inputs (.npz, keys = ONNX input names, as `run` takes them) for --precision
    /// auto and the compression guard. Without it, inputs are generated from the input types.
    #[arg(long, value_name = "FILE.npz")]
    calibration: Option<PathBuf>,
    /// Without --calibration: the seed of the generated inputs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    calibration_seed: u64,
    /// How to store weights, [SELECTOR=]SCHEME (repeatable; a later rule wins for the weights it
    /// selects). SCHEME: fp16 (default; fp32 with --precision fp32), palettize:N (N-bit LUT per
    /// tensor, N in 1,2,3,4,6,8; 3 needs ios18), palettize:N:gG (a LUT per G output channels,
    /// ios18), int8 (per output channel, ios16), int8:bB / int4:bB (B elements per block along the
    /// input axis, ios18). SELECTOR: conv, linear, matmul, embedding, or name:GLOB over weight names.
    #[arg(long = "weights", value_name = "[SELECTOR=]SCHEME", value_parser = edgec::compression::parse_rule)]
    weights: Vec<edgec_passes::compressed::WeightRule>,
    /// Weights with at most this many elements stay dense.
    #[arg(long, value_name = "N", default_value_t = edgec::driver::DEFAULT_WEIGHTS_MIN_ELEMENTS)]
    weights_min_elements: usize,
    /// The compression guard's bar: with weights compressed, every output's cosine against the
    /// same program with dense weights (on --calibration inputs or generated ones) must reach
    /// C, else the weights of lowest SNR are left dense until it does, and the compile says
    /// which. `off` skips the measurement (two or more interpreter runs of the model).
    #[arg(long, value_name = "C|off", default_value = "0.999", value_parser = parse_min_cosine)]
    weights_min_cosine: MinCosine,
    /// GELU formula: exact keeps the model's, fast computes exact GELU with the tanh
    /// approximation (fewer, cheaper ops), auto is fast in fp16 and exact in fp32.
    #[arg(long, value_enum, default_value_t = GeluArg::Auto)]
    gelu: GeluArg,
    /// Fix an input's shape, e.g. input=1x3x224x224 (repeatable); needed for dynamic dims.
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    input_shapes: Vec<(String, Vec<usize>)>,
    /// Fix a small input's value, e.g. sr=16000 or mask=1,1,0 (repeatable; row-major): the input
    /// becomes a constant the package does not take, and what depends on it folds (an If on it
    /// is inlined).
    #[arg(long = "input-value", value_name = "NAME=V[,V...]", value_parser = parse_input_value)]
    input_values: Vec<(String, Vec<f64>)>,
    /// The units the app lets Core ML use (MLModelConfiguration.computeUnits): the plan uses
    /// only these, and the package metadata records the choice (com.edgec.compute_units)
    /// [default: all; for `plan PACKAGE`, what the package was planned for].
    #[arg(long, value_enum)]
    compute_units: Option<ComputeUnitsArg>,
    /// Write each op's predicted unit into the program as its IntendedBackend attribute, as
    /// coremltools 9's set_intended_backends does. Off by default: nobody has shown on a device
    /// what Core ML does with a hint it cannot honour.
    #[arg(long)]
    pin_compute_units: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ComputeUnitsArg {
    /// Neural Engine, GPU and CPU (MLComputeUnits.all).
    #[value(alias = "coreml")]
    All,
    /// Neural Engine and CPU (.cpuAndNeuralEngine).
    #[value(name = "cpu-and-ne", alias = "coreml-ane")]
    CpuAndNe,
    /// GPU and CPU (.cpuAndGPU).
    #[value(alias = "coreml-gpu")]
    CpuAndGpu,
    /// CPU only (.cpuOnly).
    #[value(alias = "coreml-cpu")]
    CpuOnly,
}

impl ComputeUnitsArg {
    fn units(self) -> ComputeUnits {
        match self {
            ComputeUnitsArg::All => ComputeUnits::All,
            ComputeUnitsArg::CpuAndNe => ComputeUnits::CpuAndNeuralEngine,
            ComputeUnitsArg::CpuAndGpu => ComputeUnits::CpuAndGpu,
            ComputeUnitsArg::CpuOnly => ComputeUnits::CpuOnly,
        }
    }
}

impl CompileSettings {
    /// The settings the user typed (not defaults), as (metadata name, value in the package's
    /// spelling) for those a package records, and with an empty value for the rest: `verify`
    /// with a package cannot apply them and says so.
    #[cfg(feature = "reference")]
    fn given_on_command_line(&self, matches: &clap::ArgMatches) -> Vec<(&'static str, String)> {
        let typed = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        let mut given = Vec::new();
        if typed("deployment_target") {
            given.push(("deployment_target", self.deployment_target.to_string()));
        }
        if typed("precision") {
            let name = match self.precision {
                PrecisionArg::Fp16 => "fp16",
                PrecisionArg::Fp32 => "fp32",
                PrecisionArg::Auto => "auto",
            };
            given.push(("precision", name.to_string()));
        }
        if typed("gelu") && self.gelu != GeluArg::Auto {
            let name = if self.gelu == GeluArg::Fast { "fast" } else { "exact" };
            given.push(("gelu", name.to_string()));
        }
        if let Some(units) = self.compute_units.filter(|_| typed("compute_units")) {
            given.push(("compute_units", units.units().core_ml_name().to_string()));
        }
        for (id, setting) in [
            ("weights", "weights"),
            ("weights_min_elements", "weights_min_elements"),
            ("weights_min_cosine", "weights_min_cosine"),
            ("calibration", "calibration"),
            ("calibration_seed", "calibration_seed"),
            ("input_shapes", "input_shape"),
            ("input_values", "input_value"),
            ("pin_compute_units", "pin_compute_units"),
        ] {
            if typed(id) {
                given.push((setting, String::new()));
            }
        }
        given
    }

    fn options(&self) -> CompileOptions {
        CompileOptions {
            target: match self.target {
                TargetArg::Metal => Target::Metal,
            },
            deployment_target: self.deployment_target,
            precision: match self.precision {
                PrecisionArg::Fp16 | PrecisionArg::Auto => Precision::Fp16,
                PrecisionArg::Fp32 => Precision::Fp32,
            },
            auto_precision: (self.precision == PrecisionArg::Auto).then(|| AutoPrecision {
                calibration: self.calibration.clone(),
                seed: self.calibration_seed,
                ..AutoPrecision::default()
            }),
            input_shapes: InputShapes(self.input_shapes.clone()),
            input_values: edgec::onnx::InputValues(self.input_values.clone()),
            weights: self.weights.clone(),
            weights_min_elements: self.weights_min_elements,
            compression_guard: self.weights_min_cosine.0.map(|min_cosine| CompressionGuard {
                min_cosine,
                inputs: self.calibration.clone(),
                seed: self.calibration_seed,
            }),
            verify_each_pass: false,
            gelu: match self.gelu {
                GeluArg::Exact => GeluChoice::Exact,
                GeluArg::Fast => GeluChoice::Fast,
                GeluArg::Auto => GeluChoice::Auto,
            },
            compute_units: self.compute_units.map(ComputeUnitsArg::units).unwrap_or_default(),
            pin_compute_units: self.pin_compute_units,
            require_ane: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GeluArg {
    Exact,
    Fast,
    Auto,
}

#[cfg(feature = "reference")]
#[derive(clap::Args)]
struct VerifyArgs {
    /// The ONNX model.
    model: PathBuf,
    /// The package to check; without it, MODEL is compiled (with the options below) first.
    package: Option<PathBuf>,
    /// Inputs from an .npz (keys are ONNX input names, optionally prefixed `input:`);
    /// without it, deterministic inputs are generated (normal floats, integers in 0..10 or below the table they index).
    #[arg(long = "inputs", value_name = "FILE.npz")]
    inputs_npz: Option<PathBuf>,
    /// Seed of the generated inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print nothing but errors; the exit status says whether the package matches.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    settings: CompileSettings,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    /// Apple devices through Core ML (Neural Engine, Metal GPU, CPU).
    Metal,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PrecisionArg {
    /// fp16 weights and compute (Core ML's default; needed for the Neural Engine), with
    /// ops whose constants fp16 cannot hold kept in fp32.
    Fp16,
    /// fp32 weights and compute.
    Fp32,
    /// fp16, plus the fewest ops in fp32 that keep every output at cosine >= 0.9999 against
    /// fp32 on calibration inputs (--calibration).
    Auto,
}

fn parse_target(s: &str) -> Result<DeploymentTarget, String> {
    s.parse()
}

fn parse_input_file(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => Ok((name.to_string(), PathBuf::from(file))),
        _ => Err(format!("{s:?} is not NAME=FILE.npy")),
    }
}

fn parse_input_value(s: &str) -> Result<(String, Vec<f64>), String> {
    let (name, values) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=V[,V...] (e.g. sr=16000)"))?;
    if name.is_empty() {
        return Err(format!("{s:?} names no input"));
    }
    let values = values
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("{s:?}: {v:?} is not a finite number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_string(), values))
}

fn parse_input_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=DIMS (e.g. input=1x3x224x224)"))?;
    let dims = dims
        .split(['x', 'X', ','])
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("{s:?}: dimension {d:?} is not a positive integer"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if name.is_empty() {
        return Err(format!("{s:?} names no input"));
    }
    Ok((name.to_string(), dims))
}

/// The exit status after SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: i32 = 130;

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`edgec inspect --mil | head`) ends edgec
    // quietly, as it does other Unix tools, instead of a panic on the failed write. A package
    // is written atomically, so none is left half-written.
    // SAFETY: setting a signal's disposition to its default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // An interrupted compile or verify removes its temporary folders; the package at the
    // output path is the old one or the new one, whole (src/temp.rs).
    let _ = ctrlc::set_handler(|| {
        edgec::temp::remove_all_live();
        eprintln!("\ninterrupted: temporary files removed, nothing half-written left");
        std::process::exit(EXIT_INTERRUPTED);
    });
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `--weights-min-cosine`: a bar in [0, 1], or `off`.
#[derive(Clone, Copy, Debug)]
struct MinCosine(Option<f64>);

fn parse_min_cosine(text: &str) -> Result<MinCosine, String> {
    if text == "off" {
        return Ok(MinCosine(None));
    }
    match text.parse::<f64>() {
        Ok(c) if (0.0..=1.0).contains(&c) => Ok(MinCosine(Some(c))),
        _ => Err(format!("{text:?} is not a cosine in [0, 1] or `off`")),
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<(), edgec::Error> {
    match cli.command {
        Command::Compile(args) => compile(args),
        Command::Analyze(args) => {
            let options = args.settings.options();
            let analysis = edgec::analyze::analyze(&args.model, &options.input_shapes, &options)?;
            print!("{}", analysis.to_text());
            match analysis.trial {
                edgec::analyze::TrialCompile::Failed(_) => Err(edgec::Error::Model {
                    path: args.model.clone(),
                    message: "the trial compile failed (above)".into(),
                }),
                _ => Ok(()),
            }
        }
        Command::Plan(args) => {
            let Some(input) = args.input.filter(|_| !args.rules) else {
                print!("{}", edgec::plan::report::rules_markdown());
                return Ok(());
            };
            let is_package = input.extension().is_some_and(|e| e == "mlpackage") || input.is_dir();
            let plan = if is_package {
                edgec::plan::plan_package(&input, args.settings.compute_units.map(ComputeUnitsArg::units))?
            } else {
                edgec::driver::plan_model(&input, &args.settings.options())?
            };
            if args.json {
                let json = edgec::plan::report::to_json(&plan);
                println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
            } else {
                print!("{}", edgec::plan::report::table(&plan));
                println!("{}", edgec::plan::report::summary(&plan));
            }
            Ok(())
        }
        Command::Inspect { package, names, mil } => {
            let pkg = inspect::read_package(&package)?;
            print!("{}", inspect::summary(&pkg, names, mil));
            if !mil {
                eprintln!("(--mil prints the program)");
            }
            Ok(())
        }
        Command::Run(args) => run_package(args),
        #[cfg(feature = "reference")]
        Command::Verify(args) => {
            let given = matches
                .subcommand_matches("verify")
                .map(|m| args.settings.given_on_command_line(m))
                .unwrap_or_default();
            verify(args, &given)
        }
    }
}

fn compile(args: CompileArgs) -> Result<(), edgec::Error> {
    let out = args.output.clone().unwrap_or_else(|| default_output(&args.model));
    let options = edgec::CompileOptions {
        require_ane: args.require_ane,
        ..args.settings.options()
    };
    if options.auto_precision.is_none() && options.weights.is_empty() && args.settings.calibration.is_some() {
        return Err(edgec::Error::Usage(
            "--calibration needs --precision auto or a --weights rule (the compression guard)".into(),
        ));
    }
    let status = Status::new(args.quiet);
    let report = edgec::driver::compile_with_progress(&args.model, &out, &options, &mut |p| status.progress(p));
    status.finish();
    let report = report?;
    if let Some(file) = &args.report {
        file.write(&edgec::report::Report::new(&args.model, &out, &options, &report))?;
    }
    if args.quiet {
        return Ok(());
    }
    if args.verbose {
        for s in &report.steps {
            eprintln!(
                "  {:<22} {:>9.3} ms  {:>6} nodes",
                s.name,
                s.duration.as_secs_f64() * 1e3,
                s.nodes_after
            );
        }
        for (what, count) in &report.rewrites {
            eprintln!("  rewrite: {what}: {count}");
        }
        for d in &report.precision_log {
            eprintln!("  precision: {d}");
        }
        for op in &report.package.fp32_ops {
            eprintln!("  fp32 op {} (node {:?}): {}", op.op, op.node, op.reason);
        }
    }
    print_calibration(&report);
    if args.verbose && !report.weights.is_empty() {
        eprint!("{}", edgec::compression::table(&report.weights));
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("  {}", edgec::compression::summary(&report.weights));
    if let Some(guard) = &report.compression_guard {
        eprintln!("  {}", edgec::compression_guard::summary(guard));
        if !guard.left_dense.is_empty() {
            eprintln!(
                "  (the bar is --weights-min-cosine {}: a lower one keeps more weights compressed, `off` skips the check)",
                guard.min_cosine
            );
        }
        if !guard.reached() {
            eprintln!(
                "warning: the compression guard could not bring every output to cosine {}",
                guard.min_cosine
            );
        }
    }
    if args.verbose {
        eprint!("{}", edgec::plan::report::table(&report.plan));
    }
    eprintln!("  {}", edgec::plan::report::summary(&report.plan));
    let total: f64 = report.steps.iter().map(|s| s.duration.as_secs_f64()).sum();
    eprintln!(
        "wrote {} ({}, {} of weights{}) in {:.2} s",
        out.display(),
        report.op_counts(),
        edgec::coreml::human_size(report.package.weight_bytes),
        precision_summary(&report, options.precision),
        total
    );
    if let Some(file) = &args.report {
        eprintln!("wrote report {}", file.path.display());
    }
    Ok(())
}

/// `; fp16: 2 ops in fp32, 3 range fixes` (empty for fp32 programs).
fn precision_summary(report: &edgec::CompileReport, precision: Precision) -> String {
    use edgec_passes::precision::PrecisionAction;
    if precision == Precision::Fp32 {
        return String::new();
    }
    let fixes = report
        .precision_log
        .iter()
        .filter(|d| d.action != PrecisionAction::KeptFp32)
        .count();
    let fp32 = report.package.fp32_ops.len();
    let hint = if fp32 + fixes > 0 { " (-v lists them)" } else { "" };
    format!("; fp16 with {fp32} op(s) in fp32, {fixes} range fix(es){hint}")
}

fn print_calibration(report: &edgec::CompileReport) {
    let Some(c) = &report.calibration else {
        return;
    };
    eprintln!("  calibration: {}", c.inputs);
    let verdict = if c.reached { "reached" } else { "NOT reached" };
    eprintln!(
        "  calibration: {} op(s) kept in fp32 after {} two-lane runs; target cosine >= {} {verdict}",
        c.calibrated_ops, c.runs, c.min_cosine
    );
    for ((name, before), (_, after)) in c.cosine_before.iter().zip(&c.cosine_package) {
        eprintln!("  calibration: output {name}: cosine vs fp32 {before:.6} all-fp16 -> {after:.7} in the package");
    }
    if !c.reached {
        eprintln!(
            "  calibration: the search stopped before every output reached the target; the package keeps what it found (consider --precision fp32)"
        );
    }
}

#[cfg(feature = "reference")]
fn verify(args: VerifyArgs, given: &[(&str, String)]) -> Result<(), edgec::Error> {
    let status = Status::new(args.quiet);
    // Compiling first goes to a private temporary folder, removed when `scratch` drops (on
    // errors too); a killed verify's folder is removed by the next run.
    let scratch = edgec::driver::Scratch::new("verify");
    let package = match &args.package {
        Some(p) => {
            for warning in edgec::verify::package_mismatches(&args.model, p, given)? {
                status.line(&format!("warning: {warning}"));
            }
            p.clone()
        }
        None => {
            let p = scratch.0.join("model.mlpackage");
            let compiled = edgec::driver::compile_with_progress(&args.model, &p, &args.settings.options(), &mut |e| {
                status.progress(e)
            });
            compiled?;
            p
        }
    };
    let result = verify_package(&args, &package, &status);
    status.finish();
    result
}

#[cfg(feature = "reference")]
fn verify_package(args: &VerifyArgs, package: &std::path::Path, status: &Status) -> Result<(), edgec::Error> {
    use edgec::verify;
    let (inputs, described) = match &args.inputs_npz {
        Some(npz) => (
            npy::read_npz(npz)?
                .into_iter()
                .filter(|(k, _)| !k.starts_with("output:"))
                .map(|(k, a)| (k.strip_prefix("input:").unwrap_or(&k).to_string(), a))
                .collect(),
            format!("from {}", npz.display()),
        ),
        None => (
            verify::deterministic_inputs(package, args.seed)?,
            format!(
                "generated (seed {}: normal floats; integers in 0..{} or below the table they index)",
                args.seed,
                verify::GENERATED_INT_LIMIT
            ),
        ),
    };
    status.progress(edgec::Progress::Stage("run the package and the ONNX reference"));
    let precision = verify::package_precision(package)?;
    let results = verify::verify(&args.model, package, &inputs)?;
    let criterion = match precision {
        Precision::Fp32 => format!(
            "fp32: max abs error <= {:e} x max |reference|",
            verify::FP32_MAX_RELATIVE_ERROR
        ),
        Precision::Fp16 => format!("fp16 (rounded like a device): cosine >= {}", verify::FP16_MIN_COSINE),
    };
    let failed = results.iter().filter(|r| !r.pass).count();
    if !args.quiet {
        status.suspend(|| {
            println!(
                "{:<32} {:>13} {:>13} {:>12}  result",
                "output", "max abs err", "max rel err", "cosine"
            );
            for r in &results {
                println!(
                    "{:<32} {:>13.3e} {:>13.3e} {:>12.9}  {}",
                    r.name,
                    r.max_abs_error,
                    r.max_relative_error,
                    r.cosine,
                    if r.pass { "PASS" } else { "FAIL" }
                );
            }
            println!("inputs: {described}");
            println!("criterion: {criterion}");
        });
        if failed > 0 && precision == Precision::Fp16 {
            status.progress(edgec::Progress::Stage("locate where fp16 departs"));
            let located = verify::locate_fp16_divergence(&args.model, package, &inputs);
            status.suspend(|| match located {
                Ok(Some(point)) => println!("{point}"),
                Ok(None) => println!("fp16 emulation shows no op departing from fp32 on these inputs"),
                Err(e) => println!("could not locate where fp16 departs: {e}"),
            });
        }
    }
    if failed > 0 {
        return Err(edgec::Error::VerifyFailed {
            package: package.to_path_buf(),
            failed,
            total: results.len(),
        });
    }
    Ok(())
}

fn run_package(args: RunArgs) -> Result<(), edgec::Error> {
    let mut inputs: Vec<(String, NdArray)> = Vec::new();
    if let Some(npz) = &args.inputs_npz {
        for (key, array) in npy::read_npz(npz)? {
            if key.starts_with("output:") {
                continue;
            }
            let name = key.strip_prefix("input:").unwrap_or(&key).to_string();
            inputs.push((name, array));
        }
    }
    for (name, file) in &args.inputs {
        let array = npy::read_npy(file)?;
        // A file given by name replaces the same input from the archive.
        inputs.retain(|(n, _)| n != name);
        inputs.push((name.clone(), array));
    }
    let options = InterpOptions {
        fp16_rounding: args.fp16_rounding,
    };
    let start = Instant::now();
    let outputs = interp::run_package(&args.package, &inputs, &options)?;
    let elapsed = start.elapsed();
    if args.verbose {
        eprintln!("ran {} in {:.3} s", args.package.display(), elapsed.as_secs_f64());
    }
    let status = |line: String| {
        if !args.quiet {
            eprintln!("{line}");
        }
    };
    let extension = |path: &std::path::Path| {
        path.extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
    };
    match &args.output {
        Some(out) if extension(out) == "npz" => {
            npy::write_npz(out, &outputs)?;
            status(format!("wrote {} output(s) to {}", outputs.len(), out.display()));
        }
        Some(out) if extension(out) == "npy" => match outputs.as_slice() {
            [(_, array)] => {
                npy::write_npy(out, array)?;
                status(format!("wrote 1 output to {}", out.display()));
            }
            _ => {
                return Err(edgec::Error::Usage(format!(
                    "-o {}: a .npy file holds one array, and the model has {} outputs; use a .npz file or a folder",
                    out.display(),
                    outputs.len()
                )))
            }
        },
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| edgec::Error::Io {
                path: dir.clone(),
                source,
            })?;
            for (name, array) in &outputs {
                npy::write_npy(&dir.join(format!("{name}.npy")), array)?;
            }
            status(format!("wrote {} output(s) to {}", outputs.len(), dir.display()));
        }
        None => {
            for (name, array) in &outputs {
                let values = array.data.to_f64_vec();
                let (min, max, sum) = values
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY, 0.0), |(lo, hi, s), &v| {
                        (lo.min(v), hi.max(v), s + v)
                    });
                let mean = if values.is_empty() {
                    f64::NAN
                } else {
                    sum / values.len() as f64
                };
                println!(
                    "{name}: {} {:?}  min {min:.6}  max {max:.6}  mean {mean:.6}",
                    array.data.dtype_name(),
                    array.shape
                );
            }
            if !args.verbose {
                status(format!("ran in {:.3} s", elapsed.as_secs_f64()));
            }
        }
    }
    Ok(())
}
