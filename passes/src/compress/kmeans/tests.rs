use super::dp::{sse_from_sums, PrefixSums};
use super::lagrange::Penalized;
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
    let mut distinct = Distinct::default();
    distinct.fill_from_counts(&histogram(&tensor));
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

/// The distinct values of an fp16 normal sample, by the histogram path.
fn normal_distinct(rng: &mut TestRng, elements: usize, sigma: f64) -> Distinct {
    let w: Vec<f16> = (0..elements).map(|_| rng.normal_f16(sigma)).collect();
    let mut distinct = Distinct::default();
    distinct.fill_from_counts(&histogram(&w));
    distinct
}

#[test]
fn group_counted_distinct_values_match_the_histogram() {
    let mut rng = TestRng(17);
    let mut w: Vec<f16> = (0..5000).map(|_| rng.normal_f16(0.02)).collect();
    // Both zeros, subnormals and the extremes of the finite range.
    w.extend([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x7BFF, 0xFBFF].map(f16::from_bits));
    w.extend((0..3000).map(|_| f16::from_bits((rng.next_u64() % 0x7C00) as u16 | (rng.below(2) as u16) << 15)));
    // Heavy repeats, so that counts exceed any small integer type.
    w.extend(std::iter::repeat_n(h(0.015625), 70_000));
    // One count table for every input, as a worker reuses it: each use must leave it clean.
    let mut counts = KeyCounts::default();
    let few: Vec<f16> = [3.0, -0.0, 3.0, 0.5].map(h).to_vec();
    for input in [&w, &few, &w[..4000], &few] {
        let (mut from_values, mut from_counts) = (Distinct::default(), Distinct::default());
        from_values.fill_from_values(input, &mut counts);
        from_counts.fill_from_counts(&histogram(input));
        assert_eq!(from_values.bits, from_counts.bits);
        assert_eq!(from_values.values, from_counts.values);
        assert_eq!(from_values.weights, from_counts.weights);
        assert!(from_values.values.windows(2).all(|v| v[0] < v[1]));
    }
}

/// A random group's elements: normal at a random scale, a coarse grid (few distinct values,
/// many exact ties), uniform bit patterns in a few binades, or a spike with a normal spread.
fn random_elements(rng: &mut TestRng, count: usize) -> Vec<f16> {
    let sigma = [0.002, 0.02, 0.3, 4.0][rng.below(4)];
    match rng.below(4) {
        0 => (0..count).map(|_| rng.normal_f16(sigma)).collect(),
        1 => {
            let levels = 2 + rng.below(60);
            (0..count)
                .map(|_| h((rng.below(levels) as f32 - levels as f32 / 2.0) * 0.125))
                .collect()
        }
        2 => (0..count)
            .map(|_| f16::from_bits((0x3000 + (rng.next_u64() % 0x1800) as u16) | ((rng.below(2) as u16) << 15)))
            .collect(),
        _ => (0..count)
            .map(|_| {
                if rng.below(3) == 0 {
                    h(0.5)
                } else {
                    rng.normal_f16(sigma)
                }
            })
            .collect(),
    }
}

/// The LUT and per-element indices of one group by the plain DP: the tensor path's histogram,
/// the unpruned DP's partition, then the same rounding and reassignment as the product.
fn reference_palette(elements: &[f16], clusters: usize) -> (Vec<f16>, Vec<u8>) {
    let mut distinct = Distinct::default();
    distinct.fill_from_counts(&histogram(elements));
    let (lut, entries) = if distinct.values.len() <= clusters {
        let mut lut: Vec<f16> = distinct.bits.iter().map(|&b| f16::from_bits(b)).collect();
        lut.resize(clusters, f16::ZERO);
        (lut, (0..distinct.bits.len()).map(|i| i as u8).collect())
    } else {
        let ends = plain_dp_ends(&distinct.values, &distinct.weights, clusters);
        let means = cluster_means(&distinct.values, &distinct.weights, &ends);
        let lut: Vec<f16> = means.iter().map(|&mean| round_f64_to_f16(mean)).collect();
        let entries = nearest_entries(&distinct.values, &lut);
        (lut, entries)
    };
    let entry_of = |v: f16| {
        let bits = if v.to_bits() == 0x8000 { 0 } else { v.to_bits() };
        entries[distinct.bits.iter().position(|&b| b == bits).expect("a distinct value")]
    };
    let indices = elements.iter().map(|&v| entry_of(v)).collect();
    (lut, indices)
}

