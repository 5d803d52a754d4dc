//! Palettization by exact (globally optimal) weighted 1-D k-means over the distinct fp16 values
//! of a tensor, or of each group of channels (compression.md §a.2 and §b).
//!
//! 1. Histogram by fp16 bit pattern (65,536 bins, O(N), no sort); NaN/Inf bins are errors.
//! 2. Distinct values in numeric order, with -0.0 merged into +0.0 (n ≤ 63,487), weighted by count.
//! 3. The optimal partition into k contiguous clusters: the DP `D(m,b) = min_a D(m-1,a) +
//!    cost(a,b)` with each layer solved by divide and conquer on its monotone argmins, also
//!    bounded below by the previous layer's (O(k·n·log n), two D rows, a u16 backtrack table).
//! 4. Centroids: cluster means in f64, rounded to fp16 (nearest even); then every distinct value
//!    is re-assigned to its nearest stored entry, which can only lower the error.
//! 5. A bit pattern → index table maps every element.
//!
//! Speed: see the `timing_of_16m_elements` test in the parent module.

use super::{check_finite, round_f64_to_f16, CompressError, CHUNK};
use half::f16;
use rayon::prelude::*;
use std::borrow::Cow;

const SUPPORTED_BITS: [u32; 6] = [1, 2, 3, 4, 6, 8];
const PATTERNS: usize = 1 << 16;
const NEGATIVE_ZERO: usize = 0x8000;
/// Below this many rows a DP layer's halves are solved on the current thread.
const PARALLEL_ROWS: usize = 2048;

/// One LUT: `lut.len() == 1 << bits`; its first min(n, 2^bits) entries (n = distinct values)
/// are sorted ascending, the rest are padding 0.0. `lut[indices[i]]` reconstructs element i.
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    pub lut: Vec<f16>,
    pub indices: Vec<u8>,
}

impl Palette {
    /// The dense tensor the LUT reconstructs, element by element.
    pub fn dequantize(&self) -> Vec<f16> {
        self.indices
            .par_iter()
            .with_min_len(CHUNK)
            .map(|&i| self.lut[usize::from(i)])
            .collect()
    }
}

/// One LUT per group of consecutive channels along an axis; `indices` is per element, in
/// row-major order of the whole tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedPalette {
    pub luts: Vec<Vec<f16>>,
    pub indices: Vec<u8>,
}

impl GroupedPalette {
    /// The dense tensor, given the `shape` and `axis` it was built with.
    ///
    /// # Panics
    /// If `shape` and `axis` do not match the tensor this palette was built from.
    pub fn dequantize(&self, shape: &[usize], axis: usize) -> Vec<f16> {
        let mut dense = vec![f16::ZERO; self.indices.len()];
        if self.indices.is_empty() {
            return dense;
        }
        let channels = shape.get(axis).copied().unwrap_or(0);
        let group_channels = channels / self.luts.len().max(1);
        let layout = GroupLayout::new(self.indices.len(), shape, axis, group_channels)
            .expect("GroupedPalette::dequantize: shape and axis must be the ones it was built with");
        assert_eq!(
            layout.groups,
            self.luts.len(),
            "GroupedPalette::dequantize: LUT count does not fit the shape"
        );
        dense
            .par_chunks_mut(layout.run)
            .zip(self.indices.par_chunks(layout.run))
            .enumerate()
            .with_min_len((CHUNK / layout.run).max(1))
            .for_each(|(run, (out, indices))| {
                let lut = &self.luts[run % layout.groups];
                for (o, &i) in out.iter_mut().zip(indices) {
                    *o = lut[usize::from(i)];
                }
            });
        dense
    }
}

