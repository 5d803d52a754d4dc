//! [`Build`]: compiling a model from a Cargo build script, in the style of `cc` and
//! `prost-build`. It owns what a build script owes Cargo: where the package goes (`OUT_DIR`),
//! when to run again (`rerun-if-changed`, `rerun-if-env-changed`), what to tell the user
//! (`warning`) and how the crate finds the package (`rustc-env`).
//!
//! ```no_run
//! // build.rs, in `fn main()`:
//! edgec::Build::new("models/detector.onnx")
//!     .input_shape("image", [1, 3, 640, 640])
//!     .weights("palettize:4:g16")
//!     .deployment_target(edgec::DeploymentTarget::Ios18)
//!     .compile();
//! ```
//!
//! The crate then finds the package with `env!("EDGEC_DETECTOR_MLPACKAGE")`.
//!
//! # Fast build scripts
//!
//! Cargo builds build scripts and their dependencies without optimisation, and edgec compiles
//! models many times slower so (GPT-2: 32 s against 9 s for the release CLI; a 100 MB MLP:
//! 15 s against 1 s). Optimise them in the Cargo.toml of the workspace root (Cargo ignores
//! profiles anywhere else); the first build then takes longer, as proc macros are optimised too
//! (about 165 CPU-seconds more for edgec's, docs/performance.md):
//!
//! ```toml
//! [profile.dev.build-override]
//! opt-level = 3
//!
//! [profile.release.build-override]
//! opt-level = 3
//! ```
//!
//! Depend on edgec with `default-features = false`: neither the `cli` feature (the command
//! line) nor `reference` (the ONNX runtime `edgec verify` compares with, the longest to build)
//! is needed to compile.

// The examples are build scripts, whose `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

use crate::compression::{self, WeightRule};
use crate::coreml::DeploymentTarget;
use crate::driver::{self, AutoPrecision, CompileOptions, CompileReport};
use crate::error::{Error, Result};
use crate::onnx::InputShapes;
use crate::plan::{ComputeUnits, Unit};
use edgec_passes::pass::GeluChoice;
use edgec_passes::Precision;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every `EDGEC_*` environment variable the library reads; a build script reruns when one
/// changes.
pub const ENV_VARS: &[&str] = &[crate::interp::PROFILE_ENV];

/// How many items a warning names before it says how many more there are.
const LISTED: usize = 5;

/// Compiles one ONNX model into an `.mlpackage` from a build script.
///
/// Settings default to the CLI's (`edgec compile MODEL`): iOS 16, fp16, dense weights with the
/// compression guard at 0.999, every compute unit. Each setter returns the builder, so calls
/// chain; nothing is read or checked until [`try_compile`](Build::try_compile).
///
/// Under Cargo (`OUT_DIR` and `CARGO` set, as in every build script), compiling prints:
///
/// - `cargo:rerun-if-changed=` for the model, each external data file it references and the
///   calibration inputs, and `cargo:rerun-if-env-changed=` for each of [`ENV_VARS`];
/// - `cargo:warning=` for what the user should know: weights rules that select nothing or
///   weights they could not compress, what the compression guard left dense or could not
///   reach, ops kept in fp32, ops predicted off the Neural Engine (summarised by op type);
/// - `cargo:rustc-env=EDGEC_<NAME>_MLPACKAGE=<absolute path>`, NAME being the package name
///   upper-cased with every other character than A-Z and 0-9 made `_`.
///
/// Elsewhere (a test, a tool) it prints nothing unless [`cargo_metadata(true)`] asks, and the
/// same facts are in the [`BuildOutput`].
///
/// ```
/// # fn main() -> Result<(), edgec::Error> {
/// # let out_dir = std::env::temp_dir().join(format!("edgec-doc-{}", std::process::id()));
/// let output = edgec::Build::new("testdata/models/tiny_cnn.onnx")
///     .name("classifier")
///     .precision(edgec::Precision::Fp32)
///     .compute_units(edgec::ComputeUnits::CpuAndNeuralEngine)
///     .out_dir(&out_dir)
///     .try_compile()?;
/// assert!(output.package.ends_with("classifier.mlpackage"));
/// assert_eq!(output.env_var, "EDGEC_CLASSIFIER_MLPACKAGE");
/// assert!(output.package.join("Manifest.json").is_file());
/// # std::fs::remove_dir_all(&out_dir).ok();
/// # Ok(())
/// # }
/// ```
///
/// [`cargo_metadata(true)`]: Build::cargo_metadata
#[derive(Clone, Debug)]
pub struct Build {
    model: PathBuf,
    name: Option<String>,
    out_dir: Option<PathBuf>,
    options: CompileOptions,
    weights: Vec<WeightsRule>,
    input_shapes: Vec<(String, Vec<usize>)>,
    auto_precision: bool,
    calibration: Option<PathBuf>,
    calibration_seed: u64,
    weights_min_cosine: Option<f64>,
    cargo_metadata: Option<bool>,
}

