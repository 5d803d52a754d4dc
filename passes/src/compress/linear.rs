//! Linear symmetric quantization, coremltools' `LINEAR_SYMMETRIC` with a signed dtype
//! (compression.md §a.4): per block, `scale = max|w| / qmax` stored as fp16, and
//! `q = clamp(round_half_even(w / scale), -qmax, qmax)` with qmax = 2^(bits-1) - 1, so int8 codes
//! lie in [-127, 127] and int4 codes in [-7, 7]. Core ML reconstructs `fp16(f32(q) · f32(scale))`.

use super::{check_finite, CompressError, CHUNK};
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Elements converted between fp16 and f32 at a time (half's slice conversions use F16C).
const BATCH: usize = 256;

/// Codes, one per element in the input's row-major order, and one fp16 scale per block.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub data: Vec<i8>,
    /// Row-major in `scale_shape`.
    pub scales: Vec<f16>,
    /// `shape[i] / block_i` (1 where the block spans the axis); same rank as the input.
    pub scale_shape: Vec<usize>,
}

impl Quantized {
    /// The dense fp16 tensor Core ML reconstructs: `fp16(f32(q) · f32(scale))`.
    ///
    /// # Panics
    /// If `shape` is not the shape this tensor was quantized with.
    pub fn dequantize(&self, shape: &[usize]) -> Vec<f16> {
        assert_eq!(
            shape.len(),
            self.scale_shape.len(),
            "Quantized::dequantize: rank mismatch"
        );
        assert_eq!(
            shape.iter().product::<usize>(),
            self.data.len(),
            "Quantized::dequantize: shape mismatch"
        );
        let mut dense = vec![f16::ZERO; self.data.len()];
        if dense.is_empty() {
            return dense;
        }
        let extents = shape
            .iter()
            .zip(&self.scale_shape)
            .map(|(&size, &scales)| size / scales);
        let layout = BlockLayout::new(shape, extents);
        let (row_len, block_len) = (layout.row_len(), layout.block_len());
        dense
            .par_chunks_mut(row_len)
            .zip(self.data.par_chunks(row_len))
            .enumerate()
            .with_min_len((CHUNK / row_len).max(1))
            .for_each(|(row, (out, codes))| {
                let scales = &self.scales[layout.scale_base(row)..];
                let mut floats = [0f32; BATCH];
                for ((out, codes), scale) in out.chunks_mut(block_len).zip(codes.chunks(block_len)).zip(scales) {
                    let scale = scale.to_f32();
                    for (out, codes) in out.chunks_mut(BATCH).zip(codes.chunks(BATCH)) {
                        let floats = &mut floats[..out.len()];
                        floats
                            .iter_mut()
                            .zip(codes)
                            .for_each(|(f, &q)| *f = f32::from(q) * scale);
                        out.convert_from_f32_slice(floats);
                    }
                }
            });
        dense
    }
}

impl Quantized {
    /// `q · scale` in f32, each scale serving its block (`shape[i] / scale_shape[i]` along axis
    /// i): what an fp32 program computes with.
    pub fn dequantize_f32(&self, shape: &[usize]) -> Vec<f32> {
        let rank = shape.len();
        let block: Vec<usize> = (0..rank).map(|i| shape[i] / self.scale_shape[i].max(1)).collect();
        let mut scale_strides = vec![1usize; rank];
        for i in (0..rank.saturating_sub(1)).rev() {
            scale_strides[i] = scale_strides[i + 1] * self.scale_shape[i + 1];
        }
        let mut coord = vec![0usize; rank];
        let mut out = Vec::with_capacity(self.data.len());
        for &q in &self.data {
            let at: usize = (0..rank).map(|i| coord[i] / block[i] * scale_strides[i]).sum();
            out.push(f32::from(q) * self.scales[at].to_f32());
            for i in (0..rank).rev() {
                coord[i] += 1;
                if coord[i] < shape[i] {
                    break;
                }
                coord[i] = 0;
            }
        }
        out
    }
}