#[test]
fn grouped_palettes_match_the_plain_dp_on_random_groups() {
    let mut rng = TestRng(37);
    for case in 0..28 {
        // A rank-3 tensor grouped along a random axis into groups of a random divisor of its
        // channels; the last cases are weight-like matrices with two groups of 16 rows and up
        // to a few thousand distinct values each, where every pruning of the DP comes into play.
        let (shape, axis, group_channels, bits) = if case < 24 {
            let shape = [1 + rng.below(6), 2 + rng.below(30), 1 + rng.below(70)];
            let axis = rng.below(3);
            let channels = shape[axis];
            let divisors: Vec<usize> = (1..=channels).filter(|d| channels % d == 0).collect();
            (
                shape,
                axis,
                divisors[rng.below(divisors.len())],
                [1, 2, 3, 4, 6][rng.below(5)],
            )
        } else {
            ([1, 32, 128 + rng.below(256)], 1, 16, [2, 4][case % 2])
        };
        let elements: usize = shape.iter().product();
        let w = random_elements(&mut rng, elements);
        let grouped = palettize_grouped(&w, &shape, axis, group_channels, bits).expect("valid");
        let layout = GroupLayout::new(w.len(), &shape, axis, group_channels).expect("valid");
        assert_eq!(grouped.luts.len(), layout.groups);
        for (group, lut) in grouped.luts.iter().enumerate() {
            // The group's elements in the order palettization gathers them.
            let positions: Vec<usize> = (0..layout.outer)
                .flat_map(|outer| {
                    let first = (outer * layout.groups + group) * layout.run;
                    first..first + layout.run
                })
                .collect();
            let members: Vec<f16> = positions.iter().map(|&p| w[p]).collect();
            let (reference_lut, reference_indices) = reference_palette(&members, 1 << bits);
            let context =
                format!("case {case}: shape {shape:?} axis {axis} g{group_channels} {bits}-bit group {group}");
            assert_eq!(lut, &reference_lut, "{context}");
            let indices: Vec<u8> = positions.iter().map(|&p| grouped.indices[p]).collect();
            assert_eq!(indices, reference_indices, "{context}");
        }
    }
}

/// The cluster ends of the plain O(k·n²) DP over prefix sums, with no bound of any kind: every
/// row of every layer over every column, leftmost minima, the same arithmetic as the DP's.
#[allow(clippy::needless_range_loop)]
fn plain_dp_ends(values: &[f64], weights: &[f64], k: usize) -> Vec<usize> {
    let n = values.len();
    let k = k.min(n);
    let mut prefix = PrefixSums::default();
    prefix.fill(values, weights);
    let mut best: Vec<f64> = (0..=n)
        .map(|b| {
            if b == 0 {
                f64::INFINITY
            } else {
                prefix.cluster_cost(0, b)
            }
        })
        .collect();
    let mut starts = vec![vec![0; n + 1]; k + 1];
    for m in 2..=k {
        let mut next = vec![f64::INFINITY; n + 1];
        // m clusters need m values, and leave k − m values for the rest.
        for b in m..=n - (k - m) {
            let columns = m - 1..b;
            let (w, s, q) = (
                &prefix.w[columns.clone()],
                &prefix.s[columns.clone()],
                &prefix.q[columns.clone()],
            );
            for (a, (((best, w), s), q)) in columns.clone().zip(best[columns].iter().zip(w).zip(s).zip(q)) {
                let value = best + sse_from_sums(prefix.w[b] - w, prefix.s[b] - s, prefix.q[b] - q);
                if value < next[b] {
                    (next[b], starts[m][b]) = (value, a);
                }
            }
        }
        best = next;
    }
    let mut ends = vec![n];
    for m in (2..=k).rev() {
        ends.push(starts[m][*ends.last().expect("nonempty")]);
    }
    ends.reverse();
    ends
}

