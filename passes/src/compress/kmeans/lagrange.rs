//! The optimal k-partition through a penalty per cluster (the Lagrangian relaxation of the
//! cluster count), tried before the layered DP.
//!
//! Dropping the count constraint and charging `λ` per cluster gives the one-dimensional
//! recurrence `E(b) = λ + min_{a<b} E(a) + cost(a, b)`, with no layer index. Squared-error
//! costs are concave Monge, so the optimal cost `OPT(c)` of c clusters is convex in c, and a
//! penalized optimum that happens to use exactly k clusters is an optimal k-partition: any
//! k-partition P has `cost(P) + λk ≥ E(n) = OPT_found + λk`. The λ that yields k clusters is
//! an interval, `(OPT(k) − OPT(k+1), OPT(k−1) − OPT(k))`, non-empty iff k is a vertex of the
//! lower convex hull of `OPT`. The search:
//!
//! * first, the interval's middle under the high-resolution law `OPT(c) ≈ C/c²`, with C from
//!   the Lloyd estimate of `OPT(k)`, or the caller's sharper estimate `(OPT(k−1) − OPT(k+1))/2`
//!   from Lloyd's costs where it agrees with the law to 30%;
//! * while every miss lies on one side, a step of about half a count's interval per count
//!   missed (the law's marginal cost goes as `c^−3`);
//! * once misses lie on both sides, the slope of the chord between the nearest two (their
//!   exact costs are known): there both ends tie, so the penalized optimum is strictly between
//!   them iff some count between is a hull vertex. A chord solve that returns an end proves that
//!   no λ gives k.
//!
//! On 16K-element groups of normal weights the interval is 5–35% wide at k = 16 and the groups
//! take 1.05 solves on average; 8-bit LUTs (k = 256) take about five. When the search ends
//! without k, the caller falls back to the layered DP, so the result is always optimal.
//!
//! One solve is the least-weight-subsequence queue: for Monge costs, once a later start `c`
//! beats an earlier start `a` at some row it beats it at every later row, so the starts that
//! can still win form a queue, each owning an interval of rows; a new start pops the ones it
//! beats from their first row on and finds where it overtakes the next from that one's first
//! row: four rows at a time on AVX2 lanes, which settles it three times in four (crossovers move
//! little from one start to the next), then a galloping search.

use super::dp::{entry, Kernel, PrefixSums};

/// Penalty tries before giving up on the Lagrangian route.
const TRIES: usize = 8;
/// How far the caller's first penalty may stray from the law's before the law is used.
const FIRST_PENALTY_SPREAD: f64 = 1.3;
/// Fours of rows scanned after the first before the galloping search.
const LINEAR_PROBES: usize = 2;

/// Buffers for the penalized solves, reused from group to group.
#[derive(Default)]
pub(super) struct Penalized {
    /// `E(b)`: the least penalized cost of the first b values.
    value: Vec<f64>,
    from: Vec<u32>,
    /// (start, first row it owns), both ascending; `head..` are live.
    queue: Vec<(u32, u32)>,
    /// Solves run and partitions declined, over this buffer's life (for the timing tests).
    solves: usize,
    declined: usize,
}

impl Penalized {
    /// The cluster ends of an optimal partition into exactly k clusters (2 ≤ k < n), or `None`
    /// when no penalty tried gives k clusters. `first_penalty` is the caller's estimate of the
    /// middle of k's interval, `estimate` a near-optimal k-partition's cost.
    pub(super) fn cluster_ends(
        &mut self,
        prefix: &PrefixSums,
        k: usize,
        first_penalty: f64,
        estimate: f64,
        kernel: Kernel,
    ) -> Option<Vec<usize>> {
        let n = prefix.len();
        // The middle of k's interval under OPT(c) = C/c², C from the estimate. The caller's
        // difference of two Lloyd costs is sharper where Lloyd's error is small next to the
        // marginal cost (≈ 2·OPT/k), i.e. at small k; where it strays from the law's value it
        // is that error, and the law is used.
        let law = |c: usize| 1.0 / (c * c) as f64;
        let by_law = estimate / law(k) * (law(k - 1) - law(k + 1)) / 2.0;
        let mut lambda =
            if first_penalty > by_law / FIRST_PENALTY_SPREAD && first_penalty < by_law * FIRST_PENALTY_SPREAD {
                first_penalty
            } else {
                by_law
            };
        // The nearest misses with more clusters than k (below, at smaller penalties) and fewer
        // (above, at larger penalties), as (clusters, exact OPT(clusters)).
        let mut below: Option<(usize, f64)> = None;
        let mut above: Option<(usize, f64)> = None;
        for _ in 0..TRIES {
            if !(lambda.is_finite() && lambda > 0.0) {
                break;
            }
            let ends = self.solve(prefix, lambda, kernel);
            let clusters = ends.len();
            if clusters == k {
                return Some(ends);
            }
            let miss = (clusters, self.value[n] - lambda * clusters as f64);
            let bracketed = below.is_some() && above.is_some();
            if clusters > k {
                if below.is_some_and(|b| b.0 == clusters) && bracketed {
                    break;
                }
                below = Some(below.map_or(miss, |b| if clusters < b.0 { miss } else { b }));
            } else {
                if above.is_some_and(|a| a.0 == clusters) && bracketed {
                    break;
                }
                above = Some(above.map_or(miss, |a| if clusters > a.0 { miss } else { a }));
            }
            lambda = match (below, above) {
                // Bracketed: the chord's slope, where both ends tie. If k is a vertex of the
                // lower convex hull of OPT, the penalized optimum there lies strictly between
                // them; if that solve returns an end again, k is not a vertex and no λ gives it.
                (Some((c_more, o_more)), Some((c_fewer, o_fewer))) => (o_fewer - o_more) / (c_more - c_fewer) as f64,
                // One side: about half a count's interval per count missed (marginal cost
                // ∝ c^−3 under the high-resolution law).
                _ => lambda * (clusters as f64 / k as f64).powf(1.5),
            };
        }
        self.declined += 1;
        None
    }