/// Palettizes the whole tensor with one LUT of `1 << bits` entries (bits in {1,2,3,4,6,8}).
pub fn palettize(values: &[f16], bits: u32) -> Result<Palette, CompressError> {
    let clusters = clusters_for(bits)?;
    let counts = histogram(values);
    let non_finite = |range: std::ops::Range<usize>| counts[range].iter().any(|&c| c > 0);
    if non_finite(0x7C00..0x8000) || non_finite(0xFC00..PATTERNS) {
        check_finite(values)?;
    }
    Ok(palettize_counted(values, &counts, clusters))
}

/// Palettizes each group of `group_channels` consecutive channels along `axis` of the
/// row-major tensor `shape` with its own LUT; groups run in parallel.
pub fn palettize_grouped(
    values: &[f16],
    shape: &[usize],
    axis: usize,
    group_channels: usize,
    bits: u32,
) -> Result<GroupedPalette, CompressError> {
    let clusters = clusters_for(bits)?;
    let layout = GroupLayout::new(values.len(), shape, axis, group_channels)?;
    // Checked on the whole tensor so that the error names the element's global index.
    check_finite(values)?;
    let palettes: Vec<Palette> = (0..layout.groups)
        .into_par_iter()
        .map(|group| {
            let members = layout.gather(values, group);
            palettize_counted(&members, &histogram(&members), clusters)
        })
        .collect();
    let mut indices = vec![0u8; values.len()];
    if !values.is_empty() {
        for (run, out) in indices.chunks_mut(layout.run).enumerate() {
            let (outer, group) = (run / layout.groups, run % layout.groups);
            out.copy_from_slice(&palettes[group].indices[outer * layout.run..][..layout.run]);
        }
    }
    Ok(GroupedPalette {
        luts: palettes.into_iter().map(|p| p.lut).collect(),
        indices,
    })
}

fn clusters_for(bits: u32) -> Result<usize, CompressError> {
    if SUPPORTED_BITS.contains(&bits) {
        Ok(1 << bits)
    } else {
        Err(CompressError::Shape(format!(
            "palettization takes 1, 2, 3, 4, 6 or 8 bits, not {bits}"
        )))
    }
}

/// Where the groups of channels along `axis` lie in a row-major tensor: each is `outer` runs
/// of `run` contiguous elements, run `o * groups + g` belonging to group g.
struct GroupLayout {
    groups: usize,
    outer: usize,
    run: usize,
}

impl GroupLayout {
    fn new(len: usize, shape: &[usize], axis: usize, group_channels: usize) -> Result<Self, CompressError> {
        let shape_err = |msg: String| Err(CompressError::Shape(msg));
        let Some(&channels) = shape.get(axis) else {
            return shape_err(format!("axis {axis} is out of range for a rank-{} tensor", shape.len()));
        };
        if shape.iter().product::<usize>() != len {
            return shape_err(format!("shape {shape:?} does not hold {len} elements"));
        }
        if group_channels == 0 || channels % group_channels != 0 {
            return shape_err(format!(
                "{channels} channels on axis {axis} are not a multiple of {group_channels}"
            ));
        }
        let inner: usize = shape[axis + 1..].iter().product();
        Ok(GroupLayout {
            groups: channels / group_channels,
            outer: shape[..axis].iter().product(),
            run: group_channels * inner,
        })
    }

    /// The elements of one group, contiguous (borrowed when they already are).
    fn gather<'a>(&self, values: &'a [f16], group: usize) -> Cow<'a, [f16]> {
        let run_at = |outer: usize| &values[(outer * self.groups + group) * self.run..][..self.run];
        if self.outer == 1 {
            Cow::Borrowed(run_at(0))
        } else {
            Cow::Owned((0..self.outer).flat_map(run_at).copied().collect())
        }
    }
}

