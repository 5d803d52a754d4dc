//! The `edgec` command line.

use clap::{Parser, Subcommand, ValueEnum};
use edgec::coreml::inspect;
use edgec::driver::{default_output, Target};
use edgec::onnx::InputShapes;
use edgec::{CompileOptions, DeploymentTarget, Precision};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Print a summary of a package and its MIL program.
    Inspect {
        /// The .mlpackage to read.
        package: PathBuf,
        /// Also list every ONNX name and the MIL name it became.
        #[arg(long)]
        names: bool,
    },
}

#[derive(clap::Args)]
struct CompileArgs {
    /// The ONNX model (its external data files must sit in the same folder or below).
    model: PathBuf,
    /// Hardware family to compile for.
    #[arg(long, value_enum, default_value_t = TargetArg::Metal)]
    target: TargetArg,
    /// Output package [default: MODEL with the extension .mlpackage].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Oldest OS the package must load on: ios15..ios18 (or macos12..macos15).
    #[arg(long, default_value = "ios16", value_parser = parse_target)]
    deployment_target: DeploymentTarget,
    /// Weight and compute precision; inputs and outputs stay fp32 either way.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Fp16)]
    precision: PrecisionArg,
    /// Fix an input's shape, e.g. input=1x3x224x224 (repeatable); needed for dynamic dims.
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    input_shapes: Vec<(String, Vec<usize>)>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    /// Apple devices through Core ML (Neural Engine, Metal GPU, CPU).
    Metal,
}

#[derive(Clone, Copy, ValueEnum)]
enum PrecisionArg {
    /// fp16 weights and compute (Core ML's default; needed for the Neural Engine).
    Fp16,
    /// fp32 weights and compute.
    Fp32,
}

fn parse_target(s: &str) -> Result<DeploymentTarget, String> {
    s.parse()
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
            let options = CompileOptions {
                target: match args.target {
                    TargetArg::Metal => Target::Metal,
                },
                deployment_target: args.deployment_target,
                precision: match args.precision {
                    PrecisionArg::Fp16 => Precision::Fp16,
                    PrecisionArg::Fp32 => Precision::Fp32,
                },
                input_shapes: InputShapes(args.input_shapes),
                verify_each_pass: false,
            };
            let report = edgec::compile(&args.model, &out, &options)?;
            if cli.verbose {
                for s in &report.steps {
                    eprintln!(
                        "  {:<22} {:>9.3} ms  {:>6} nodes",
                        s.name,
                        s.duration.as_secs_f64() * 1e3,
                        s.nodes_after
                    );
                }
            }
            let total: f64 = report.steps.iter().map(|s| s.duration.as_secs_f64()).sum();
            eprintln!(
                "wrote {} ({} ONNX nodes -> {} MIL ops, {} weight bytes) in {:.2} s",
                out.display(),
                report.onnx_nodes,
                report.package.mil_ops,
                report.package.weight_bytes,
                total
            );
            Ok(())
        }
        Command::Inspect { package, names } => {
            let pkg = inspect::read_package(&package)?;
            print!("{}", inspect::summary(&pkg, names));
            Ok(())
        }
    }
}
