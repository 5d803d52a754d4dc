//! Weight-compression algorithms over plain fp16 slices: exact weighted 1-D k-means
//! palettization ([`kmeans`]) and linear symmetric quantization ([`linear`]), plus the error
//! statistics of a reconstruction. Nothing here knows about graphs, ONNX or Core ML: the
//! `compress_weights` pass decides which tensors to compress and how, and the back end stores
//! the results. Every function is deterministic at any rayon thread count.
//!
//! Behaviour follows `docs/compression.md` (coremltools 9.0 §a.2 and §a.4, the DP of §b).

pub mod kmeans;
pub mod linear;

pub use kmeans::{palettize, palettize_grouped, GroupedPalette, Palette};
pub use linear::{quantize, Quantized};

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompressError {
    /// The weight holds NaN or ±Inf; the message names the first such element.
    #[error("{0}")]
    NonFinite(String),
    /// An unsupported bit width, or an axis, block or group that does not fit the shape.
    #[error("{0}")]
    Shape(String),
}

/// Error of a reconstruction against the original (both fp16, same length), computed in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStats {
    pub mse: f64,
    pub max_abs: f64,
    /// 10·log10(mean(w²)/mse); `f64::INFINITY` when mse == 0.
    pub snr_db: f64,
}

/// Elements per parallel work item. Fixed (not derived from the thread count) so that
/// floating-point partial sums are grouped the same way on every machine.
pub(crate) const CHUNK: usize = 1 << 16;

/// Compares `reconstructed` with `original` element by element.
///
/// # Panics
/// If the two slices differ in length (a caller bug, not a property of the data).
pub fn error_stats(original: &[f16], reconstructed: &[f16]) -> ErrorStats {
    assert_eq!(original.len(), reconstructed.len(), "error_stats: length mismatch");
    // (Σw², Σ(w-ŵ)², max|w-ŵ|) per fixed chunk, then summed in chunk order. fp16 → f32 → f64
    // is exact; the slice conversion is the fast one.
    let partials: Vec<(f64, f64, f64)> = original
        .par_chunks(CHUNK)
        .zip(reconstructed.par_chunks(CHUNK))
        .map(|(w, r)| {
            const BATCH: usize = 256;
            let (mut w32, mut r32) = ([0f32; BATCH], [0f32; BATCH]);
            let mut sums = (0.0, 0.0, 0.0);
            for (w, r) in w.chunks(BATCH).zip(r.chunks(BATCH)) {
                let (w32, r32) = (&mut w32[..w.len()], &mut r32[..w.len()]);
                w.convert_to_f32_slice(w32);
                r.convert_to_f32_slice(r32);
                sums = w32
                    .iter()
                    .zip(r32.iter())
                    .fold(sums, |(power, sse, max_abs), (&w, &r)| {
                        let (w, r) = (f64::from(w), f64::from(r));
                        let diff = (w - r).abs();
                        (power + w * w, sse + diff * diff, f64::max(max_abs, diff))
                    });
            }
            sums
        })
        .collect();
    let (power, sse, max_abs) = partials.iter().fold((0.0, 0.0, 0.0), |(p, s, m), &(cp, cs, cm)| {
        (p + cp, s + cs, f64::max(m, cm))
    });
    let count = original.len().max(1) as f64;
    let mse = sse / count;
    let snr_db = if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (power / count / mse).log10()
    };
    ErrorStats { mse, max_abs, snr_db }
}

/// The index of the first NaN or ±Inf element as a [`CompressError::NonFinite`], if any.
pub(crate) fn check_finite(values: &[f16]) -> Result<(), CompressError> {
    // All-ones exponent: NaN or ±Inf. Chunks keep rayon's "first" bookkeeping off the
    // per-element path.
    let non_finite = |v: &f16| v.to_bits() & 0x7C00 == 0x7C00;
    let Some(chunk) = values
        .par_chunks(CHUNK)
        .position_first(|chunk| chunk.iter().any(non_finite))
    else {
        return Ok(());
    };
    let offset = chunk * CHUNK;
    let index = offset + values[offset..].iter().position(non_finite).unwrap_or(0);
    let kind = if values[index].is_nan() { "NaN" } else { "Inf" };
    Err(CompressError::NonFinite(format!(
        "weight holds {kind} at element {index}"
    )))
}