/// Counts per fp16 bit pattern; chunks are counted in parallel and summed (exact, so the result
/// does not depend on how rayon splits the work).
fn histogram(values: &[f16]) -> Vec<u64> {
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

/// The distinct finite values of a histogram in ascending numeric order.
struct Distinct {
    bits: Vec<u16>,
    values: Vec<f64>,
    weights: Vec<f64>,
}

fn distinct_values(counts: &[u64]) -> Distinct {
    let mut distinct = Distinct {
        bits: Vec::new(),
        values: Vec::new(),
        weights: Vec::new(),
    };
    // Negative patterns grow in magnitude with the pattern, so they are walked downwards; the
    // -0.0 bin is folded into +0.0.
    let negatives = (0x8001..=0xFBFFu16).rev();
    for bits in negatives.chain(0x0000..=0x7BFF) {
        let count = match bits {
            0 => counts[0] + counts[NEGATIVE_ZERO],
            _ => counts[usize::from(bits)],
        };
        if count > 0 {
            distinct.bits.push(bits);
            distinct.values.push(f64::from(f16::from_bits(bits)));
            distinct.weights.push(count as f64);
        }
    }
    distinct
}

fn palettize_counted(values: &[f16], counts: &[u64], clusters: usize) -> Palette {
    let distinct = distinct_values(counts);
    let (lut, entry_of_distinct): (Vec<f16>, Vec<u8>) = if distinct.bits.len() <= clusters {
        let mut lut: Vec<f16> = distinct.bits.iter().map(|&b| f16::from_bits(b)).collect();
        lut.resize(clusters, f16::ZERO);
        (lut, (0..distinct.bits.len()).map(|i| i as u8).collect())
    } else {
        let partition = optimal_partition(&distinct.values, &distinct.weights, clusters);
        let lut: Vec<f16> = partition.means.iter().map(|&mean| round_f64_to_f16(mean)).collect();
        let entries = nearest_entries(&distinct.values, &lut);
        (lut, entries)
    };
    let mut table = vec![0u8; PATTERNS];
    for (&bits, &entry) in distinct.bits.iter().zip(&entry_of_distinct) {
        table[usize::from(bits)] = entry;
    }
    table[NEGATIVE_ZERO] = table[0];
    let table = &table[..PATTERNS];
    let indices = values
        .par_iter()
        .with_min_len(CHUNK)
        .map(|v| table[usize::from(v.to_bits())])
        .collect();
    Palette { lut, indices }
}

/// For each value (ascending), the index of its nearest entry of the ascending `lut`; ties and
/// duplicate entries go to the lower index.
fn nearest_entries(values: &[f64], lut: &[f16]) -> Vec<u8> {
    // (value, lowest index holding it), strictly ascending, so distance along it is unimodal.
    let mut entries: Vec<(f64, u8)> = Vec::with_capacity(lut.len());
    for (index, entry) in lut.iter().enumerate() {
        let entry = f64::from(*entry);
        if entries.last().is_none_or(|&(last, _)| last != entry) {
            entries.push((entry, index as u8));
        }
    }
    let mut at = 0;
    values
        .iter()
        .map(|&v| {
            // Differences of fp16 values are exact in f64, so a tie is a real tie.
            while at + 1 < entries.len() && (entries[at + 1].0 - v).abs() < (entries[at].0 - v).abs() {
                at += 1;
            }
            entries[at].1
        })
        .collect()
}

/// An optimal partition of sorted distinct values into contiguous clusters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Partition {
    /// Exclusive end of each cluster, ascending; the last is n.
    pub(crate) ends: Vec<usize>,
    /// Each cluster's weighted mean (f64, before any rounding).
    pub(crate) means: Vec<f64>,
    /// Σ weight·(value − mean)², recomputed directly from the partition.
    pub(crate) sse: f64,
}