/// The SSE of [`plain_dp_ends`]' partition, recomputed directly.
fn plain_dp_sse(values: &[f64], weights: &[f64], k: usize) -> f64 {
    let mut start = 0;
    plain_dp_ends(values, weights, k)
        .into_iter()
        .map(|end| {
            let sse = direct_sse(&values[start..end], &weights[start..end]);
            start = end;
            sse
        })
        .sum()
}

fn assert_same_sse(dp: f64, reference: f64, context: &str) {
    assert!(
        (dp - reference).abs() <= 1e-9 * reference.max(1e-300),
        "{context}: dp {dp} vs reference {reference}"
    );
}

/// A named case: values, weights and the cluster counts to try.
type DpCase<'a> = (String, Vec<f64>, Vec<f64>, &'a [usize]);

#[test]
fn dp_matches_the_plain_dp_on_large_and_tie_heavy_inputs() {
    let mut rng = TestRng(19);
    // The reference costs k·n²/2 evaluations, so the widest cases get fewer k.
    let mut cases: Vec<DpCase> = Vec::new();
    for (n, ks) in [
        (300, &[2, 4, 16, 64, 256][..]),
        (1000, &[2, 4, 16, 64, 256]),
        (2000, &[2, 4, 16, 64]),
    ] {
        // Evenly spaced with equal weights: many exactly tied partitions.
        cases.push((
            format!("grid n={n}"),
            (0..n).map(|i| i as f64).collect(),
            vec![1.0; n],
            ks,
        ));
        // Integer values, few distinct weights: ties between clusters of equal shape.
        let v: Vec<f64> = (0..n).map(|i| (3 * i + rng.below(3)) as f64).collect();
        let w = v.iter().map(|_| (1 + rng.below(3)) as f64).collect();
        cases.push((format!("integers n={n}"), v, w, &ks[..ks.len().min(3)]));
    }
    // Tight clusters far apart: the costs cancel against large prefix sums.
    let v: Vec<f64> = (0..800)
        .map(|i| (i / 50) as f64 * 1000.0 + (i % 50) as f64 * 1e-3)
        .collect();
    let w = v.iter().map(|_| (1 + rng.below(9)) as f64).collect();
    cases.push(("far clusters".into(), v, w, &[2, 4, 16, 64, 256]));
    // fp16 weights: the distinct values of a normal sample and their counts.
    let d = normal_distinct(&mut rng, 1500, 0.02);
    cases.push((
        format!("fp16 normal n={}", d.values.len()),
        d.values,
        d.weights,
        &[2, 4, 16, 64, 256],
    ));
    for (name, values, weights, ks) in &cases {
        for &k in ks.iter() {
            let dp = optimal_partition(values, weights, k);
            assert_eq!(dp.ends.len(), k, "{name} k={k}");
            assert_same_sse(dp.sse, plain_dp_sse(values, weights, k), &format!("{name} k={k}"));
        }
    }
}