/// Rounds `x` to the nearest fp16, ties to even, with `-0.0` folded into `+0.0`.
///
/// `half::f16::from_f64` is not correctly rounded (on x86 it goes through f32, so a value just
/// above a midpoint can become a tie), hence this check of the neighbours of its guess. `x`
/// must lie within the finite fp16 range, which holds for means of fp16 values.
pub(crate) fn round_f64_to_f16(x: f64) -> f16 {
    let guess = f16::from_f64(x);
    let guess = if guess.is_finite() {
        guess
    } else {
        f16::MAX.copysign(guess)
    };
    let mut best = guess;
    let mut best_err = (x - f64::from(guess)).abs();
    for candidate in [Some(next_toward_zero(guess)), next_away_from_zero(guess)]
        .into_iter()
        .flatten()
    {
        let err = (x - f64::from(candidate)).abs();
        let even = candidate.to_bits() & 1 == 0;
        if err < best_err || (err == best_err && even) {
            best = candidate;
            best_err = err;
        }
    }
    if best == f16::ZERO {
        f16::ZERO
    } else {
        best
    }
}

/// The fp16 neighbour of `v` one step closer to zero (from ±0: the smallest negative subnormal,
/// so that both neighbours of zero are covered by the pair of helpers).
fn next_toward_zero(v: f16) -> f16 {
    let bits = v.to_bits();
    match bits & 0x7FFF {
        0 => f16::from_bits(0x8001),
        _ => f16::from_bits(bits - 1),
    }
}

/// The fp16 neighbour of `v` one step away from zero (from ±0: the smallest positive
/// subnormal); `None` past the largest finite magnitude.
fn next_away_from_zero(v: f16) -> Option<f16> {
    let bits = v.to_bits();
    match bits & 0x7FFF {
        0 => Some(f16::from_bits(0x0001)),
        0x7BFF.. => None,
        _ => Some(f16::from_bits(bits + 1)),
    }
}

/// A small deterministic generator for the tests of this module (splitmix64).
#[cfg(test)]
pub(crate) struct TestRng(pub(crate) u64);

