//! Speed and error of edgec's weight compression on fp16 tensors, for comparison with coremltools
//! (driven by `scripts/bench_compression.py`; run by hand, not in CI):
//!
//! ```text
//! cargo bench --bench compress -- IN.npz OUT.json SCHEME...
//! ```
//!
//! `IN.npz` holds fp16 tensors of rank ≥ 2 with the output channels on axis 0. SCHEME is one of
//! `palettize:B` (one LUT per tensor), `palettize:B:gG` (one LUT per G output channels),
//! `int8` (linear symmetric, per output channel) or `int4:bB` (linear symmetric, blocks of B
//! along axis 1). For every tensor and scheme, the compression call (not the reconstruction) is
//! timed as the best of 3 wall-clock runs, on rayon's global pool (all cores) and inside a
//! 1-thread pool. The MSE is that of the dense fp16 tensor Core ML reconstructs against the
//! original, in f64 (`docs/compression.md` §e.4). `OUT.json` gets one row per tensor and scheme:
//! `{tensor, scheme, elements, seconds, seconds_1thread, mse}`; a scheme that does not fit a
//! tensor's shape (coremltools skips those too) gets null figures and a `skipped` reason.

use edgec::npy::{read_npz, ArrayData};
use edgec_passes::compress::{
    error_stats, palettize, palettize_grouped, quantize, CompressError, GroupedPalette, Palette, Quantized,
};
use half::f16;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const RUNS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Scheme {
    Palettize { bits: u32 },
    PalettizeGrouped { bits: u32, group_channels: usize },
    Int8PerChannel,
    Int4Blocks { block: usize },
}

impl Scheme {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("unknown scheme {text:?} (palettize:B, palettize:B:gG, int8, int4:bB)");
        let number = |s: &str| s.parse::<usize>().map_err(|_| bad());
        let parts: Vec<&str> = text.split(':').collect();
        match parts.as_slice() {
            ["palettize", bits] => Ok(Scheme::Palettize {
                bits: number(bits)? as u32,
            }),
            ["palettize", bits, group] => Ok(Scheme::PalettizeGrouped {
                bits: number(bits)? as u32,
                group_channels: number(group.strip_prefix('g').ok_or_else(bad)?)?,
            }),
            ["int8"] => Ok(Scheme::Int8PerChannel),
            ["int4", block] => Ok(Scheme::Int4Blocks {
                block: number(block.strip_prefix('b').ok_or_else(bad)?)?,
            }),
            _ => Err(bad()),
        }
    }

    /// The compression call alone (what is timed).
    fn compress(self, values: &[f16], shape: &[usize]) -> Result<Compressed, CompressError> {
        // Linear blocks: 1 on the output axis (per channel), 0 (the whole axis) elsewhere.
        let mut block = vec![0; shape.len()];
        block[0] = 1;
        match self {
            Scheme::Palettize { bits } => palettize(values, bits).map(Compressed::Palette),
            Scheme::PalettizeGrouped { bits, group_channels } => {
                palettize_grouped(values, shape, 0, group_channels, bits).map(Compressed::Grouped)
            }
            Scheme::Int8PerChannel => quantize(values, shape, &block, 8).map(Compressed::Linear),
            Scheme::Int4Blocks { block: size } => {
                block[1] = size;
                quantize(values, shape, &block, 4).map(Compressed::Linear)
            }
        }
    }
}

enum Compressed {
    Palette(Palette),
    Grouped(GroupedPalette),
    Linear(Quantized),
}

impl Compressed {
    /// The dense fp16 tensor Core ML reconstructs: `lut[idx]`, or `fp16(f32(q) · f32(scale))`.
    fn dequantize(&self, shape: &[usize]) -> Vec<f16> {
        match self {
            Compressed::Palette(p) => p.dequantize(),
            Compressed::Grouped(p) => p.dequantize(shape, 0),
            Compressed::Linear(q) => q.dequantize(shape),
        }
    }
}