/// The unpruned divide and conquer over every layer's monotone argmins (the previous
/// implementation's algorithm, O(k·n·log n)); the SSE of its partition.
#[allow(clippy::needless_range_loop)]
fn divide_and_conquer_sse(values: &[f64], weights: &[f64], k: usize) -> f64 {
    fn solve(
        p: &PrefixSums,
        prev: &[f64],
        cur: &mut [f64],
        at: &mut [usize],
        rows: (usize, usize),
        cols: (usize, usize),
    ) {
        if rows.0 > rows.1 {
            return;
        }
        let b = (rows.0 + rows.1) / 2;
        let mut best = (cols.0, f64::INFINITY);
        for a in cols.0..=cols.1.min(b - 1) {
            let value = prev[a] + p.cluster_cost(a, b);
            if value < best.1 {
                best = (a, value);
            }
        }
        (cur[b], at[b]) = (best.1, best.0);
        if b > rows.0 {
            solve(p, prev, cur, at, (rows.0, b - 1), (cols.0, best.0));
        }
        solve(p, prev, cur, at, (b + 1, rows.1), (best.0, cols.1));
    }
    let n = values.len();
    let mut prefix = PrefixSums::default();
    prefix.fill(values, weights);
    let mut prev: Vec<f64> = (0..=n).map(|b| prefix.cluster_cost(0, b)).collect();
    let mut starts = vec![vec![0; n + 1]; k + 1];
    for m in 2..=k {
        let mut cur = vec![f64::INFINITY; n + 1];
        let rows = if m == k { (n, n) } else { (m, n - (k - m)) };
        solve(&prefix, &prev, &mut cur, &mut starts[m], rows, (m - 1, n - 1));
        prev = cur;
    }
    let mut ends = vec![n];
    for m in (2..=k).rev() {
        ends.push(starts[m][*ends.last().expect("nonempty")]);
    }
    ends.push(0);
    ends.windows(2)
        .map(|e| direct_sse(&values[e[1]..e[0]], &weights[e[1]..e[0]]))
        .sum()
}

#[test]
fn pruned_dp_matches_the_unpruned_divide_and_conquer_on_fp16_weights() {
    let mut rng = TestRng(23);
    // A group of 16 × 1024 and a 1M-element tensor of normal(0, 0.02) weights, and a wide
    // uniform spread with every pattern of some binades present.
    let mut cases = vec![
        normal_distinct(&mut rng, 16 * 1024, 0.02),
        normal_distinct(&mut rng, 1 << 20, 0.02),
    ];
    let wide: Vec<f16> = (0..200_000)
        .map(|_| f16::from_bits((rng.next_u64() % 0x5C00) as u16 | (rng.below(2) as u16) << 15))
        .collect();
    let mut distinct = Distinct::default();
    distinct.fill_from_counts(&histogram(&wide));
    cases.push(distinct);
    for d in &cases {
        for k in [4, 16, 256] {
            let dp = optimal_partition(&d.values, &d.weights, k);
            let reference = divide_and_conquer_sse(&d.values, &d.weights, k);
            assert_same_sse(dp.sse, reference, &format!("n={} k={k}", d.values.len()));
        }
    }
}

#[test]
fn simd_and_scalar_kernels_agree_bit_for_bit() {
    let kernel = Kernel::detect();
    let mut rng = TestRng(29);
    // Up to n ≈ 23,000 distinct values, so that wide layers are also split in parallel.
    for (elements, k) in [(4000, 16), (16 * 1024, 16), (16 * 1024, 256), (1 << 22, 16)] {
        let d = normal_distinct(&mut rng, elements, 0.02);
        let ends = |kernel| Dp::default().cluster_ends(&d.values, &d.weights, k, kernel);
        assert_eq!(
            ends(Kernel::Scalar),
            ends(kernel),
            "n={} k={k} {kernel:?}",
            d.values.len()
        );
    }
}

#[test]
fn a_bound_below_the_optimum_falls_back_to_the_unbounded_dp() {
    let mut rng = TestRng(31);
    let d = normal_distinct(&mut rng, 3000, 1.0);
    let mut dp = Dp::default();
    dp.prefix.fill(&d.values, &d.weights);
    assert_eq!(dp.run(8, 0.0, Kernel::Scalar), None);
    let unbounded = dp.run(8, f64::INFINITY, Kernel::Scalar).expect("unbounded");
    assert_eq!(dp.cluster_ends(&d.values, &d.weights, 8, Kernel::Scalar), unbounded);
}