/// One weights rule as [`Build::weights`] takes it: typed, or in the CLI's `[SELECTOR=]SCHEME`
/// words (`"palettize:4:g16"`, `"embedding=int8"`), parsed when the build runs so a typo fails
/// it with the CLI's message.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightsRule {
    Rule(WeightRule),
    Text(String),
}

impl From<WeightRule> for WeightsRule {
    fn from(rule: WeightRule) -> Self {
        WeightsRule::Rule(rule)
    }
}

impl From<&str> for WeightsRule {
    fn from(text: &str) -> Self {
        WeightsRule::Text(text.to_string())
    }
}

impl From<String> for WeightsRule {
    fn from(text: String) -> Self {
        WeightsRule::Text(text)
    }
}

impl WeightsRule {
    fn parse(&self) -> Result<WeightRule> {
        match self {
            WeightsRule::Rule(rule) => Ok(rule.clone()),
            WeightsRule::Text(text) => {
                compression::parse_rule(text).map_err(|e| Error::Usage(format!("weights rule {text:?}: {e}")))
            }
        }
    }
}

/// What [`Build::try_compile`] wrote and found.
#[derive(Clone, Debug)]
pub struct BuildOutput {
    /// The package, as an absolute path.
    pub package: PathBuf,
    /// The environment variable the crate reads the package's path from, e.g.
    /// `EDGEC_DETECTOR_MLPACKAGE`.
    pub env_var: String,
    /// The files a change to which should rerun the build: the model, its external data files,
    /// the calibration inputs.
    pub watched_files: Vec<PathBuf>,
    /// What the user should know about the package, one message each (see [`Build`]).
    pub warnings: Vec<String>,
    /// Everything the compile measured.
    pub report: CompileReport,
}

impl BuildOutput {
    /// The `cargo:` lines a build script prints for this package.
    pub fn cargo_lines(&self) -> Vec<String> {
        let files = self
            .watched_files
            .iter()
            .map(|f| format!("cargo:rerun-if-changed={}", f.display()));
        let vars = ENV_VARS.iter().map(|v| format!("cargo:rerun-if-env-changed={v}"));
        // `cargo:warning` takes one line; the model's name tells which of several builds spoke.
        let model = self
            .watched_files
            .first()
            .and_then(|m| m.file_name())
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        let warnings = self
            .warnings
            .iter()
            .flat_map(|w| w.lines())
            .map(|line| format!("cargo:warning=edgec: {model}: {line}"));
        let env = format!("cargo:rustc-env={}={}", self.env_var, self.package.display());
        files.chain(vars).chain(warnings).chain([env]).collect()
    }
}

impl Build {
    /// A build of the ONNX model at `model` (relative paths are from the crate's folder, where
    /// Cargo runs build scripts).
    pub fn new(model: impl AsRef<Path>) -> Build {
        Build {
            model: model.as_ref().to_path_buf(),
            name: None,
            out_dir: None,
            options: CompileOptions::default(),
            weights: Vec::new(),
            input_shapes: Vec::new(),
            auto_precision: false,
            calibration: None,
            calibration_seed: 0,
            weights_min_cosine: Some(crate::compression_guard::DEFAULT_MIN_COSINE),
            cargo_metadata: None,
        }
    }

