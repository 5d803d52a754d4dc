//! Palettization by exact (globally optimal) weighted 1-D k-means over the distinct fp16 values
//! of a tensor, or of each group of channels (compression.md §a.2 and §b).
//!
//! 1. The distinct values in numeric order, with -0.0 merged into +0.0 (n ≤ 63,487), weighted
//!    by count: for a whole tensor from a histogram by bit pattern (65,536 bins, O(N)); for a
//!    group from a per-worker table of counts by order-preserving 16-bit key, of which only the
//!    blocks the group touched are read back and cleared, so that a group costs nothing per
//!    unused bit pattern ([`distinct`]). NaN/Inf are errors.
//! 2. The optimal partition into k contiguous clusters. First by a penalty per cluster
//!    ([`lagrange`]): one-dimensional solves of `E(b) = λ + min_a E(a) + cost(a, b)`, whose
//!    optimum is an optimal k-partition whenever it uses exactly k clusters; one or two solves
//!    find such a λ on weight-like data. Where none is found in a few tries (flat stretches of
//!    the optimal cost in the cluster count), the layered DP `D(m,b) = min_a D(m-1,a) +
//!    cost(a,b)` answers ([`dp`]): two D rows and a u16 backtrack table; rows that provably
//!    cannot lie on an optimal path are never computed, and each layer's monotone row minima
//!    are found for every ninth row by divide and conquer, then for the eight rows between two
//!    of those at once, one SIMD lane each.
//! 3. Centroids: cluster means in f64, rounded to fp16 (nearest even); then every distinct value
//!    is re-assigned to its nearest stored entry, which can only lower the error.
//! 4. A bit pattern → index table maps every element.
//!
//! Every path (scalar, AVX2) evaluates the same IEEE operations in the same order, and the work
//! decomposition depends only on the input, so the results are bit-identical on any machine and
//! at any thread count.
//!
//! Speed: see the `timing_of_palettization_headline_cases` test in the parent module.

use super::{check_finite, round_f64_to_f16, CompressError, CHUNK};
use half::f16;
use rayon::prelude::*;
use std::borrow::Cow;

const SUPPORTED_BITS: [u32; 6] = [1, 2, 3, 4, 6, 8];
const PATTERNS: usize = 1 << 16;
const NEGATIVE_ZERO: usize = 0x8000;

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
    let mut distinct = Distinct::default();
    distinct.fill_from_counts(&counts);
    let (lut, entries) = solve(&distinct, clusters, &mut Dp::default(), Kernel::detect());
    let mut table = Vec::new();
    let table = entry_table(&distinct.bits, &entries, &mut table);
    let indices = values
        .par_iter()
        .with_min_len(CHUNK)
        .map(|v| table[usize::from(v.to_bits())])
        .collect();
    Ok(Palette { lut, indices })
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
    let kernel = Kernel::detect();
    // A few jobs per thread, so that the per-job scratch (its 256 KiB count table among it) is
    // built a few times per call, not once per split rayon happens to make.
    let jobs = 8 * rayon::current_num_threads();
    let palettes: Vec<Palette> = (0..layout.groups)
        .into_par_iter()
        .with_min_len((layout.groups / jobs).max(1))
        .map_init(GroupScratch::default, |scratch, group| {
            palettize_group(&layout.gather(values, group), clusters, kernel, scratch)
        })
        .collect();
    let mut indices = vec![0u8; values.len()];
    if !values.is_empty() {
        indices
            .par_chunks_mut(layout.run)
            .enumerate()
            .with_min_len((CHUNK / layout.run).max(1))
            .for_each(|(run, out)| {
                let (outer, group) = (run / layout.groups, run % layout.groups);
                out.copy_from_slice(&palettes[group].indices[outer * layout.run..][..layout.run]);
            });
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

/// Per-worker buffers for [`palettize_group`], reused from group to group.
#[derive(Default)]
struct GroupScratch {
    counts: KeyCounts,
    distinct: Distinct,
    dp: Dp,
    table: Vec<u8>,
}

fn palettize_group(values: &[f16], clusters: usize, kernel: Kernel, scratch: &mut GroupScratch) -> Palette {
    let GroupScratch {
        counts,
        distinct,
        dp,
        table,
    } = scratch;
    distinct.fill_from_values(values, counts);
    let (lut, entries) = solve(distinct, clusters, dp, kernel);
    let table = entry_table(&distinct.bits, &entries, table);
    Palette {
        lut,
        indices: values.iter().map(|v| table[usize::from(v.to_bits())]).collect(),
    }
}

/// The bit pattern → LUT index table. Only the entries of `bits` (and of -0.0, which reads
/// +0.0's) are written; the others keep whatever an earlier use left, and are never read.
fn entry_table<'a>(bits: &[u16], entries: &[u8], table: &'a mut Vec<u8>) -> &'a [u8] {
    table.resize(PATTERNS, 0);
    for (&bits, &entry) in bits.iter().zip(entries) {
        table[usize::from(bits)] = entry;
    }
    table[NEGATIVE_ZERO] = table[0];
    &table[..PATTERNS]
}