/// The globally optimal weighted k-means partition of `values` (strictly ascending) with
/// positive `weights` into min(k, n) clusters.
pub(crate) fn optimal_partition(values: &[f64], weights: &[f64], k: usize) -> Partition {
    let n = values.len();
    let k = k.min(n);
    let ends = if k <= 1 {
        vec![n]
    } else {
        dp_cluster_ends(values, weights, k)
    };
    let mut partition = Partition {
        ends: Vec::with_capacity(k),
        means: Vec::with_capacity(k),
        sse: 0.0,
    };
    let mut start = 0;
    for end in ends.into_iter().filter(|&end| end > 0) {
        let (v, w) = (&values[start..end], &weights[start..end]);
        let weight: f64 = w.iter().sum();
        let mean = v.iter().zip(w).map(|(v, w)| v * w).sum::<f64>() / weight;
        partition.sse += v.iter().zip(w).map(|(v, w)| w * (v - mean) * (v - mean)).sum::<f64>();
        partition.ends.push(end);
        partition.means.push(mean);
        start = end;
    }
    partition
}

/// Cluster ends of the optimal partition into exactly `k` (2 ≤ k ≤ n) clusters.
fn dp_cluster_ends(values: &[f64], weights: &[f64], k: usize) -> Vec<usize> {
    let n = values.len();
    let prefix = PrefixSums::new(values, weights);
    // Layer m (m clusters) only needs ends b in [m, m + width): the other k - m clusters must
    // fit after it. The last layer needs b = n alone.
    let width = n - k + 1;
    let mut prev = vec![f64::INFINITY; n + 1];
    let mut cur = vec![f64::INFINITY; n + 1];
    for (b, first_layer) in prev.iter_mut().enumerate().take(width + 1).skip(1) {
        *first_layer = prefix.cluster_cost(0, b);
    }
    // starts[(m - 2) * width + (b - m)]: where the last cluster of the best m-cluster prefix
    // ending at b starts (u16: n ≤ 63,487). Layer 1 always starts at 0 and is not stored.
    let mut starts = vec![0u16; (k - 1) * width];
    for m in 2..=k {
        let (first_row, rows) = if m == k { (n, 1) } else { (m, width) };
        let (done, todo) = starts.split_at_mut((m - 2) * width);
        let layer = Layer {
            prefix: &prefix,
            prev: &prev,
            prev_starts: if m > 2 { &done[(m - 3) * width..] } else { &[] },
            prev_first_row: m - 1,
        };
        let row_starts = &mut todo[first_row - m..][..rows];
        let last_row = first_row + rows - 1;
        layer.fill(
            first_row,
            &mut cur[first_row..=last_row],
            row_starts,
            m - 1,
            last_row - 1,
        );
        std::mem::swap(&mut prev, &mut cur);
    }
    let mut ends = vec![n];
    let mut end = n;
    for m in (2..=k).rev() {
        end = usize::from(starts[(m - 2) * width + (end - m)]);
        ends.push(end);
    }
    ends.reverse();
    ends
}

/// Prefix sums W, S, Q (count, Σ w·x, Σ w·x²) of the values shifted by their weighted mean x =
/// v − mean, so that Q − S²/W cancels far less than with raw values. Separate arrays keep the
/// inner loop streaming through memory.
struct PrefixSums {
    w: Vec<f64>,
    s: Vec<f64>,
    q: Vec<f64>,
}

impl PrefixSums {
    fn new(values: &[f64], weights: &[f64]) -> Self {
        let shift = values.iter().zip(weights).map(|(v, w)| v * w).sum::<f64>() / weights.iter().sum::<f64>();
        let mut sums = PrefixSums {
            w: vec![0.0],
            s: vec![0.0],
            q: vec![0.0],
        };
        let (mut w_total, mut s_total, mut q_total) = (0.0, 0.0, 0.0);
        for (&v, &w) in values.iter().zip(weights) {
            let x = v - shift;
            (w_total, s_total, q_total) = (w_total + w, s_total + w * x, q_total + w * x * x);
            sums.w.push(w_total);
            sums.s.push(s_total);
            sums.q.push(q_total);
        }
        sums
    }