/// Where a grouped palettization's time goes, phase by phase in a one-thread pool, for the 256
/// groups of 16 × 1024 normal(0, 0.02) weights of a 4096 × 1024 tensor, and how many penalized
/// solves they took: `cargo test --release -p edgec-passes timing_of_group_phases -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn timing_of_group_phases() {
    use std::time::{Duration, Instant};
    const GROUP: usize = 16 * 1024;
    const CLUSTERS: usize = 16;
    let mut rng = TestRng(2);
    let w: Vec<f16> = (0..4096 * 1024).map(|_| rng.normal_f16(0.02)).collect();
    let groups = w.len() / GROUP;
    let kernel = Kernel::detect();
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a 1-thread pool");
    // A layer's parallel split would otherwise hand work to the global pool from outside it.
    let (phases, distinct_values, (solves, declined)) = single.install(|| {
        let mut scratch = GroupScratch::default();
        let mut phases = [Duration::ZERO; 4];
        let mut distinct_values = 0;
        for group in w.chunks(GROUP) {
            let mut lap = Instant::now();
            let mut phase = |at: usize| {
                phases[at] += lap.elapsed();
                lap = Instant::now();
            };
            scratch.distinct.fill_from_values(group, &mut scratch.counts);
            phase(0);
            let (values, weights) = (&scratch.distinct.values, &scratch.distinct.weights);
            let ends = scratch.dp.cluster_ends(values, weights, CLUSTERS, kernel);
            phase(1);
            let means = cluster_means(values, weights, &ends);
            let lut: Vec<f16> = means.iter().map(|&mean| round_f64_to_f16(mean)).collect();
            let entries = nearest_entries(values, &lut);
            phase(2);
            let table = entry_table(&scratch.distinct.bits, &entries, &mut scratch.table);
            let indices: Vec<u8> = group.iter().map(|v| table[usize::from(v.to_bits())]).collect();
            std::hint::black_box(indices);
            phase(3);
            distinct_values += values.len();
        }
        (phases, distinct_values, scratch.dp.penalty_counts())
    });
    let total: Duration = phases.iter().sum();
    println!(
        "{groups} groups of {GROUP}, {} distinct values on average: {total:.2?} on one thread",
        distinct_values / groups
    );
    let names = [
        "distinct values",
        "optimal partition (prefix sums, Lloyd, penalized solves, layered DP if declined)",
        "means + reassignment",
        "indices",
    ];
    for (name, time) in names.iter().zip(phases) {
        println!(
            "  {name}: {time:.2?} ({:.1}%)",
            100.0 * time.as_secs_f64() / total.as_secs_f64()
        );
    }
    println!("  penalized solves: {solves} for {groups} groups; {declined} groups fell back to the layered DP");
}