/// Quantizes the row-major tensor `shape` to signed `bits`-bit codes (8 or 4), one scale per
/// block. `block[i]` is the block size along axis i, 0 meaning the whole axis: per output
/// channel is 1 on the output axis and 0 elsewhere; blocks of B along the input axis are 1 on
/// the output axis, B on the input axis, 0 elsewhere.
pub fn quantize(values: &[f16], shape: &[usize], block: &[usize], bits: u32) -> Result<Quantized, CompressError> {
    let qmax = match bits {
        4 | 8 => ((1i32 << (bits - 1)) - 1) as f32,
        _ => {
            return Err(CompressError::Shape(format!(
                "linear quantization takes 4 or 8 bits, not {bits}"
            )))
        }
    };
    if block.len() != shape.len() {
        return Err(CompressError::Shape(format!(
            "block {block:?} does not have the rank of shape {shape:?}"
        )));
    }
    if shape.iter().product::<usize>() != values.len() {
        return Err(CompressError::Shape(format!(
            "shape {shape:?} does not hold {} elements",
            values.len()
        )));
    }
    if let Some(axis) = (0..shape.len()).find(|&i| block[i] != 0 && shape[i] % block[i] != 0) {
        return Err(CompressError::Shape(format!(
            "axis {axis} of shape {shape:?} is not a multiple of its block size {}",
            block[axis]
        )));
    }
    check_finite(values)?;
    let scale_shape: Vec<usize> = shape
        .iter()
        .zip(block)
        .map(|(&size, &b)| size.checked_div(b).unwrap_or(1))
        .collect();
    let scale_count: usize = scale_shape.iter().product();
    let mut data = vec![0i8; values.len()];
    if values.is_empty() {
        return Ok(Quantized {
            data,
            scales: vec![f16::ZERO; scale_count],
            scale_shape,
        });
    }
    let extents = shape.iter().zip(block).map(|(&size, &b)| if b == 0 { size } else { b });
    let layout = BlockLayout::new(shape, extents);
    let (row_len, block_len) = (layout.row_len(), layout.block_len());

    // R = max|w| per block. Finite fp16 magnitudes order like their bit patterns without the
    // sign, so the maximum is taken on those and converted (exactly) to f32 once per block.
    let mut max_magnitude = vec![0u16; scale_count];
    for (row, row_values) in values.chunks(row_len).enumerate() {
        let base = layout.scale_base(row);
        for (max, block_values) in max_magnitude[base..].iter_mut().zip(row_values.chunks(block_len)) {
            *max = block_values.iter().fold(*max, |m, v| m.max(v.to_bits() & 0x7FFF));
        }
    }
    let scales: Vec<f16> = max_magnitude
        .iter()
        .map(|&bits| block_scale(f16::from_bits(bits).to_f32(), qmax))
        .collect();

    values
        .par_chunks(row_len)
        .zip(data.par_chunks_mut(row_len))
        .enumerate()
        .with_min_len((CHUNK / row_len).max(1))
        .for_each(|(row, (row_values, codes))| {
            let row_scales = &scales[layout.scale_base(row)..];
            for ((block_values, codes), scale) in row_values
                .chunks(block_len)
                .zip(codes.chunks_mut(block_len))
                .zip(row_scales)
            {
                let scale = scale.to_f32();
                if scale == 0.0 {
                    continue; // an all-zero block: codes stay 0 rather than 0/0
                }
                let mut floats = [0f32; BATCH];
                for (block_values, codes) in block_values.chunks(BATCH).zip(codes.chunks_mut(BATCH)) {
                    let floats = &mut floats[..block_values.len()];
                    block_values.convert_to_f32_slice(floats);
                    for (code, &w) in codes.iter_mut().zip(floats.iter()) {
                        *code = round_half_even_to_i8((w / scale).clamp(-qmax, qmax));
                    }
                }
            }
        });
    Ok(Quantized {
        data,
        scales,
        scale_shape,
    })
}