    /// (solves run, partitions declined) so far.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.solves, self.declined)
    }

    /// The cluster ends of the penalized optimum for `lambda`.
    fn solve(&mut self, prefix: &PrefixSums, lambda: f64, kernel: Kernel) -> Vec<usize> {
        match kernel {
            Kernel::Scalar => self.solve_with::<false>(prefix, lambda),
            // SAFETY: `Kernel::Avx2` is only constructed when AVX2 is available.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { solve_avx2(self, prefix, lambda) },
        }
    }

    #[inline(always)]
    fn solve_with<const SIMD: bool>(&mut self, prefix: &PrefixSums, lambda: f64) -> Vec<usize> {
        self.solves += 1;
        let n = prefix.len();
        let Penalized { value, from, queue, .. } = self;
        value.clear();
        value.resize(n + 1, 0.0);
        from.clear();
        from.resize(n + 1, 0);
        queue.clear();
        queue.push((0, 1));
        let mut head = 0;
        for b in 1..=n {
            while head + 1 < queue.len() && queue[head + 1].1 as usize <= b {
                head += 1;
            }
            let a = queue[head].0 as usize;
            value[b] = lambda + entry(prefix, value, a, b);
            from[b] = a as u32;
            if b == n {
                break;
            }
            // Start b, for the rows after b, against the queue's last start.
            let start = b;
            loop {
                let (rival, owned) = queue[queue.len() - 1];
                let (rival, owned) = (rival as usize, owned as usize);
                let first = owned.max(b + 1);
                let beats = |x: usize| entry(prefix, value, start, x) < entry(prefix, value, rival, x);
                // Bit i: it beats the rival at row x + i (x + 3 ≤ n).
                let beats4 = |x: usize| {
                    if SIMD {
                        // SAFETY: SIMD is only instantiated under `Kernel::Avx2`; rows x..x + 4
                        // are ≤ n.
                        unsafe { avx2::beats4(prefix, value, start, rival, x) }
                    } else {
                        (0..4).fold(0, |mask, i| mask | u32::from(beats(x + i)) << i)
                    }
                };
                // The first four rows on lanes: a pop, or (usually) the crossover itself; then a
                // few more fours before galloping. Near the end, the first row alone.
                let on_lanes = first + 3 <= n;
                let mask = if on_lanes {
                    beats4(first)
                } else {
                    u32::from(beats(first))
                };
                if mask & 1 != 0 {
                    queue.pop();
                    if queue.len() == head {
                        queue.push((start as u32, (b + 1) as u32));
                        break;
                    }
                    continue;
                }
                let mut lo = first;
                let mut crossover = None;
                if mask != 0 {
                    crossover = Some(first + mask.trailing_zeros() as usize);
                } else if on_lanes {
                    lo = first + 3;
                    for _ in 0..LINEAR_PROBES {
                        if lo + 4 > n {
                            break;
                        }
                        let mask = beats4(lo + 1);
                        if mask != 0 {
                            crossover = Some(lo + 1 + mask.trailing_zeros() as usize);
                            break;
                        }
                        lo += 4;
                    }
                }
                if let Some(row) = crossover {
                    queue.push((start as u32, row as u32));
                    break;
                }
                // Gallop from `lo` (not beaten there) for the first row it beats, then bisect.
                let mut step = 1;
                let hi = loop {
                    let x = lo + step;
                    if x >= n {
                        break if beats(n) { n } else { n + 1 };
                    }
                    if beats(x) {
                        break x;
                    }
                    lo = x;
                    step *= 2;
                };
                if hi > n {
                    break;
                }
                let (mut lo, mut hi) = (lo, hi);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if beats(mid) {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                queue.push((start as u32, hi as u32));
                break;
            }
        }
        // The optimum's path back from n.
        let mut ends = vec![n];
        let mut at = n;
        while from[at] != 0 {
            at = from[at] as usize;
            ends.push(at);
        }
        ends.reverse();
        ends
    }
}

/// [`Penalized::solve`] with the AVX2 probe inlined.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn solve_avx2(penalized: &mut Penalized, prefix: &PrefixSums, lambda: f64) -> Vec<usize> {
    penalized.solve_with::<true>(prefix, lambda)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::dp::avx2::entry;
    use super::PrefixSums;
    use std::arch::x86_64::*;

    /// Bit i set iff start `c` is strictly better than start `a` at row `x + i`, i < 4: the
    /// layered DP's AVX2 entry with the rows on the lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn beats4(prefix: &PrefixSums, value: &[f64], c: usize, a: usize, x: usize) -> u32 {
        let (w, s, q) = (&prefix.w, &prefix.s, &prefix.q);
        assert!(x + 4 <= w.len() && c < value.len() && a < value.len() && c < w.len() && a < w.len());
        // SAFETY: rows x..x + 4 are in bounds (asserted).
        let rows = |v: &[f64]| _mm256_loadu_pd(v.as_ptr().add(x));
        let rows = [rows(w), rows(s), rows(q)];
        let start = |i: usize| [w[i], s[i], q[i], value[i]].map(|v| _mm256_set1_pd(v));
        let less = _mm256_cmp_pd::<_CMP_LT_OQ>(entry(rows, start(c)), entry(rows, start(a)));
        _mm256_movemask_pd(less) as u32
    }
}
