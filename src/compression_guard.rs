//! The compression guard: compression never silently changes what a model computes.
//!
//! After `compress_weights`, the guard runs the compressed program and the same program with
//! every weight dense on the same inputs (edgec's interpreter, rounding to fp16 as a device does
//! in an fp16 program) and compares each output by cosine. When one falls below the bar, it
//! ranks the compressed weights by SNR, worst first, and bisects for the shortest prefix of that
//! ranking that, left dense, brings every output back to the bar (assuming that leaving more
//! weights dense never hurts, which makes the search ⌈log₂ n⌉ runs). The weights it leaves dense
//! say so in the report, and the compile prints the cosines before and after.

use crate::error::Result;
use crate::interp::{run_package, InterpOptions, NdArray};
use edgec_passes::compressed::Scheme;
use edgec_passes::{Graph, Precision, ValueId};
use std::path::{Path, PathBuf};

/// The default bar: 8-bit palettization and int8 reach it on every corpus model once the guard
/// has acted (docs/compression.md).
pub const DEFAULT_MIN_COSINE: f64 = 0.999;

/// `--weights-min-cosine` and the inputs the guard measures on.
#[derive(Clone, Debug)]
pub struct CompressionGuard {
    /// Every output's cosine against the dense-weight program must reach this.
    pub min_cosine: f64,
    /// Inputs keyed by ONNX input name (`--calibration`); without them, generated from `seed`.
    pub inputs: Option<PathBuf>,
    pub seed: u64,
}

impl Default for CompressionGuard {
    fn default() -> Self {
        CompressionGuard {
            min_cosine: DEFAULT_MIN_COSINE,
            inputs: None,
            seed: 0,
        }
    }
}

/// What the guard measured and did.
#[derive(Clone, Debug)]
pub struct GuardReport {
    /// Where the inputs came from, in words.
    pub inputs: String,
    pub min_cosine: f64,
    /// Per output: cosine against dense weights with every selected weight compressed.
    pub cosine_requested: Vec<(String, f64)>,
    /// Per output: cosine of the program the package holds.
    pub cosine_package: Vec<(String, f64)>,
    /// Weights left dense, by ONNX initializer name, worst SNR first.
    pub left_dense: Vec<String>,
    /// Compressed weights before the guard acted.
    pub compressed_before: usize,
    /// Interpreter runs (the dense reference included).
    pub runs: usize,
}

impl GuardReport {
    pub fn reached(&self) -> bool {
        self.cosine_package.iter().all(|(_, c)| *c >= self.min_cosine)
    }
}

type Outputs = Vec<(String, NdArray)>;

/// Measures `graph` (after the whole pipeline) against its dense-weight twin and leaves dense
/// the fewest worst-SNR weights that bring every output to `guard.min_cosine`, updating
/// `graph.compressed` and the weight report. `write` writes a program as a package.
pub fn apply(
    graph: &mut Graph,
    guard: &CompressionGuard,
    precision: Precision,
    scratch: &Path,
    write: &dyn Fn(&Graph, &Path) -> Result<()>,
    progress: &mut dyn FnMut(&str),
) -> Result<GuardReport> {
    let interp = InterpOptions {
        fp16_rounding: precision == Precision::Fp16,
    };
    let ranked = ranked_by_snr(graph);
    let compressed = std::mem::take(&mut graph.compressed);
    let dense = scratch.join("dense.mlpackage");
    let written = write(graph, &dense);
    graph.compressed = compressed;
    written?;
    let (inputs, described) = match &guard.inputs {
        Some(file) => (
            crate::npy::read_npz(file)?
                .into_iter()
                .filter(|(k, _)| !k.starts_with("output:"))
                .map(|(k, a)| (k.strip_prefix("input:").unwrap_or(&k).to_string(), a))
                .collect(),
            format!("inputs from {}", file.display()),
        ),
        None => (
            crate::verify::deterministic_inputs(&dense, guard.seed)?,
            format!(
                "generated inputs (seed {}; normal floats, integers in 0..10 or below the table they index): real inputs (--calibration) are better",
                guard.seed
            ),
        ),
    };
    progress(&format!("compression guard: measuring the outputs on {described}"));
    let reference = run_package(&dense, &inputs, &interp)?;
    let mut runs = 1;
    // The cosines with the first `m` weights of the ranking left dense.
    let mut measure = |graph: &mut Graph, m: usize| -> Result<Vec<(String, f64)>> {
        let left_dense: Vec<_> = ranked[..m]
            .iter()
            .filter_map(|(v, _)| graph.compressed.remove_entry(v))
            .collect();
        let trial = scratch.join(format!("trial{runs}.mlpackage"));
        let written = write(graph, &trial);
        graph.compressed.extend(left_dense);
        written?;
        let outputs = run_package(&trial, &inputs, &interp)?;
        let _ = std::fs::remove_dir_all(&trial);
        runs += 1;
        Ok(cosines(&reference, &outputs, precision))
    };
    let passes = |cosines: &[(String, f64)]| cosines.iter().all(|(_, c)| *c >= guard.min_cosine);

    let requested = measure(graph, 0)?;
    let mut package = requested.clone();
    let mut keep_dense = 0;
    if !passes(&requested) {
        // Invariant: leaving `failing` dense fails, leaving `holding` dense holds (all dense is
        // the reference itself).
        let (mut failing, mut holding) = (0, ranked.len());
        package = reference.iter().map(|(name, _)| (name.clone(), 1.0)).collect();
        while holding - failing > 1 {
            let mid = failing + (holding - failing) / 2;
            progress(&format!(
                "compression guard: trying {mid} of {} weights dense (worst SNR first)",
                ranked.len()
            ));
            let trial = measure(graph, mid)?;
            if passes(&trial) {
                (holding, package) = (mid, trial);
            } else {
                failing = mid;
            }
        }
        keep_dense = holding;
    }
    let left_dense = leave_dense(graph, &ranked[..keep_dense], guard.min_cosine);
    Ok(GuardReport {
        inputs: described,
        min_cosine: guard.min_cosine,
        cosine_requested: requested,
        cosine_package: package,
        left_dense,
        compressed_before: ranked.len(),
        runs,
    })
}

