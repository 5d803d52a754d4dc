//! The `edgec` command line.

use clap::{Parser, Subcommand, ValueEnum};
use edgec::coreml::inspect;
use edgec::driver::{default_output, Target};
use edgec::interp::{self, InterpOptions, NdArray};
use edgec::npy;
use edgec::onnx::InputShapes;
use edgec::{AutoPrecision, CompileOptions, DeploymentTarget, Precision};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "edgec", version, about = "Compile ONNX models into Core ML ML Program packages (.mlpackage)", long_about = None)]
struct Cli {
    /// Show the passes run, with timings and node counts.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile an ONNX model into an .mlpackage.
    Compile(CompileArgs),
    /// Report what a model needs before compiling: op types (supported or not), dynamic input
    /// dims and the --input-shape values that fix them, weights; with static shapes, a trial
    /// compile shows how many nodes of each op type remain as ops after folding and fusion.
    Analyze(AnalyzeArgs),
    /// Print a summary of a package and its MIL program.
    Inspect {
        /// The .mlpackage to read.
        package: PathBuf,
        /// Also list every ONNX name and the MIL name it became.
        #[arg(long)]
        names: bool,
    },
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
    /// Where to write the outputs: a FILE.npz, or a directory that gets one NAME.npy per output.
    /// Without it, a summary of each output is printed.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Round every fp16 value through IEEE half, as a device computing in fp16 would.
    #[arg(long)]
    fp16_rounding: bool,
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
    /// With --precision auto: calibration inputs (.npz, keys = ONNX input names, as `run`
    /// takes them). Without it, inputs are generated from the input types.
    #[arg(long, value_name = "FILE.npz")]
    calibration: Option<PathBuf>,
    /// With --precision auto and no --calibration: the seed of the generated inputs.
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
    /// Fix an input's shape, e.g. input=1x3x224x224 (repeatable); needed for dynamic dims.
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    input_shapes: Vec<(String, Vec<usize>)>,
}

impl CompileSettings {
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
            weights: self.weights.clone(),
            weights_min_elements: self.weights_min_elements,
            verify_each_pass: false,
        }
    }
}

#[cfg(feature = "reference")]
#[derive(clap::Args)]
struct VerifyArgs {
    /// The ONNX model.
    model: PathBuf,
    /// The package to check; without it, MODEL is compiled (with the options below) first.
    package: Option<PathBuf>,
    /// Inputs from an .npz (keys are ONNX input names, optionally prefixed `input:`);
    /// without it, deterministic inputs are generated (normal floats, integers in 0..10).
    #[arg(long = "inputs", value_name = "FILE.npz")]
    inputs_npz: Option<PathBuf>,
    /// Seed of the generated inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), edgec::Error> {
    match cli.command {
        Command::Compile(args) => {
            let out = args.output.clone().unwrap_or_else(|| default_output(&args.model));
            let options = args.settings.options();
            if options.auto_precision.is_none() && args.settings.calibration.is_some() {
                return Err(edgec::Error::Usage("--calibration needs --precision auto".into()));
            }
            let report =
                edgec::driver::compile_with_progress(&args.model, &out, &options, &mut |m| eprintln!("  {m}"))?;
            if cli.verbose {
                for s in &report.steps {
                    eprintln!(
                        "  {:<22} {:>9.3} ms  {:>6} nodes",
                        s.name,
                        s.duration.as_secs_f64() * 1e3,
                        s.nodes_after
                    );
                }
                for d in &report.precision_log {
                    eprintln!("  precision: {d}");
                }
                for op in &report.package.fp32_ops {
                    eprintln!("  fp32 op {} (node {:?}): {}", op.op, op.node, op.reason);
                }
            }
            print_calibration(&report);
            if cli.verbose && !report.weights.is_empty() {
                eprint!("{}", edgec::compression::table(&report.weights));
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("  {}", edgec::compression::summary(&report.weights));
            let total: f64 = report.steps.iter().map(|s| s.duration.as_secs_f64()).sum();
            eprintln!(
                "wrote {} ({} ONNX nodes -> {} MIL ops, {} weight bytes{}) in {:.2} s",
                out.display(),
                report.onnx_nodes,
                report.package.mil_ops,
                report.package.weight_bytes,
                precision_summary(&report, options.precision),
                total
            );
            Ok(())
        }
        Command::Analyze(args) => {
            let options = args.settings.options();
            let analysis = edgec::analyze::analyze(&args.model, &options.input_shapes, &options)?;
            print!("{}", analysis.to_text());
            Ok(())
        }
        Command::Inspect { package, names } => {
            let pkg = inspect::read_package(&package)?;
            print!("{}", inspect::summary(&pkg, names));
            Ok(())
        }
        Command::Run(args) => run_package(args, cli.verbose),
        #[cfg(feature = "reference")]
        Command::Verify(args) => verify(args),
    }
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
fn verify(args: VerifyArgs) -> Result<(), edgec::Error> {
    // Compiling first goes to a private temporary folder, removed afterwards.
    let scratch = std::env::temp_dir().join(format!("edgec-verify-{}", std::process::id()));
    let package = match &args.package {
        Some(p) => p.clone(),
        None => {
            let p = scratch.join("model.mlpackage");
            edgec::compile(&args.model, &p, &args.settings.options())?;
            p
        }
    };
    let result = verify_package(&args, &package);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

#[cfg(feature = "reference")]
fn verify_package(args: &VerifyArgs, package: &std::path::Path) -> Result<(), edgec::Error> {
    use edgec::verify;
    let inputs = match &args.inputs_npz {
        Some(npz) => npy::read_npz(npz)?
            .into_iter()
            .filter(|(k, _)| !k.starts_with("output:"))
            .map(|(k, a)| (k.strip_prefix("input:").unwrap_or(&k).to_string(), a))
            .collect(),
        None => verify::deterministic_inputs(package, args.seed)?,
    };
    let precision = verify::package_precision(package)?;
    let results = verify::verify(&args.model, package, &inputs)?;
    let criterion = match precision {
        Precision::Fp32 => format!(
            "fp32: max abs error <= {:e} x max |reference|",
            verify::FP32_MAX_RELATIVE_ERROR
        ),
        Precision::Fp16 => format!("fp16 (rounded like a device): cosine >= {}", verify::FP16_MIN_COSINE),
    };
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
    println!("criterion: {criterion}");
    let failed = results.iter().filter(|r| !r.pass).count();
    if failed > 0 && precision == Precision::Fp16 {
        match verify::locate_fp16_divergence(&args.model, package, &inputs) {
            Ok(Some(point)) => println!("{point}"),
            Ok(None) => println!("fp16 emulation shows no op departing from fp32 on these inputs"),
            Err(e) => println!("could not locate where fp16 departs: {e}"),
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

fn run_package(args: RunArgs, verbose: bool) -> Result<(), edgec::Error> {
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
    if verbose {
        eprintln!("ran {} in {:.3} s", args.package.display(), elapsed.as_secs_f64());
    }
    match &args.output {
        Some(out) if out.extension().is_some_and(|e| e == "npz") => {
            npy::write_npz(out, &outputs)?;
            eprintln!("wrote {} output(s) to {}", outputs.len(), out.display());
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| edgec::Error::Io {
                path: dir.clone(),
                source,
            })?;
            for (name, array) in &outputs {
                npy::write_npy(&dir.join(format!("{name}.npy")), array)?;
            }
            eprintln!("wrote {} output(s) to {}", outputs.len(), dir.display());
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
            eprintln!("ran in {:.3} s", elapsed.as_secs_f64());
        }
    }
    Ok(())
}