    /// The package's name: `NAME.mlpackage`, read through `EDGEC_<NAME>_MLPACKAGE` [default:
    /// the model's file name without its extension].
    pub fn name(&mut self, name: impl Into<String>) -> &mut Build {
        self.name = Some(name.into());
        self
    }

    /// Where the package is written [default: `OUT_DIR`, which Cargo sets for build scripts].
    pub fn out_dir(&mut self, dir: impl AsRef<Path>) -> &mut Build {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The oldest OS the package must load on (`--deployment-target`) [default: iOS 16].
    pub fn deployment_target(&mut self, target: DeploymentTarget) -> &mut Build {
        self.options.deployment_target = target;
        self
    }

    /// Weight and compute precision (`--precision fp16|fp32`) [default: fp16].
    pub fn precision(&mut self, precision: Precision) -> &mut Build {
        self.options.precision = precision;
        self
    }

    /// `--precision auto`: fp16, with the fewest ops in fp32 that keep every output at cosine
    /// 0.9999 against fp32 on the [`calibration`](Build::calibration) inputs (or generated
    /// ones). Implies fp16.
    pub fn auto_precision(&mut self, on: bool) -> &mut Build {
        self.auto_precision = on;
        self
    }

    /// Calibration inputs (`.npz`, keys = ONNX input names) for
    /// [`auto_precision`](Build::auto_precision) and the compression guard (`--calibration`).
    pub fn calibration(&mut self, inputs: impl AsRef<Path>) -> &mut Build {
        self.calibration = Some(inputs.as_ref().to_path_buf());
        self
    }

    /// Without [`calibration`](Build::calibration) inputs: the seed of the generated ones.
    pub fn calibration_seed(&mut self, seed: u64) -> &mut Build {
        self.calibration_seed = seed;
        self
    }

    /// Fix an input's shape (`--input-shape`), needed for dynamic dims:
    /// `.input_shape("image", [1, 3, 640, 640])`.
    pub fn input_shape(&mut self, input: impl Into<String>, dims: impl IntoIterator<Item = usize>) -> &mut Build {
        self.input_shapes.push((input.into(), dims.into_iter().collect()));
        self
    }

    /// Add a weights rule (`--weights`; a later rule wins for the weights it selects), typed or
    /// as the CLI writes it: `.weights("palettize:4:g16").weights("embedding=int8")`.
    pub fn weights(&mut self, rule: impl Into<WeightsRule>) -> &mut Build {
        self.weights.push(rule.into());
        self
    }

    /// Weights with at most this many elements stay dense (`--weights-min-elements`) [default:
    /// 2048].
    pub fn weights_min_elements(&mut self, elements: usize) -> &mut Build {
        self.options.weights_min_elements = elements;
        self
    }

    /// The compression guard's bar (`--weights-min-cosine`), or `None` to skip the guard
    /// [default: 0.999].
    pub fn weights_min_cosine(&mut self, min_cosine: impl Into<Option<f64>>) -> &mut Build {
        self.weights_min_cosine = min_cosine.into();
        self
    }

    /// The GELU formula (`--gelu`) [default: auto].
    pub fn gelu(&mut self, gelu: GeluChoice) -> &mut Build {
        self.options.gelu = gelu;
        self
    }

    /// The units the app lets Core ML use (`--compute-units`): the plan uses only these, and
    /// the package records them [default: all].
    pub fn compute_units(&mut self, units: ComputeUnits) -> &mut Build {
        self.options.compute_units = units;
        self
    }

    /// Write each op's predicted unit into the program (`--pin-compute-units`).
    pub fn pin_compute_units(&mut self, on: bool) -> &mut Build {
        self.options.pin_compute_units = on;
        self
    }

    /// Fail, writing nothing, when any op is predicted off the Neural Engine (`--require-ane`).
    pub fn require_ane(&mut self, on: bool) -> &mut Build {
        self.options.require_ane = on;
        self
    }

    /// Print the `cargo:` lines or not [default: only under Cargo, where `OUT_DIR` and `CARGO`
    /// are set].
    pub fn cargo_metadata(&mut self, on: bool) -> &mut Build {
        self.cargo_metadata = Some(on);
        self
    }

    /// Compile the model; on failure, panic with the error's message (a build script's way to
    /// fail the build).
    #[track_caller]
    pub fn compile(&self) -> BuildOutput {
        match self.try_compile() {
            Ok(output) => output,
            Err(e) => panic!("edgec: {e}"),
        }
    }

    /// Compile the model, print the `cargo:` lines (see [`Build`]) and say what was done.
    pub fn try_compile(&self) -> Result<BuildOutput> {
        let options = self.compile_options()?;
        let (package, env_var) = self.destination()?;
        let cargo = self.cargo_metadata.unwrap_or_else(under_cargo);
        // Cargo keeps a build script's other stdout lines in its output file (`cargo build
        // -vv` shows them), so progress and the summary go there, never to a terminal.
        let say = |message: &str| {
            if cargo {
                println!("edgec: {message}");
            }
        };
        let mut notes = |progress: crate::Progress<'_>| {
            if let crate::Progress::Note(note) = progress {
                say(note);
            }
        };
        let report = driver::compile_with_progress(&self.model, &package, &options, &mut notes)?;
        let watched_files = std::iter::once(self.model.clone())
            .chain(report.external_data.iter().cloned())
            .chain(self.calibration.iter().cloned())
            .collect();
        let output = BuildOutput {
            warnings: warnings(&self.model, &report, &options),
            package,
            env_var,
            watched_files,
            report,
        };
        if cargo {
            say(&format!(
                "wrote {} ({}, {} of weights)",
                output.package.display(),
                output.report.op_counts(),
                crate::coreml::human_size(output.report.package.weight_bytes)
            ));
            for line in output.cargo_lines() {
                println!("{line}");
            }
        }
        Ok(output)
    }