/// The compressed weights, lowest SNR first (ties in program order), with their report rows.
fn ranked_by_snr(graph: &Graph) -> Vec<(ValueId, usize)> {
    let mut ranked: Vec<(ValueId, usize)> = graph
        .compressed
        .keys()
        .filter_map(|&v| {
            let name = graph.initializer_name(v);
            let row = graph
                .weight_report
                .iter()
                .position(|r| r.name == name && r.scheme != Scheme::Dense)?;
            Some((v, row))
        })
        .collect();
    ranked.sort_by(|a, b| {
        let snr = |r: usize| graph.weight_report[r].snr_db;
        snr(a.1).total_cmp(&snr(b.1)).then(a.1.cmp(&b.1))
    });
    ranked
}

/// Drops the compressed form of each weight in `ranked` and marks its report row.
fn leave_dense(graph: &mut Graph, ranked: &[(ValueId, usize)], min_cosine: f64) -> Vec<String> {
    ranked
        .iter()
        .map(|&(v, row)| {
            graph.compressed.remove(&v);
            let row = &mut graph.weight_report[row];
            row.note = format!(
                "left dense by the compression guard: {} at SNR {:.1} dB took an output below cosine {min_cosine}",
                row.scheme, row.snr_db
            );
            row.scheme = Scheme::Dense;
            row.layout = String::new();
            row.bytes_after = row.bytes_before;
            (row.mse, row.max_abs, row.snr_db) = (0.0, 0.0, f64::INFINITY);
            row.name.clone()
        })
        .collect()
}

fn cosines(reference: &Outputs, actual: &Outputs, precision: Precision) -> Vec<(String, f64)> {
    reference
        .iter()
        .zip(actual)
        .map(|((name, r), (_, a))| (name.clone(), crate::verify::compare(name, r, a, precision).cosine))
        .collect()
}

/// One line for the compile summary, e.g. `compression guard: outputs cosine 0.99340 < 0.999 on
/// generated inputs (seed 0; ...); left 3 of 42 weights dense (conv1.weight, ...): 0.99921`.
pub fn summary(report: &GuardReport) -> String {
    let worst = |c: &[(String, f64)]| c.iter().map(|(_, c)| *c).fold(f64::INFINITY, f64::min);
    let (requested, package) = (worst(&report.cosine_requested), worst(&report.cosine_package));
    if report.left_dense.is_empty() {
        return format!(
            "compression guard: worst output cosine {requested:.5} vs dense weights (bar {}) on {}",
            report.min_cosine, report.inputs
        );
    }
    let mut names = report.left_dense.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if report.left_dense.len() > 5 {
        names.push_str(", ...");
    }
    format!(
        "compression guard: worst output cosine {requested:.5} < {} vs dense weights on {}; left {} of {} weights dense ({names}): {package:.5} after {} runs",
        report.min_cosine,
        report.inputs,
        report.left_dense.len(),
        report.compressed_before,
        report.runs
    )
}