/// Rounds `x` (|x| ≤ 127) to the nearest integer, ties to even. Adding 1.5·2²³ leaves exactly
/// integer precision, so the f32 addition itself rounds half to even, and the integer is the
/// low bits of the sum. (`f32::round_ties_even` is a libm call on baseline x86-64.)
#[inline]
fn round_half_even_to_i8(x: f32) -> i8 {
    const SHIFTER: f32 = 12_582_912.0;
    (x + SHIFTER).to_bits().wrapping_sub(SHIFTER.to_bits()) as i32 as i8
}

/// `R / qmax` rounded to fp16 (nearest even). A nonzero range whose scale would round to 0 (R
/// below ~qmax·2⁻²⁵) gets the smallest subnormal instead, so the block keeps its values.
fn block_scale(range: f32, qmax: f32) -> f16 {
    let scale = f16::from_f32(range / qmax);
    if range > 0.0 && scale == f16::ZERO {
        f16::from_bits(0x0001)
    } else {
        scale
    }
}

/// A row-major tensor seen as (size, block extent) axes, where every axis lying whole inside
/// its block is merged into the axis before it (that changes neither the element order nor
/// the scale order). Rows are the last merged axis: they hold whole blocks, one after another.
struct BlockLayout {
    axes: Vec<(usize, usize)>,
}

impl BlockLayout {
    /// `extents[i]` divides `shape[i]`, and no axis is empty.
    fn new(shape: &[usize], extents: impl Iterator<Item = usize>) -> Self {
        let mut axes: Vec<(usize, usize)> = Vec::with_capacity(shape.len());
        for (&size, extent) in shape.iter().zip(extents) {
            match axes.last_mut() {
                Some((outer_size, outer_extent)) if extent == size => {
                    *outer_size *= size;
                    *outer_extent *= size;
                }
                _ => axes.push((size, extent)),
            }
        }
        if axes.is_empty() {
            axes.push((1, 1)); // a scalar
        }
        BlockLayout { axes }
    }

    fn last(&self) -> (usize, usize) {
        self.axes[self.axes.len() - 1]
    }

    fn row_len(&self) -> usize {
        self.last().0
    }

    fn block_len(&self) -> usize {
        self.last().1
    }