    /// Σ w(x − mean)² of the values a..b (0-based, exclusive end).
    fn cluster_cost(&self, a: usize, b: usize) -> f64 {
        sse_from_sums(self.w[b] - self.w[a], self.s[b] - self.s[a], self.q[b] - self.q[a])
    }
}

/// Q − S²/W, clamped because cancellation can leave a tiny negative.
#[inline(always)]
fn sse_from_sums(w: f64, s: f64, q: f64) -> f64 {
    let sse = q - s * s / w;
    if sse > 0.0 {
        sse
    } else {
        0.0
    }
}

/// One DP layer m. `prev[a]` is the best cost of m - 1 clusters over the first a values;
/// `prev_starts[b - prev_first_row]` is where the last of those starts for an end b (empty
/// for m = 2, whose previous layer always starts at 0).
///
/// Squared-error cluster costs satisfy the quadrangle inequality, so (leftmost) optimal starts
/// are monotone both along a layer, start(m, b) ≤ start(m, b + 1), and across layers,
/// start(m - 1, b) ≤ start(m, b) (the Knuth–Yao bounds).
struct Layer<'a> {
    prefix: &'a PrefixSums,
    prev: &'a [f64],
    prev_starts: &'a [u16],
    prev_first_row: usize,
}

impl Layer<'_> {
    /// Fills `best[r]`, `starts[r]` for end b = first_row + r, knowing the optimal start of
    /// every row here lies in [lo, hi]: the middle row's argmin bounds both halves.
    fn fill(&self, first_row: usize, best: &mut [f64], starts: &mut [u16], lo: usize, hi: usize) {
        let rows = best.len();
        if rows == 0 {
            return;
        }
        let middle = rows / 2;
        let end = first_row + middle;
        let (start, cost) = self.best_start(end, lo, hi);
        let (best_left, best_rest) = best.split_at_mut(middle);
        let (starts_left, starts_rest) = starts.split_at_mut(middle);
        best_rest[0] = cost;
        starts_rest[0] = start as u16;
        let (best_right, starts_right) = (&mut best_rest[1..], &mut starts_rest[1..]);
        if rows >= PARALLEL_ROWS {
            rayon::join(
                || self.fill(first_row, best_left, starts_left, lo, start),
                || self.fill(end + 1, best_right, starts_right, start, hi),
            );
        } else {
            self.fill(first_row, best_left, starts_left, lo, start);
            self.fill(end + 1, best_right, starts_right, start, hi);
        }
    }

    /// The leftmost optimal start a in [lo, hi] (narrowed by the bounds) of a last cluster
    /// ending at `end`, and its cost.
    fn best_start(&self, end: usize, lo: usize, hi: usize) -> (usize, f64) {
        let hi = hi.min(end - 1);
        let lower = end
            .checked_sub(self.prev_first_row)
            .and_then(|r| self.prev_starts.get(r));
        // Rounding could in principle invert the bounds; never search an empty range.
        let lo = lower.map_or(lo, |&l| usize::from(l).clamp(lo, hi));
        let p = self.prefix;
        let (w_end, s_end, q_end) = (p.w[end], p.s[end], p.q[end]);
        let mut best = (lo, f64::INFINITY);
        let r = lo..hi + 1;
        let starts = p.w[r.clone()]
            .iter()
            .zip(&p.s[r.clone()])
            .zip(&p.q[r.clone()])
            .zip(&self.prev[r]);
        for (i, (((w, s), q), prev)) in starts.enumerate() {
            let total = prev + sse_from_sums(w_end - w, s_end - s, q_end - q);
            if total < best.1 {
                best = (lo + i, total);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::{error_stats, TestRng};

    fn h(v: f32) -> f16 {
        f16::from_f32(v)
    }

    fn direct_sse(values: &[f64], weights: &[f64]) -> f64 {
        let weight: f64 = weights.iter().sum();
        let mean = values.iter().zip(weights).map(|(v, w)| v * w).sum::<f64>() / weight;
        values
            .iter()
            .zip(weights)
            .map(|(v, w)| w * (v - mean) * (v - mean))
            .sum()
    }

    /// The optimum over every split of the sorted values into exactly min(k, n) runs.
    fn brute_force_sse(values: &[f64], weights: &[f64], k: usize) -> f64 {
        let n = values.len();
        let mut best = f64::INFINITY;
        for cuts in 0u32..1 << (n - 1) {
            if cuts.count_ones() as usize != k.min(n) - 1 {
                continue;
            }
            let mut start = 0;
            let mut sse = 0.0;
            for end in (1..=n).filter(|&end| end == n || cuts & (1 << (end - 1)) != 0) {
                sse += direct_sse(&values[start..end], &weights[start..end]);
                start = end;
            }
            best = best.min(sse);
        }
        best
    }

    /// A tensor with 1..=12 distinct values, each repeated 1..=4 times, and its distinct values.
    fn small_case(rng: &mut TestRng) -> (Vec<f16>, Distinct) {
        let distinct_target = 1 + rng.below(12);
        let mut tensor = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < distinct_target {
            let v = rng.normal_f16(1.0);
            if seen.insert(if v == f16::ZERO { 0 } else { v.to_bits() }) {
                tensor.extend(std::iter::repeat_n(v, 1 + rng.below(4)));
            }
        }
        let distinct = distinct_values(&histogram(&tensor));
        assert_eq!(distinct.values.len(), distinct_target);
        (tensor, distinct)
    }

    #[test]
    fn dp_matches_brute_force_optimum_on_small_random_inputs() {
        let mut rng = TestRng(7);
        for _ in 0..400 {
            let (_, d) = small_case(&mut rng);
            for k in 1..=4 {
                let partition = optimal_partition(&d.values, &d.weights, k);
                let optimum = brute_force_sse(&d.values, &d.weights, k);
                assert_eq!(partition.ends.len(), k.min(d.values.len()));
                assert!(
                    partition.sse <= optimum + 1e-12 * (1.0 + optimum),
                    "k={k} dp {} > brute force {optimum} on {:?} x {:?}",
                    partition.sse,
                    d.values,
                    d.weights
                );
            }
        }
    }

    /// The plain O(k·n²) DP, without any of the monotonicity bounds.
    fn unpruned_dp_sse(values: &[f64], weights: &[f64], k: usize) -> f64 {
        let n = values.len();
        let cost = |a: usize, b: usize| direct_sse(&values[a..b], &weights[a..b]);
        let mut best: Vec<f64> = (0..=n).map(|b| if b == 0 { 0.0 } else { cost(0, b) }).collect();
        for _ in 2..=k.min(n) {
            best = (0..=n)
                .map(|b| (1..b).map(|a| best[a] + cost(a, b)).fold(f64::INFINITY, f64::min))
                .collect();
        }
        best[n]
    }

    #[test]
    fn dp_matches_the_unpruned_dp_on_medium_and_tie_heavy_inputs() {
        let mut rng = TestRng(13);
        for case in 0..60 {
            let n = 20 + rng.below(80);
            let (values, weights): (Vec<f64>, Vec<f64>) = if case % 2 == 0 {
                // Evenly spaced, equal weights: many exactly tied partitions.
                ((0..n).map(|i| i as f64).collect(), vec![1.0; n])
            } else {
                let mut v: Vec<f64> = (0..n).map(|_| rng.below(1 << 20) as f64 / 4096.0 - 128.0).collect();
                v.sort_by(f64::total_cmp);
                v.dedup();
                let w = v.iter().map(|_| (1 + rng.below(50)) as f64).collect();
                (v, w)
            };
            for k in [2, 3, 5, 8, 16, 32] {
                let dp = optimal_partition(&values, &weights, k).sse;
                let reference = unpruned_dp_sse(&values, &weights, k);
                assert!(
                    (dp - reference).abs() <= 1e-9 * reference.max(1e-300),
                    "case {case} k={k}: {dp} vs {reference}"
                );
            }
        }
    }

    #[test]
    fn reassignment_never_hurts_the_partition_with_rounded_means() {
        let mut rng = TestRng(11);
        for _ in 0..300 {
            let (tensor, d) = small_case(&mut rng);
            for bits in [1, 2] {
                let palette = palettize(&tensor, bits).expect("finite input");
                let partition = optimal_partition(&d.values, &d.weights, 1 << bits);
                let rounded = |v: f64| {
                    let cluster = partition
                        .ends
                        .iter()
                        .position(|&end| d.values[end - 1] >= v)
                        .unwrap_or(0);
                    f64::from(round_f64_to_f16(partition.means[cluster]))
                };
                let (mut reassigned, mut kept) = (0.0, 0.0);
                for (&w, &i) in tensor.iter().zip(&palette.indices) {
                    let w = f64::from(w);
                    reassigned += (w - f64::from(palette.lut[usize::from(i)])).powi(2);
                    kept += (w - rounded(w)).powi(2);
                }
                assert!(reassigned <= kept, "bits={bits}: {reassigned} > {kept}");
                // Any k fp16 centroids are a k-means solution, so none beats the exact optimum.
                assert!(
                    partition.sse <= reassigned * (1.0 + 1e-12),
                    "{} > {reassigned}",
                    partition.sse
                );
            }
        }
    }

    #[test]
    fn nearest_entry_ties_and_duplicates_go_to_the_lower_index() {
        let lut = [1.0, 2.0, 2.0, 4.0].map(h);
        assert_eq!(
            nearest_entries(&[0.0, 1.5, 2.0, 3.0, 3.5, 9.0], &lut),
            [0, 0, 1, 1, 3, 3]
        );
    }

    #[test]
    fn unsupported_bits_are_rejected() {
        let w = vec![h(1.0); 16];
        for bits in [0, 5, 7, 9, 16] {
            assert!(
                matches!(palettize(&w, bits), Err(CompressError::Shape(_))),
                "bits={bits}"
            );
            assert!(matches!(
                palettize_grouped(&w, &[4, 4], 0, 2, bits),
                Err(CompressError::Shape(_))
            ));
        }
    }

    #[test]
    fn non_finite_values_are_rejected_with_their_index() {
        for bad in [f16::NAN, f16::INFINITY, f16::NEG_INFINITY] {
            let mut w = vec![h(0.5); 24];
            w[13] = bad;
            let Err(CompressError::NonFinite(msg)) = palettize(&w, 4) else {
                panic!("{bad} accepted")
            };
            assert!(msg.contains("element 13"), "{msg}");
            let Err(CompressError::NonFinite(msg)) = palettize_grouped(&w, &[2, 3, 4], 1, 1, 2) else {
                panic!("{bad} accepted by grouped")
            };
            assert!(msg.contains("element 13"), "{msg}");
        }
    }

    #[test]
    fn all_equal_tensor_is_reconstructed_exactly() {
        let w = vec![h(0.25); 1000];
        let palette = palettize(&w, 4).expect("finite");
        assert_eq!(palette.lut.len(), 16);
        assert_eq!(palette.lut[0], h(0.25));
        assert!(palette.lut[1..].iter().all(|&e| e == f16::ZERO));
        assert!(palette.indices.iter().all(|&i| i == 0));
        assert_eq!(palette.dequantize(), w);
    }

    #[test]
    fn few_distinct_values_are_exact_and_signed_zeros_merge() {
        let w: Vec<f16> = [3.0, -1.5, -0.0, 0.75, 0.0, 3.0, -1.5].map(h).to_vec();
        let palette = palettize(&w, 2).expect("finite");
        assert_eq!(palette.lut, [-1.5, 0.0, 0.75, 3.0].map(h));
        assert_eq!(palette.lut[1].to_bits(), 0);
        assert_eq!(palette.indices, [3, 0, 1, 2, 1, 3, 0]);
        assert_eq!(error_stats(&w, &palette.dequantize()).mse, 0.0);
        let padded = palettize(&w, 3).expect("finite");
        assert_eq!(padded.lut, [-1.5, 0.0, 0.75, 3.0, 0.0, 0.0, 0.0, 0.0].map(h));
        let empty = palettize(&[], 1).expect("empty is fine");
        assert_eq!((empty.lut, empty.indices), (vec![f16::ZERO; 2], vec![]));
    }

    #[test]
    fn luts_are_sorted_and_indices_in_range_for_every_width() {
        let mut rng = TestRng(3);
        let w: Vec<f16> = (0..20_000).map(|_| rng.normal_f16(0.1)).collect();
        let mut previous_mse = f64::INFINITY;
        for bits in SUPPORTED_BITS {
            let palette = palettize(&w, bits).expect("finite");
            assert_eq!(palette.lut.len(), 1 << bits);
            assert!(palette.lut.windows(2).all(|p| p[0] <= p[1]), "bits={bits}");
            assert!(palette.indices.iter().all(|&i| usize::from(i) < 1 << bits));
            let mse = error_stats(&w, &palette.dequantize()).mse;
            assert!(mse < previous_mse, "bits={bits}: {mse} not below {previous_mse}");
            previous_mse = mse;
        }
    }

    /// The elements of channels [first, first + count) along `axis`, gathered by multi-index.
    fn channels_of(w: &[f16], shape: [usize; 3], axis: usize, first: usize, count: usize) -> Vec<f16> {
        let mut out = Vec::new();
        for (e, &v) in w.iter().enumerate() {
            let index = [e / (shape[1] * shape[2]), e / shape[2] % shape[1], e % shape[2]];
            if (first..first + count).contains(&index[axis]) {
                out.push(v);
            }
        }
        out
    }

    #[test]
    fn grouped_layout_matches_per_group_palettize() {
        let mut rng = TestRng(5);
        let shape = [4, 6, 5];
        let w: Vec<f16> = (0..120).map(|_| rng.normal_f16(1.0)).collect();
        for (axis, group_channels) in [(0, 2), (0, 1), (1, 3), (1, 2), (2, 5)] {
            let grouped = palettize_grouped(&w, &shape, axis, group_channels, 2).expect("valid");
            assert_eq!(grouped.luts.len(), shape[axis] / group_channels);
            let dense = grouped.dequantize(&shape, axis);
            for (g, lut) in grouped.luts.iter().enumerate() {
                let members = channels_of(&w, shape, axis, g * group_channels, group_channels);
                let alone = palettize(&members, 2).expect("valid");
                assert_eq!(lut, &alone.lut, "axis {axis} group {g}");
                assert_eq!(
                    channels_of(&dense, shape, axis, g * group_channels, group_channels),
                    alone.dequantize()
                );
            }
        }
    }

    #[test]
    fn grouped_rejects_bad_axes_groups_and_shapes() {
        let w = vec![h(1.0); 24];
        let shape_error = |r: Result<GroupedPalette, CompressError>| matches!(r, Err(CompressError::Shape(_)));
        assert!(shape_error(palettize_grouped(&w, &[4, 6], 1, 4, 2)));
        assert!(shape_error(palettize_grouped(&w, &[4, 6], 0, 0, 2)));
        assert!(shape_error(palettize_grouped(&w, &[4, 6], 2, 1, 2)));
        assert!(shape_error(palettize_grouped(&w, &[4, 5], 0, 2, 2)));
        let empty = palettize_grouped(&[], &[0, 6], 0, 2, 2).expect("empty is fine");
        assert!(empty.luts.is_empty() && empty.indices.is_empty());
        assert!(empty.dequantize(&[0, 6], 0).is_empty());
    }
}