    /// The [`CompileOptions`] the settings amount to, checked as the CLI checks its flags.
    pub fn compile_options(&self) -> Result<CompileOptions> {
        let weights = self
            .weights
            .iter()
            .map(WeightsRule::parse)
            .collect::<Result<Vec<_>>>()?;
        if self.calibration.is_some() && !self.auto_precision && weights.is_empty() {
            return Err(Error::Usage(
                "calibration inputs need auto_precision or a weights rule (the compression guard)".into(),
            ));
        }
        for (i, (input, _)) in self.input_shapes.iter().enumerate() {
            if self.input_shapes[..i].iter().any(|(seen, _)| seen == input) {
                return Err(Error::Usage(format!("input_shape: {input:?} is given twice")));
            }
        }
        Ok(CompileOptions {
            precision: if self.auto_precision {
                Precision::Fp16
            } else {
                self.options.precision
            },
            auto_precision: self.auto_precision.then(|| AutoPrecision {
                calibration: self.calibration.clone(),
                seed: self.calibration_seed,
                ..AutoPrecision::default()
            }),
            input_shapes: InputShapes(self.input_shapes.clone()),
            weights,
            compression_guard: self
                .weights_min_cosine
                .map(|min_cosine| crate::compression_guard::CompressionGuard {
                    min_cosine,
                    inputs: self.calibration.clone(),
                    seed: self.calibration_seed,
                }),
            ..self.options.clone()
        })
    }

    /// The package's absolute path and the variable that exports it.
    fn destination(&self) -> Result<(PathBuf, String)> {
        let name = match &self.name {
            Some(name) => name.strip_suffix(".mlpackage").unwrap_or(name).to_string(),
            None => self
                .model
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
            return Err(Error::Usage(format!(
                "{name:?} cannot name a package: give a plain file name with .name(..)"
            )));
        }
        let dir = match (&self.out_dir, std::env::var_os("OUT_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => return Err(Error::Usage(
                "no output folder: OUT_DIR is not set (edgec::Build runs in build scripts); give one with .out_dir(..)"
                    .into(),
            )),
        };
        let package = dir.join(format!("{name}.mlpackage"));
        let package = std::path::absolute(&package).map_err(|source| Error::Io { path: package, source })?;
        Ok((package, env_var_name(&name)))
    }
}