    /// The index of the first scale of a row.
    fn scale_base(&self, row: usize) -> usize {
        let (size, extent) = self.last();
        let mut stride = size / extent;
        let (mut rest, mut base) = (row, 0);
        for &(size, extent) in self.axes[..self.axes.len() - 1].iter().rev() {
            base += rest % size / extent * stride;
            rest /= size;
            stride *= size / extent;
        }
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::TestRng;

    fn h(v: f32) -> f16 {
        f16::from_f32(v)
    }

    fn random(len: usize, seed: u64) -> Vec<f16> {
        let mut rng = TestRng(seed);
        (0..len).map(|_| rng.normal_f16(0.5)).collect()
    }

    /// Half the fp16 spacing at |x|: what rounding `q·scale` to fp16 may add.
    fn half_ulp(x: f16) -> f32 {
        let magnitude = f16::from_bits(x.to_bits() & 0x7FFF);
        (f16::from_bits(magnitude.to_bits() + 1).to_f32() - magnitude.to_f32()) / 2.0
    }

    /// Quantizes with a naive per-element block lookup, the reference for the merged layout.
    fn reference(values: &[f16], shape: &[usize], block: &[usize], qmax: f32) -> (Vec<i8>, Vec<f16>) {
        let extent: Vec<usize> = shape
            .iter()
            .zip(block)
            .map(|(&s, &b)| if b == 0 { s } else { b })
            .collect();
        let counts: Vec<usize> = shape.iter().zip(&extent).map(|(s, e)| s / e).collect();
        let block_of = |mut e: usize| {
            let (mut flat, mut stride) = (0, 1);
            for axis in (0..shape.len()).rev() {
                flat += e % shape[axis] / extent[axis] * stride;
                e /= shape[axis];
                stride *= counts[axis];
            }
            flat
        };
        let mut ranges = vec![0f32; counts.iter().product()];
        for (e, v) in values.iter().enumerate() {
            ranges[block_of(e)] = ranges[block_of(e)].max(v.to_f32().abs());
        }
        let scales: Vec<f16> = ranges.iter().map(|&r| block_scale(r, qmax)).collect();
        let codes = values.iter().enumerate().map(|(e, v)| {
            let s = scales[block_of(e)].to_f32();
            if s == 0.0 {
                0
            } else {
                (v.to_f32() / s).round_ties_even().clamp(-qmax, qmax) as i8
            }
        });
        (codes.collect(), scales)
    }

    fn assert_error_within_half_scale(w: &[f16], q: &Quantized, shape: &[usize], block_of: impl Fn(usize) -> usize) {
        let dense = q.dequantize(shape);
        for (e, (&w, &d)) in w.iter().zip(&dense).enumerate() {
            let scale = q.scales[block_of(e)].to_f32();
            let exact = f32::from(q.data[e]) * scale;
            assert!(
                (w.to_f32() - exact).abs() <= scale / 2.0,
                "element {e}: {w} vs {exact} (scale {scale})"
            );
            assert!(
                (w.to_f32() - d.to_f32()).abs() <= scale / 2.0 + half_ulp(d),
                "element {e}: {w} vs {d}"
            );
        }
    }

    #[test]
    fn per_channel_int8_on_4x8() {
        let w = random(32, 1);
        let q = quantize(&w, &[4, 8], &[1, 0], 8).expect("valid");
        assert_eq!(q.scale_shape, [4, 1]);
        for (c, row) in w.chunks(8).enumerate() {
            let range = row.iter().map(|v| v.to_f32().abs()).fold(0.0, f32::max);
            assert_eq!(q.scales[c], h(range / 127.0));
            assert!(q.data[c * 8..][..8].iter().any(|&code| code.abs() == 127));
        }
        assert!(q.data.iter().all(|&code| (-127..=127).contains(&code)));
        assert_error_within_half_scale(&w, &q, &[4, 8], |e| e / 8);
    }

    #[test]
    fn blockwise_int4_on_2x32_with_blocks_of_16() {
        let w = random(64, 2);
        let q = quantize(&w, &[2, 32], &[1, 16], 4).expect("valid");
        assert_eq!(q.scale_shape, [2, 2]);
        assert_eq!(q.scales.len(), 4);
        for (b, block) in w.chunks(16).enumerate() {
            let range = block.iter().map(|v| v.to_f32().abs()).fold(0.0, f32::max);
            assert_eq!(q.scales[b], h(range / 7.0));
        }
        assert!(q.data.iter().all(|&code| (-7..=7).contains(&code)));
        assert_error_within_half_scale(&w, &q, &[2, 32], |e| e / 16);
    }

    #[test]
    fn merged_layouts_match_a_naive_block_lookup() {
        let cases: [(&[usize], &[usize], u32); 6] = [
            (&[4, 2, 3, 3], &[1, 0, 0, 0], 8),
            (&[4, 6, 3, 3], &[1, 2, 0, 0], 4),
            (&[2, 4, 6], &[0, 2, 3], 8),
            (&[6, 4], &[0, 1], 8),
            (&[3, 4, 5], &[0, 0, 0], 4),
            (&[], &[], 8),
        ];
        for (seed, (shape, block, bits)) in cases.into_iter().enumerate() {
            let w = random(shape.iter().product(), seed as u64 + 10);
            let q = quantize(&w, shape, block, bits).expect("valid");
            let (codes, scales) = reference(&w, shape, block, if bits == 8 { 127.0 } else { 7.0 });
            assert_eq!(
                (&q.data, &q.scales),
                (&codes, &scales),
                "shape {shape:?} block {block:?}"
            );
            assert_eq!(q.scale_shape.len(), shape.len());
            assert_eq!(q.dequantize(shape).len(), w.len());
        }
    }

    #[test]
    fn zero_block_gets_zero_scale_and_codes() {
        let mut w = random(64, 3);
        w[..16].fill(f16::ZERO);
        w[3] = f16::NEG_ZERO;
        let q = quantize(&w, &[2, 32], &[1, 16], 4).expect("valid");
        assert_eq!(q.scales[0], f16::ZERO);
        assert!(q.data[..16].iter().all(|&code| code == 0));
        let dense = q.dequantize(&[2, 32]);
        assert!(dense[..16].iter().all(|&d| d == f16::ZERO));
        assert!(dense.iter().all(|d| d.is_finite()));
    }

    #[test]
    fn tiny_block_keeps_a_nonzero_scale() {
        let w: Vec<f16> = [3, 1, 0x8002, 0].map(f16::from_bits).to_vec(); // subnormals ±3·2⁻²⁴, …
        let q = quantize(&w, &[4], &[0], 8).expect("valid");
        assert_eq!(q.scales, [f16::from_bits(0x0001)]);
        assert_eq!(q.data, [3, 1, -2, 0]);
        assert_eq!(
            q.dequantize(&[4]),
            w.iter()
                .map(|&v| if v == f16::ZERO { f16::ZERO } else { v })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn codes_round_half_to_even() {
        // max|w| = 127 makes the int8 scale exactly 1, so w / scale is w itself.
        let w: Vec<f16> = [127.0, 2.5, 3.5, -2.5, -3.5, 0.5, 1.5, -126.5].map(h).to_vec();
        let q = quantize(&w, &[8], &[0], 8).expect("valid");
        assert_eq!(q.scales, [h(1.0)]);
        assert_eq!(q.data, [127, 2, 4, -2, -4, 0, 2, -126]);
    }

    #[test]
    fn shifter_rounding_matches_round_ties_even() {
        let mut rng = TestRng(6);
        let quarters = (-508..=508).map(|i| i as f32 / 4.0);
        let random = (0..10_000).map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 254.0 - 127.0);
        for x in quarters.chain(random) {
            assert_eq!(round_half_even_to_i8(x), x.round_ties_even() as i8, "{x}");
        }
    }

    #[test]
    fn non_finite_values_are_rejected() {
        for bad in [f16::NAN, f16::INFINITY, f16::NEG_INFINITY] {
            let mut w = random(64, 4);
            w[40] = bad;
            let Err(CompressError::NonFinite(msg)) = quantize(&w, &[2, 32], &[1, 0], 8) else {
                panic!("{bad} accepted")
            };
            assert!(msg.contains("element 40"), "{msg}");
        }
    }

    #[test]
    fn bad_blocks_shapes_and_widths_are_rejected() {
        let w = random(64, 5);
        let shape_error = |r: Result<Quantized, CompressError>| matches!(r, Err(CompressError::Shape(_)));
        assert!(shape_error(quantize(&w, &[2, 32], &[1, 12], 4)));
        assert!(shape_error(quantize(&w, &[2, 32], &[1, 64], 4)));
        assert!(shape_error(quantize(&w, &[2, 32], &[1], 8)));
        assert!(shape_error(quantize(&w, &[2, 30], &[1, 0], 8)));
        for bits in [0, 2, 3, 16] {
            assert!(shape_error(quantize(&w, &[2, 32], &[1, 0], bits)), "bits={bits}");
        }
        let empty = quantize(&[], &[0, 4], &[1, 0], 8).expect("empty is fine");
        assert!(empty.data.is_empty() && empty.scales.is_empty());
    }
}
