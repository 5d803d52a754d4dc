//! The AVX2 kernels: the scalar kernels' arithmetic on 4 lanes, bit for bit (no FMA, the same
//! operation order, leftmost minima).

use super::Layer;
use std::arch::x86_64::*;

/// [`Layer::fill`] on one thread with the AVX2 kernels inlined.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn fill(
    layer: &Layer,
    first: usize,
    end: usize,
    lo: usize,
    hi: usize,
    values: &mut [f64],
    starts: &mut [u16],
) -> usize {
    layer.fill_samples_and_blocks::<true>(first, end, lo, hi, values, starts)
}

/// `prev[a] + max(0, (q_b − q_a) − (s_b − s_a)² / (w_b − w_a))` on 4 lanes, as
/// [`super::entry`] computes it.
#[inline(always)]
pub(in crate::compress::kmeans) unsafe fn entry(b: [__m256d; 3], a: [__m256d; 4]) -> __m256d {
    let ([w_b, s_b, q_b], [w_a, s_a, q_a, prev_a]) = (b, a);
    let s = _mm256_sub_pd(s_b, s_a);
    let w = _mm256_sub_pd(w_b, w_a);
    let cost = _mm256_sub_pd(_mm256_sub_pd(q_b, q_a), _mm256_div_pd(_mm256_mul_pd(s, s), w));
    _mm256_add_pd(prev_a, _mm256_max_pd(cost, _mm256_setzero_pd()))
}

/// [`Layer::scan_scalar`]: columns on the lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn scan(layer: &Layer, b: usize, lo: usize, hi: usize) -> (usize, f64) {
    let p = layer.prefix;
    let end = hi + 1;
    assert!(lo <= hi && end <= p.w.len() && end <= layer.prev.len() && b < p.w.len());
    let (w, s, q, prev) = (p.w.as_ptr(), p.s.as_ptr(), p.q.as_ptr(), layer.prev.as_ptr());
    let row = [_mm256_set1_pd(p.w[b]), _mm256_set1_pd(p.s[b]), _mm256_set1_pd(p.q[b])];
    let mut column = _mm256_add_pd(_mm256_set1_pd(lo as f64), _mm256_setr_pd(0.0, 1.0, 2.0, 3.0));
    let (mut best, mut best_column) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(lo as f64));
    let mut a = lo;
    // SAFETY (loads): lanes a..a+4 are below `end`, within every array (asserted above).
    while a + 4 <= end {
        let load = |x: *const f64| _mm256_loadu_pd(x.add(a));
        let value = entry(row, [load(w), load(s), load(q), load(prev)]);
        // The running minimum is the only loop-carried chain: min, not a compare and blend.
        let less = _mm256_cmp_pd::<_CMP_LT_OQ>(value, best);
        best = _mm256_min_pd(value, best);
        best_column = _mm256_blendv_pd(best_column, column, less);
        column = _mm256_add_pd(column, _mm256_set1_pd(4.0));
        a += 4;
    }
    if a < end {
        // SAFETY (loads): masked-off lanes (at or after `end`) are not read.
        let lanes = _mm256_cmp_pd::<_CMP_LT_OQ>(column, _mm256_set1_pd(end as f64));
        let mask = _mm256_castpd_si256(lanes);
        let load = |x: *const f64| _mm256_maskload_pd(x.add(a), mask);
        let value = entry(row, [load(w), load(s), load(q), load(prev)]);
        let value = _mm256_blendv_pd(_mm256_set1_pd(f64::INFINITY), value, lanes);
        let less = _mm256_cmp_pd::<_CMP_LT_OQ>(value, best);
        best = _mm256_min_pd(value, best);
        best_column = _mm256_blendv_pd(best_column, column, less);
    }
    let (mut values, mut columns) = ([0.0; 4], [0.0; 4]);
    _mm256_storeu_pd(values.as_mut_ptr(), best);
    _mm256_storeu_pd(columns.as_mut_ptr(), best_column);
    let mut result = (lo, f64::INFINITY);
    for (&value, &column) in values.iter().zip(&columns) {
        let column = column as usize;
        if value < result.1 || (value == result.1 && column < result.0) {
            result = (column, value);
        }
    }
    result
}

/// [`Layer::block_scalar`]: rows on the lanes, one vector of 4 per half.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub(super) unsafe fn block(layer: &Layer, first: usize, lo: usize, hi: usize, values: &mut [f64], starts: &mut [u16]) {
    let split = values.len().min(4);
    let (lower_values, upper_values) = values.split_at_mut(split);
    let (lower_starts, upper_starts) = starts.split_at_mut(split);
    if !upper_values.is_empty() {
        block_half(layer, first + split, lo, hi, upper_values, upper_starts);
    }
    let lower_hi = upper_starts.first().map_or(hi, |&a| hi.min(usize::from(a)));
    block_half(layer, first, lo, lower_hi, lower_values, lower_starts);
}

/// Up to 4 rows `first..`, each over the columns `lo..=min(hi, row − 1)`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block_half(layer: &Layer, first: usize, lo: usize, hi: usize, values: &mut [f64], starts: &mut [u16]) {
    let p = layer.prefix;
    let rows = values.len();
    assert!((1..=4).contains(&rows) && starts.len() == rows && first + rows <= p.w.len());
    assert!(lo < first && hi < layer.prev.len() && hi < p.w.len());
    let offset = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
    let active = _mm256_cmp_pd::<_CMP_LT_OQ>(offset, _mm256_set1_pd(rows as f64));
    let row = _mm256_add_pd(offset, _mm256_set1_pd(first as f64));
    let mask = _mm256_castpd_si256(active);
    // SAFETY: only the lanes of rows first..first + rows (asserted in bounds) are read.
    let load = |x: &[f64]| _mm256_maskload_pd(x.as_ptr().add(first), mask);
    let sums = [load(&p.w), load(&p.s), load(&p.q)];
    let (mut best, mut best_column) = (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(lo as f64));
    // The last row's columns end at first + rows − 2; earlier rows mask theirs.
    for a in lo..=hi.min(first + rows - 2) {
        let column = _mm256_set1_pd(a as f64);
        // SAFETY: a ≤ hi, asserted in bounds.
        let at = |x: &[f64]| _mm256_set1_pd(*x.get_unchecked(a));
        let value = entry(sums, [at(&p.w), at(&p.s), at(&p.q), at(layer.prev)]);
        let valid = _mm256_and_pd(active, _mm256_cmp_pd::<_CMP_LT_OQ>(column, row));
        let value = _mm256_blendv_pd(_mm256_set1_pd(f64::INFINITY), value, valid);
        let less = _mm256_cmp_pd::<_CMP_LT_OQ>(value, best);
        best = _mm256_min_pd(value, best);
        best_column = _mm256_blendv_pd(best_column, column, less);
    }
    let (mut out_values, mut out_columns) = ([0.0; 4], [0.0; 4]);
    _mm256_storeu_pd(out_values.as_mut_ptr(), best);
    _mm256_storeu_pd(out_columns.as_mut_ptr(), best_column);
    for (r, (value, start)) in values.iter_mut().zip(starts).enumerate() {
        (*value, *start) = (out_values[r], out_columns[r] as u16);
    }
}