/// The LUT and the entry of each distinct value.
fn solve(distinct: &Distinct, clusters: usize, dp: &mut Dp, kernel: Kernel) -> (Vec<f16>, Vec<u8>) {
    if distinct.bits.len() <= clusters {
        let mut lut: Vec<f16> = distinct.bits.iter().map(|&b| f16::from_bits(b)).collect();
        lut.resize(clusters, f16::ZERO);
        return (lut, (0..distinct.bits.len()).map(|i| i as u8).collect());
    }
    let (values, weights) = (&distinct.values, &distinct.weights);
    let means = cluster_means(values, weights, &optimal_ends(values, weights, clusters, dp, kernel));
    let lut: Vec<f16> = means.iter().map(|&mean| round_f64_to_f16(mean)).collect();
    let entries = nearest_entries(&distinct.values, &lut);
    (lut, entries)
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

/// The exclusive cluster ends of a globally optimal weighted k-means partition of `values`
/// (strictly ascending, n ≥ 1) with positive `weights` into min(k, n) clusters; the last is n.
fn optimal_ends(values: &[f64], weights: &[f64], k: usize, dp: &mut Dp, kernel: Kernel) -> Vec<usize> {
    let n = values.len();
    match k.min(n) {
        0 | 1 => vec![n],
        k => dp.cluster_ends(values, weights, k, kernel),
    }
}

/// Each cluster's weighted mean, summed directly in f64 (not from the DP's shifted sums).
fn cluster_means(values: &[f64], weights: &[f64], ends: &[usize]) -> Vec<f64> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            // Both sums in one pass (two independent chains), each in `Iterator::sum`'s order.
            let (mut weighted, mut weight) = (-0.0, -0.0);
            for (&v, &w) in values[start..end].iter().zip(&weights[start..end]) {
                (weighted, weight) = (weighted + v * w, weight + w);
            }
            start = end;
            weighted / weight
        })
        .collect()
}

/// An optimal partition of sorted distinct values into contiguous clusters.
#[cfg(test)]
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
#[cfg(test)]
pub(crate) fn optimal_partition(values: &[f64], weights: &[f64], k: usize) -> Partition {
    let ends = optimal_ends(values, weights, k, &mut Dp::default(), Kernel::detect());
    let means = cluster_means(values, weights, &ends);
    let mut start = 0;
    let mut sse = 0.0;
    for (&end, &mean) in ends.iter().zip(&means) {
        let (v, w) = (&values[start..end], &weights[start..end]);
        sse += v.iter().zip(w).map(|(v, w)| w * (v - mean) * (v - mean)).sum::<f64>();
        start = end;
    }
    Partition { ends, means, sse }
}

mod distinct;
mod dp;
mod lagrange;
#[cfg(test)]
mod tests;

use distinct::{histogram, Distinct, KeyCounts};
use dp::{Dp, Kernel};
