//! The distinct finite values of a tensor or group, in ascending numeric order and weighted by
//! count: a tensor's from a histogram by bit pattern, a group's from a per-worker count table
//! of which only the blocks the group touched are read back (and cleared).

use super::{CHUNK, NEGATIVE_ZERO, PATTERNS};
use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use rayon::prelude::*;

/// Counts per fp16 bit pattern; chunks are counted in parallel and summed (exact, so the result
/// does not depend on how rayon splits the work).
pub(super) fn histogram(values: &[f16]) -> Vec<u64> {
    let count = |mut bins: Vec<u64>, chunk: &[f16]| {
        let slots = &mut bins[..PATTERNS];
        for v in chunk {
            slots[usize::from(v.to_bits())] += 1;
        }
        bins
    };
    if values.len() <= CHUNK {
        return count(vec![0; PATTERNS], values);
    }
    values.par_chunks(CHUNK).fold(|| vec![0; PATTERNS], count).reduce(
        || vec![0; PATTERNS],
        |mut total, part| {
            total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
            total
        },
    )
}

/// The distinct finite values of a tensor or group in ascending numeric order.
#[derive(Debug, Default)]
pub(super) struct Distinct {
    pub(super) bits: Vec<u16>,
    pub(super) values: Vec<f64>,
    pub(super) weights: Vec<f64>,
}

impl Distinct {
    fn clear(&mut self) {
        self.bits.clear();
        self.values.clear();
        self.weights.clear();
    }

    /// Fills `values` from `bits` (one bulk conversion, exact).
    fn convert(&mut self) {
        self.values.resize(self.bits.len(), 0.0);
        self.bits
            .reinterpret_cast::<f16>()
            .convert_to_f64_slice(&mut self.values);
    }

    /// From a histogram by bit pattern.
    pub(super) fn fill_from_counts(&mut self, counts: &[u64]) {
        self.clear();
        // Negative patterns grow in magnitude with the pattern, so they are walked downwards;
        // the -0.0 bin is folded into +0.0.
        let negatives = (0x8001..=0xFBFFu16).rev();
        for bits in negatives.chain(0x0000..=0x7BFF) {
            let count = match bits {
                0 => counts[0] + counts[NEGATIVE_ZERO],
                _ => counts[usize::from(bits)],
            };
            if count > 0 {
                self.bits.push(bits);
                self.weights.push(count as f64);
            }
        }
        self.convert();
    }

    /// From finite values, counted by [`order_key`] in `counts` (left all zero again).
    pub(super) fn fill_from_values(&mut self, values: &[f16], counts: &mut KeyCounts) {
        if u32::try_from(values.len()).is_err() {
            // More than a u32 count can hold.
            return self.fill_from_counts(&histogram(values));
        }
        self.clear();
        counts.add(values);
        counts.drain_into(self);
        self.convert();
    }
}

/// Keys per block of [`KeyCounts`]: a group reads back only the blocks it touched.
const BLOCK_KEYS: usize = 64;

/// Counts by [`order_key`], all zero between uses, so that a group costs nothing per bit
/// pattern it does not hold and the table is zeroed once per worker, not once per group.
pub(super) struct KeyCounts {
    counts: Vec<u32>,
    /// Per block of [`BLOCK_KEYS`] keys: whether a count in it may be nonzero.
    touched: Vec<bool>,
}

impl Default for KeyCounts {
    fn default() -> Self {
        KeyCounts {
            counts: vec![0; PATTERNS],
            touched: vec![false; PATTERNS / BLOCK_KEYS],
        }
    }
}

impl KeyCounts {
    /// Counts `values` (at most `u32::MAX` of them).
    fn add(&mut self, values: &[f16]) {
        let (counts, touched) = (&mut self.counts[..PATTERNS], &mut self.touched[..PATTERNS / BLOCK_KEYS]);
        for v in values {
            let key = usize::from(order_key(v.to_bits()));
            counts[key] += 1;
            // A plain store, not a read-modify-write, so that no chain runs through memory.
            touched[key / BLOCK_KEYS] = true;
        }
    }

    /// Appends the nonzero counts in key order to `distinct` (bits and weights) and zeroes them.
    fn drain_into(&mut self, distinct: &mut Distinct) {
        for (block, touched) in self.touched.iter_mut().enumerate() {
            if !std::mem::take(touched) {
                continue;
            }
            let first = block * BLOCK_KEYS;
            // Compacted without a branch per key: about half of a touched block's keys are
            // typically zero, in no predictable pattern.
            let (mut bits, mut weights) = ([0u16; BLOCK_KEYS], [0f64; BLOCK_KEYS]);
            let mut found = 0;
            for (key, count) in (first as u16..).zip(&mut self.counts[first..first + BLOCK_KEYS]) {
                bits[found] = from_order_key(key);
                weights[found] = f64::from(*count);
                found += usize::from(*count != 0);
                *count = 0;
            }
            distinct.bits.extend_from_slice(&bits[..found]);
            distinct.weights.extend_from_slice(&weights[..found]);
        }
    }
}

/// A key whose unsigned order is the numeric order of the finite fp16 `bits`; -0.0 and +0.0
/// share +0.0's key.
pub(super) fn order_key(bits: u16) -> u16 {
    let bits = if usize::from(bits) == NEGATIVE_ZERO { 0 } else { bits };
    if bits & 0x8000 != 0 {
        !bits
    } else {
        bits | 0x8000
    }
}

/// The bit pattern of an [`order_key`] (+0.0 for a zero).
pub(super) fn from_order_key(key: u16) -> u16 {
    if key & 0x8000 != 0 {
        key & 0x7FFF
    } else {
        !key
    }
}