/// Whether this process is a build script Cargo runs.
fn under_cargo() -> bool {
    std::env::var_os("OUT_DIR").is_some() && std::env::var_os("CARGO").is_some()
}

/// `EDGEC_<NAME>_MLPACKAGE`: the name upper-cased, anything but ASCII letters and digits `_`.
pub fn env_var_name(package_name: &str) -> String {
    let name: String = package_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("EDGEC_{name}_MLPACKAGE")
}

/// What the user should know about a compile, one message per finding, each list cut short.
pub fn warnings(model: &Path, report: &CompileReport, options: &CompileOptions) -> Vec<String> {
    let mut warnings = report.warnings.clone();
    let guarded: &[String] = report.compression_guard.as_ref().map_or(&[], |g| &g.left_dense);
    let skipped: Vec<String> =
        compression::skipped_weights(&options.weights, &report.weights, options.weights_min_elements)
            .into_iter()
            .filter(|row| !guarded.contains(&row.name))
            .map(|row| format!("{} ({})", row.name, row.note))
            .collect();
    if !skipped.is_empty() {
        warnings.push(format!(
            "{} weight(s) a weights rule compresses stayed dense: {}",
            skipped.len(),
            listed(&skipped, "; ")
        ));
    }
    if let Some(guard) = &report.compression_guard {
        if !guard.left_dense.is_empty() {
            warnings.push(crate::compression_guard::summary(guard));
        }
        if !guard.reached() {
            warnings.push(format!(
                "the compression guard could not bring every output to cosine {} (a lower weights_min_cosine keeps more weights compressed)",
                guard.min_cosine
            ));
        }
    }
    if let Some(calibration) = report.calibration.as_ref().filter(|c| !c.reached) {
        warnings.push(format!(
            "calibration stopped before every output reached cosine {} against fp32; the package keeps the {} op(s) in fp32 it found",
            calibration.min_cosine, calibration.calibrated_ops
        ));
    }
    let fp32: Vec<String> = report
        .package
        .fp32_ops
        .iter()
        .map(|op| format!("{} (node {:?}): {}", op.op, op.node, op.reason))
        .collect();
    if !fp32.is_empty() {
        warnings.push(format!(
            "{} op(s) compute in fp32 in the fp16 program: {}",
            fp32.len(),
            listed(&fp32, "; ")
        ));
    }
    let off_ane: Vec<_> = report.plan.off_ane().collect();
    if options.compute_units.units().contains(&Unit::Ane) && !off_ane.is_empty() {
        let types = counted(off_ane.iter().map(|op| op.op_type.as_str()));
        let rules = counted(off_ane.iter().flat_map(|op| op.reasons.iter().map(|r| r.rule)));
        warnings.push(format!(
            "{} of {} ops, {:.1}% of the estimated cost, are predicted off the Neural Engine ({}; rules {}); `edgec plan {}` gives each op's reasons",
            off_ane.len(),
            report.plan.summary.ops,
            100.0 * (1.0 - report.plan.summary.share_on(Unit::Ane)),
            listed(&types, ", "),
            listed(&rules, ", "),
            model.display()
        ));
    }
    warnings
}

/// `conv x3, add x1`: each distinct item with its count, the most frequent first.
fn counted<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
    counts.iter().map(|(item, n)| format!("{item} x{n}")).collect()
}

/// The first [`LISTED`] items joined by `separator`, and how many more there are.
fn listed(items: &[String], separator: &str) -> String {
    let mut text = items.iter().take(LISTED).cloned().collect::<Vec<_>>().join(separator);
    if items.len() > LISTED {
        text.push_str(&format!("{separator}and {} more", items.len() - LISTED));
    }
    text
}

#[cfg(test)]
mod tests;