#[cfg(test)]
impl TestRng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Roughly normal with standard deviation `sigma` (a sum of 4 uniforms), as fp16.
    pub(crate) fn normal_f16(&mut self, sigma: f64) -> f16 {
        let sum: f64 = (0..4)
            .map(|_| (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
            .sum();
        f16::from_f64(sum * sigma * 3f64.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn h(v: f32) -> f16 {
        f16::from_f32(v)
    }

    #[test]
    fn error_stats_of_identical_tensors_is_zero_with_infinite_snr() {
        let w: Vec<f16> = [1.0, -2.0, 0.5].map(h).to_vec();
        let stats = error_stats(&w, &w);
        assert_eq!(
            stats,
            ErrorStats {
                mse: 0.0,
                max_abs: 0.0,
                snr_db: f64::INFINITY
            }
        );
        assert_eq!(error_stats(&[], &[]).snr_db, f64::INFINITY);
    }

    #[test]
    fn error_stats_matches_hand_computation() {
        let w: Vec<f16> = [1.0, -1.0, 2.0, 0.0].map(h).to_vec();
        let r: Vec<f16> = [1.0, -0.5, 2.0, 0.5].map(h).to_vec();
        let stats = error_stats(&w, &r);
        assert_eq!(stats.mse, 0.5 / 4.0);
        assert_eq!(stats.max_abs, 0.5);
        let expected_snr = 10.0 * (1.5f64 / 0.125).log10();
        assert!((stats.snr_db - expected_snr).abs() < 1e-12);
    }

    #[test]
    fn check_finite_names_the_first_bad_element() {
        let mut w = vec![h(1.0); 10];
        assert_eq!(check_finite(&w), Ok(()));
        w[7] = f16::INFINITY;
        w[4] = f16::NAN;
        let err = check_finite(&w).expect_err("NaN must be rejected");
        assert_eq!(err, CompressError::NonFinite("weight holds NaN at element 4".into()));
    }

    #[test]
    fn round_f64_to_f16_is_nearest_even_without_double_rounding() {
        let ulp = 2f64.powi(-10);
        // Exact midpoints go to the even neighbour.
        assert_eq!(round_f64_to_f16(1.0 + ulp / 2.0), h(1.0));
        assert_eq!(round_f64_to_f16(1.0 + 1.5 * ulp), f16::from_f64(1.0 + 2.0 * ulp));
        // Just above a midpoint: rounding through f32 would see a tie and go down.
        assert_eq!(
            round_f64_to_f16(1.0 + ulp / 2.0 + 2f64.powi(-40)),
            f16::from_f64(1.0 + ulp)
        );
        assert_eq!(
            round_f64_to_f16(-(1.0 + ulp / 2.0 + 2f64.powi(-40))),
            f16::from_f64(-(1.0 + ulp))
        );
        // Subnormals, the zero fold and the top of the range.
        assert_eq!(round_f64_to_f16(2f64.powi(-25) * 1.01), f16::from_bits(0x0001));
        assert_eq!(round_f64_to_f16(-2f64.powi(-26)).to_bits(), 0x0000);
        assert_eq!(round_f64_to_f16(65504.0), f16::MAX);
        assert_eq!(round_f64_to_f16(-65504.0), f16::MIN);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut rng = TestRng(9);
        let w: Vec<f16> = (0..400_000).map(|_| rng.normal_f16(0.05)).collect();
        let run = || {
            let palettes: Vec<Palette> = [4, 8].map(|bits| palettize(&w, bits).expect("finite")).to_vec();
            let grouped = palettize_grouped(&w, &[64, 6250], 0, 16, 4).expect("valid");
            let quantized = quantize(&w, &[64, 6250], &[1, 50], 4).expect("valid");
            let stats = error_stats(&w, &palettes[0].dequantize());
            (palettes, grouped, quantized, stats)
        };
        let default = run();
        assert_eq!(run(), default);
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a 1-thread pool");
        assert_eq!(single.install(run), default);
    }

    /// The palettization product targets (≥ 100 Mparam/s on 2 cores), as a timing, not an
    /// assertion: `cargo test --release -p edgec-passes timing -- --ignored --nocapture`.
    /// Each figure is the best of 3 runs.
    #[test]
    #[ignore]
    fn timing_of_palettization_headline_cases() {
        let mut rng = TestRng(2);
        let threads = rayon::current_num_threads();
        let best_of_3 = |f: &dyn Fn()| {
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    f();
                    start.elapsed()
                })
                .min()
                .unwrap_or_default()
        };
        for shape in [[4096, 1024], [1024, 4096], [50257, 1024]] {
            let w: Vec<f16> = (0..shape[0] * shape[1]).map(|_| rng.normal_f16(0.02)).collect();
            let mparams = w.len() as f64 / 1e6;
            // (name, group channels or 0 for one LUT per tensor, bits); 50,257 rows (an
            // embedding) do not split into groups of 16 channels.
            let cases = [
                ("4-bit, 16 channels per LUT", 16, 4),
                ("4-bit per tensor", 0, 4),
                ("8-bit per tensor", 0, 8),
            ];
            for (name, group, bits) in cases
                .into_iter()
                .filter(|&(_, group, _)| group == 0 || shape[0] % group == 0)
            {
                let elapsed = best_of_3(&|| match group {
                    0 => drop(palettize(&w, bits).expect("finite")),
                    _ => drop(palettize_grouped(&w, &shape, 0, group, bits).expect("valid")),
                });
                println!(
                    "{shape:?} normal(0, 0.02) {name}: {elapsed:.2?} on {threads} threads, {:.1} Mparam/s",
                    mparams / elapsed.as_secs_f64()
                );
            }
        }
    }

    /// A quick timing, not an assertion: `cargo test --release -p edgec-passes -- --ignored
    /// --nocapture`. "every finite pattern" is the worst case for the DP (n = 63,487).
    #[test]
    #[ignore]
    fn timing_of_16m_elements() {
        let mut rng = TestRng(1);
        let normal: Vec<f16> = (0..1 << 24).map(|_| rng.normal_f16(0.02)).collect();
        let every_pattern: Vec<f16> = (0..1u32 << 24)
            .map(|i| f16::from_bits((i % 0x7C00) as u16 | ((i / 0x7C00) as u16 & 1) << 15))
            .collect();
        let threads = rayon::current_num_threads();
        for (name, w) in [("normal(0, 0.02)", &normal), ("every finite pattern", &every_pattern)] {
            for bits in [4, 8] {
                let start = Instant::now();
                let palette = palettize(w, bits).expect("finite");
                let elapsed = start.elapsed();
                let snr = error_stats(w, &palette.dequantize()).snr_db;
                println!("{name}: 16M elements, {bits}-bit palette: {elapsed:.2?} on {threads} threads, {snr:.2} dB");
            }
        }
        for (bits, block) in [(8, 0), (4, 32)] {
            let start = Instant::now();
            let quantized = quantize(&normal, &[4096, 4096], &[1, block], bits).expect("finite");
            let elapsed = start.elapsed();
            let snr = error_stats(&normal, &quantized.dequantize(&[4096, 4096])).snr_db;
            println!("normal(0, 0.02): [4096, 4096] int{bits} block {block}: {elapsed:.2?}, {snr:.2} dB");
        }
    }
}