/// FNV-1a over the LUTs' bit patterns, then the indices.
fn digest(grouped: &GroupedPalette) -> u64 {
    let bytes = grouped.luts.iter().flatten().flat_map(|v| v.to_bits().to_le_bytes());
    bytes
        .chain(grouped.indices.iter().copied())
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// The grouped output on weight-like tensors is pinned bit for bit (the other tests compare
/// SSE, which a different tie-break or a pruning slip could leave equal), so that a faster DP
/// must reproduce it exactly. Change the digests only for a deliberate change of output.
#[test]
fn grouped_output_is_pinned_bit_for_bit() {
    let mut rng = TestRng(41);
    let cases = [
        ([32, 2048], 0, 4, 0.02),
        ([2048, 64], 1, 4, 0.02),
        ([64, 1024], 0, 2, 1.0),
    ];
    let digests: Vec<u64> = cases
        .iter()
        .map(|&(shape, axis, bits, sigma)| {
            let w: Vec<f16> = (0..shape[0] * shape[1]).map(|_| rng.normal_f16(sigma)).collect();
            digest(&palettize_grouped(&w, &shape, axis, 16, bits).expect("valid"))
        })
        .collect();
    assert_eq!(
        digests,
        [0xfdd3_f16b_6de3_ef56, 0x5b46_7784_38a7_9f62, 0x164c_6f41_c301_338f]
    );
}

/// Weight-like inputs (fp16 normal samples and the random group generator's kinds) at every
/// cluster count: where the penalty route answers, its partition is the layered DP's.
#[test]
fn penalized_partitions_match_the_layered_dp() {
    let mut rng = TestRng(43);
    let (mut answered, mut normal_cases, mut normal_answered) = (0, 0, 0);
    let mut cases = 0;
    for case in 0..24 {
        let count = [3000, 16 * 1024, 40_000][case % 3];
        let normal = case % 2 == 0;
        let elements: Vec<f16> = if normal {
            (0..count).map(|_| rng.normal_f16(0.02)).collect()
        } else {
            random_elements(&mut rng, count)
        };
        let mut distinct = Distinct::default();
        distinct.fill_from_counts(&histogram(&elements));
        let (values, weights) = (&distinct.values, &distinct.weights);
        for k in [2, 4, 8, 16, 64, 256].into_iter().filter(|&k| k < values.len()) {
            let mut dp = Dp::default();
            dp.prefix.fill(values, weights);
            // Half the cases take the product's first penalty, half the law's (its fallback).
            let (first, estimate) = dp.penalty_estimates(values, k);
            let first = if case % 4 < 2 { first } else { 0.0 };
            let layered = dp.run(k, f64::INFINITY, Kernel::detect()).expect("unbounded");
            let mut scalar = Penalized::default();
            let by_scalar = scalar.cluster_ends(&dp.prefix, k, first, estimate, Kernel::Scalar);
            let mut detected = Penalized::default();
            let by_detected = detected.cluster_ends(&dp.prefix, k, first, estimate, Kernel::detect());
            let context = format!("case {case} n={} k={k}", values.len());
            assert_eq!(by_scalar, by_detected, "{context}: kernels differ");
            assert_eq!(scalar.counts(), detected.counts(), "{context}: kernels differ");
            cases += 1;
            normal_cases += usize::from(normal);
            if let Some(ends) = by_scalar {
                answered += 1;
                normal_answered += usize::from(normal);
                assert_eq!(ends.len(), k, "{context}");
                let sse = |ends: &[usize]| {
                    let starts = std::iter::once(0).chain(ends.iter().copied());
                    starts
                        .zip(ends.iter().copied())
                        .map(|(a, b)| dp.prefix.cluster_cost(a, b))
                        .sum::<f64>()
                };
                assert_same_sse(sse(&ends), sse(&layered), &context);
            }
        }
    }
    println!("penalized route answered {answered} of {cases} cases ({normal_answered} of {normal_cases} normal)");
    // The route must actually be taken on weight-like data for this test to mean anything.
    assert!(
        normal_answered * 10 >= normal_cases * 9,
        "{normal_answered} of {normal_cases}"
    );
}

/// Eight far-apart pairs: each cluster beyond 8 splits one pair and saves the same 0.5, so
/// OPT(c) is linear for 8 ≤ c ≤ 16 and no penalty isolates a count strictly between: at the
/// chord's slope every such count ties. The route either returns a tied optimum that happens
/// to have k clusters or declines, and the layered DP answers; either way the result is optimal,
/// and some counts do decline, so the fallback is exercised.
#[test]
fn penalized_route_declines_where_no_penalty_isolates_k() {
    let values: Vec<f64> = (0..16).map(|i| (i / 2 * 100 + i % 2) as f64).collect();
    let weights = vec![1.0; 16];
    let mut declined = Vec::new();
    for k in 9..16 {
        let mut dp = Dp::default();
        dp.prefix.fill(&values, &weights);
        let (first, estimate) = dp.penalty_estimates(&values, k);
        let mut penalized = Penalized::default();
        if penalized
            .cluster_ends(&dp.prefix, k, first, estimate, Kernel::detect())
            .is_none()
        {
            declined.push(k);
        }
        let partition = optimal_partition(&values, &weights, k);
        assert_eq!(partition.ends.len(), k);
        assert_same_sse(partition.sse, (16 - k) as f64 * 0.5, &format!("pairs k={k}"));
    }
    println!("declined: {declined:?}");
    assert!(!declined.is_empty(), "no count declined");
}