/// The shortest of `RUNS` wall-clock runs of `f` (dropping its result is not timed).
fn best_of<T>(mut f: impl FnMut() -> Result<T, CompressError>) -> Result<Duration, CompressError> {
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        let result = f()?;
        best = best.min(start.elapsed());
        drop(result);
    }
    Ok(best)
}

fn bench(name: &str, values: &[f16], shape: &[usize], text: &str, scheme: Scheme, single: &rayon::ThreadPool) -> Value {
    let row = |fields: Value| {
        let mut row = json!({ "tensor": name, "scheme": text, "elements": values.len() });
        if let (Value::Object(row), Value::Object(fields)) = (&mut row, fields) {
            row.extend(fields);
        }
        row
    };
    let skipped = |err: CompressError| {
        eprintln!("  {text:>16}: skipped: {err}");
        row(json!({ "seconds": null, "seconds_1thread": null, "mse": null, "skipped": err.to_string() }))
    };
    if shape.len() < 2 {
        return skipped(CompressError::Shape(format!("rank {} < 2", shape.len())));
    }
    let stats = match scheme.compress(values, shape) {
        Ok(compressed) => error_stats(values, &compressed.dequantize(shape)),
        Err(err) => return skipped(err),
    };
    let timed = best_of(|| scheme.compress(values, shape)).and_then(|all| {
        let one = single.install(|| best_of(|| scheme.compress(values, shape)))?;
        Ok((all, one))
    });
    let (all, one) = match timed {
        Ok(times) => times,
        Err(err) => return skipped(err),
    };
    // Determinism at any thread count is part of the API; check it on the real data too.
    let single_mse = single.install(|| {
        let compressed = scheme.compress(values, shape)?;
        Ok::<_, CompressError>(error_stats(values, &compressed.dequantize(shape)).mse)
    });
    if single_mse != Ok(stats.mse) {
        eprintln!(
            "  {text:>16}: WARNING: 1-thread result differs (mse {:?} vs {})",
            single_mse, stats.mse
        );
    }
    let mparams = |t: Duration| values.len() as f64 / t.as_secs_f64() / 1e6;
    eprintln!(
        "  {text:>16}: {:>9.4} s ({:>8.1} Mparam/s), 1 thread {:>9.4} s ({:>8.1} Mparam/s), mse {:.6e}, snr {:.2} dB",
        all.as_secs_f64(),
        mparams(all),
        one.as_secs_f64(),
        mparams(one),
        stats.mse,
        stats.snr_db
    );
    row(json!({
        "seconds": all.as_secs_f64(),
        "seconds_1thread": one.as_secs_f64(),
        "mse": stats.mse,
    }))
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and libtest-style flags) to harness = false targets.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [input, output, schemes @ ..] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench compress -- IN.npz OUT.json SCHEME...");
        return ExitCode::from(2);
    };
    let schemes: Vec<(&str, Scheme)> = match schemes
        .iter()
        .map(|text| Scheme::parse(text).map(|s| (text.as_str(), s)))
        .collect::<Result<Vec<_>, String>>()
    {
        Ok(schemes) if !schemes.is_empty() => schemes,
        Ok(_) => {
            eprintln!("no SCHEME given");
            return ExitCode::from(2);
        }
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let tensors = match read_npz(&PathBuf::from(input)) {
        Ok(tensors) => tensors,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a 1-thread rayon pool");
    eprintln!(
        "edgec compress bench: {} tensors, {} schemes, best of {RUNS}, {} threads (and 1)",
        tensors.len(),
        schemes.len(),
        rayon::current_num_threads()
    );
    let mut rows = Vec::new();
    for (name, array) in &tensors {
        let ArrayData::F16(values) = &array.data else {
            eprintln!("{name}: {} data, expected fp16", array.data.dtype_name());
            return ExitCode::FAILURE;
        };
        eprintln!("{name} {:?} ({} elements)", array.shape, values.len());
        for &(text, scheme) in &schemes {
            rows.push(bench(name, values, &array.shape, text, scheme, &single));
        }
    }
    let text = serde_json::to_string_pretty(&rows).expect("JSON rows serialise");
    if let Err(err) = std::fs::write(output, text + "\n") {
        eprintln!("writing {output}: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
