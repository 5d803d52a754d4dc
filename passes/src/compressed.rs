//! Compressed weights in the IR: which constants the back end stores compressed, in what form,
//! and the per-tensor report. The constant itself keeps its dense values, so that a weight can
//! be left dense again after the fact (the driver's compression guard does, when the outputs
//! move too far); [`Graph::compressed`](crate::Graph::compressed) says how to store it, and
//! [`CompressedForm::reconstruct`] gives the values the device computes with. The algorithms live in
//! [`crate::compress`]; the schemes a user asks for, and the tensors they apply to, in
//! [`WeightRule`].

use crate::ir::{DType, Tensor, TensorType};
use half::f16;
use std::fmt;

/// How a weight is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Dense at the compute precision (the default).
    Dense,
    /// `bits`-bit palettization: one LUT per tensor, or per `group` output channels.
    Palettize { bits: u32, group: Option<usize> },
    /// Linear symmetric: int8 per output channel (`block: None`), or `bits` (8 or 4) per
    /// `block` elements along the input axis.
    Linear { bits: u32, block: Option<usize> },
    /// The int8 or uint8 codes the model itself stores (QDQ), with its scales and zero points.
    FromModel { unsigned: bool },
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Dense => f.write_str("dense"),
            Scheme::Palettize { bits, group: None } => write!(f, "palettize:{bits}"),
            Scheme::Palettize { bits, group: Some(g) } => write!(f, "palettize:{bits}:g{g}"),
            Scheme::Linear { bits, block: None } => write!(f, "int{bits}"),
            Scheme::Linear { bits, block: Some(b) } => write!(f, "int{bits}:b{b}"),
            Scheme::FromModel { unsigned: false } => f.write_str("int8 (the model's)"),
            Scheme::FromModel { unsigned: true } => f.write_str("uint8 (the model's)"),
        }
    }
}

/// The consumer families a selector can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Conv,
    Linear,
    Matmul,
    Embedding,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Conv => "conv",
            Family::Linear => "linear",
            Family::Matmul => "matmul",
            Family::Embedding => "embedding",
        }
    }
}

/// Which weights a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    All,
    Family(Family),
    /// A glob (`*`, `?`) over the weight's name.
    Name(String),
}

impl Selector {
    pub fn matches(&self, family: Family, name: &str) -> bool {
        match self {
            Selector::All => true,
            Selector::Family(f) => *f == family,
            Selector::Name(glob) => glob_match(glob.as_bytes(), name.as_bytes()),
        }
    }
}

/// `*` matches any run, `?` one byte.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && glob_match(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

/// `--weights [SELECTOR=]SCHEME`; a later rule wins for the weights it selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightRule {
    pub selector: Selector,
    pub scheme: Scheme,
}

/// The stored form of a compressed weight (fp16 LUT entries and scales; the back end widens
/// them for fp32 programs). Indices and codes are kept packed exactly as Core ML stores them
/// (see [`pack_bits`]), so a large model's compressed weights cost their stored size here too.
#[derive(Clone, Debug)]
pub enum CompressedForm {
    /// `luts[g]` serves the `g`-th group of channels along `axis` (one group: per tensor);
    /// `indices`: one `bits`-bit index per element, row-major, packed.
    Palette {
        bits: u32,
        axis: usize,
        luts: Vec<Vec<f16>>,
        indices: Vec<u8>,
    },
    /// `data`: one `bits`-bit two's-complement code per element, row-major, packed (int8: one
    /// byte each); `scales` row-major in `scale_shape` (same rank as the weight).
    Linear {
        bits: u32,
        axis: usize,
        data: Vec<u8>,
        scales: Vec<f16>,
        scale_shape: Vec<usize>,
    },
    /// The model's own codes and parameters (see [`Prequantized`]), stored as they are.
    FromModel(Prequantized),
}

impl CompressedForm {
    /// The dense tensor Core ML reconstructs from this form, for a weight of type `ty`: LUT
    /// entries by index; `fp16(q · scale)` in an fp16 program, `q · scale` in fp32 in an fp32
    /// one (the device multiplies in the compute precision).
    ///
    /// # Panics
    /// If `ty` is not the type of the weight this form was built from.
    pub fn reconstruct(&self, ty: &TensorType) -> Tensor {
        let (shape, count) = (&ty.shape, ty.num_elements());
        match self {
            CompressedForm::Palette {
                bits,
                axis,
                luts,
                indices,
            } => {
                let palette = crate::compress::GroupedPalette {
                    luts: luts.clone(),
                    indices: unpack_bits(indices, count, *bits),
                };
                Tensor::from_f16(shape.clone(), &palette.dequantize(shape, *axis)).cast(ty.dtype)
            }
            CompressedForm::Linear {
                bits,
                data,
                scales,
                scale_shape,
                ..
            } => {
                let sign_bit = 1u8 << (bits - 1);
                let codes = unpack_bits(data, count, *bits)
                    .into_iter()
                    .map(|c| {
                        if c & sign_bit != 0 {
                            (i16::from(c) - (1 << bits)) as i8
                        } else {
                            c as i8
                        }
                    })
                    .collect();
                let q = crate::compress::Quantized {
                    data: codes,
                    scales: scales.clone(),
                    scale_shape: scale_shape.clone(),
                };
                match ty.dtype {
                    DType::F32 => Tensor::from_f32(shape.clone(), &q.dequantize_f32(shape)),
                    _ => Tensor::from_f16(shape.clone(), &q.dequantize(shape)).cast(ty.dtype),
                }
            }
            CompressedForm::FromModel(model) => {
                let values = model
                    .dequantize(ty.dtype == DType::F16)
                    .expect("a stored form has whole blocks");
                Tensor::from_f32(shape.clone(), &values).cast(ty.dtype)
            }
        }
    }
}

/// The inverse of [`pack_bits`]: `count` values of `bits` bits each.
pub fn unpack_bits(packed: &[u8], count: usize, bits: u32) -> Vec<u8> {
    let mask = (1u16 << bits) - 1;
    (0..count)
        .map(|i| {
            let bit = i * bits as usize;
            let (byte, shift) = (bit / 8, bit % 8);
            let low = u16::from(packed[byte]);
            let high = packed.get(byte + 1).map_or(0, |&b| u16::from(b));
            (((high << 8 | low) >> shift) & mask) as u8
        })
        .collect()
}

/// `values` (each below 2^bits; higher bits are dropped) packed as Core ML stores sub-byte data:
/// element `i` occupies bits `[i·bits, i·bits + bits)` of a little-endian bit stream, LSB first.
pub fn pack_bits(values: impl IntoIterator<Item = u8>, count: usize, bits: u32) -> Vec<u8> {
    let mut out = vec![0u8; (count * bits as usize).div_ceil(8)];
    let mask = ((1u16 << bits) - 1) as u8;
    for (i, v) in values.into_iter().enumerate() {
        let bit = i * bits as usize;
        let (byte, shift) = (bit / 8, bit % 8);
        let v = u16::from(v & mask) << shift;
        out[byte] |= v as u8;
        if shift + bits as usize > 8 {
            out[byte + 1] |= (v >> 8) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{pack_bits, unpack_bits};

    #[test]
    fn unpacking_inverts_packing_for_every_width() {
        for bits in 1..=8u32 {
            let values: Vec<u8> = (0..37u32).map(|i| ((i * 7 + 3) % (1 << bits)) as u8).collect();
            let packed = pack_bits(values.iter().copied(), values.len(), bits);
            assert_eq!(unpack_bits(&packed, values.len(), bits), values, "{bits} bits");
        }
    }

    #[test]
    fn packs_lsb_first_across_byte_boundaries() {
        assert_eq!(pack_bits([1, 2, 3, 4], 4, 4), [0x21, 0x43]);
        assert_eq!(pack_bits([1, 2, 3, 0], 4, 2), [0b00_11_10_01]);
        assert_eq!(pack_bits([1, 0, 1, 1, 0, 0, 0, 0, 1], 9, 1), [0b0000_1101, 0b1]);
        // 6-bit: e0 = 0b111111 fills bits 0..6, e1 = 0b000001 starts at bit 6.
        assert_eq!(pack_bits([63, 1], 2, 6), [0b0111_1111, 0b0000]);
        assert_eq!(pack_bits([5, 7, 2], 3, 3), [0b10_111_101, 0b0]);
        // int4 -1 and -8 as two's-complement nibbles.
        assert_eq!(pack_bits([(-1i8 as u8) & 0xf, (-8i8 as u8) & 0xf], 2, 4), [0x8f]);
        assert_eq!(pack_bits([200, 7], 2, 8), [200, 7]);
    }
}

/// One row of the weight report.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightReport {
    pub name: String,
    /// The consumer op (`conv`, `linear`, `matmul`, `gather`) and its ONNX node.
    pub consumer: String,
    pub origin: String,
    pub shape: Vec<usize>,
    /// The scheme applied, or `Dense` when left alone (see `note`).
    pub scheme: Scheme,
    /// Groups or blocks, in words ("4 LUTs of 16 channels", "blocks of 32").
    pub layout: String,
    pub bytes_before: usize,
    pub bytes_after: usize,
    pub mse: f64,
    pub max_abs: f64,
    pub snr_db: f64,
    /// Why it was left alone, or what was adjusted (a group size lowered to divide the channels).
    pub note: String,
}

/// A weight the model itself stores quantized (an ONNX DequantizeLinear of a constant), as
/// the model has it: `value = (code − zero_point) · scale`. `codes` and `zero_points` are the
/// raw bytes (int8 as two's complement, or uint8); `scales` and `zero_points` are row-major in
/// `param_shape`, which has the weight's rank, each dim 1 (shared), the weight's dim (one per
/// index) or a number of blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct Prequantized {
    pub shape: Vec<usize>,
    pub unsigned: bool,
    pub codes: Vec<u8>,
    pub scales: Vec<f32>,
    pub zero_points: Vec<u8>,
    pub param_shape: Vec<usize>,
}

impl Prequantized {
    /// A code or zero point byte as the integer it encodes.
    pub fn decode(&self, byte: u8) -> i32 {
        if self.unsigned {
            i32::from(byte)
        } else {
            i32::from(byte as i8)
        }
    }

    /// The same weight transposed (rank 2): what a folded transpose or `fuse_linear` makes of
    /// a MatMul weight.
    pub fn transposed(&self) -> Option<Prequantized> {
        if self.shape.len() != 2 || self.param_shape.len() != 2 {
            return None;
        }
        // Bytes (codes, zero points) and scales move like any tensor's elements.
        let flip_bytes = |values: &[u8], shape: &[usize]| {
            let t = Tensor {
                ty: TensorType::new(DType::U8, shape.to_vec()),
                data: values.to_vec().into(),
            };
            t.transposed(&[1, 0]).data.to_vec()
        };
        let scales = Tensor::from_f32(self.param_shape.clone(), &self.scales).transposed(&[1, 0]);
        Some(Prequantized {
            shape: vec![self.shape[1], self.shape[0]],
            unsigned: self.unsigned,
            codes: flip_bytes(&self.codes, &self.shape),
            scales: scales.to_f32_vec(),
            zero_points: flip_bytes(&self.zero_points, &self.param_shape),
            param_shape: vec![self.param_shape[1], self.param_shape[0]],
        })
    }

    /// Elements per block along each axis, if every dim is a whole number of blocks.
    pub fn blocks(&self) -> Option<Vec<usize>> {
        self.shape
            .iter()
            .zip(&self.param_shape)
            .map(|(&d, &p)| (p > 0 && d % p == 0).then(|| d / p))
            .collect()
    }

    /// The dense values, `(code − zero_point) · scale` in f32 (as ONNX computes them), with
    /// `scale` first rounded to fp16 when `fp16_scales` (as an fp16 program stores it).
    pub fn dequantize(&self, fp16_scales: bool) -> Option<Vec<f32>> {
        let blocks = self.blocks()?;
        let rank = self.shape.len();
        let mut coords = vec![0usize; rank];
        let mut out = Vec::with_capacity(self.codes.len());
        for &code in &self.codes {
            let mut j = 0;
            for a in 0..rank {
                j = j * self.param_shape[a] + coords[a] / blocks[a];
            }
            let scale = if fp16_scales {
                f16::from_f32(self.scales[j]).to_f32()
            } else {
                self.scales[j]
            };
            out.push((self.decode(code) - self.decode(self.zero_points[j])) as f32 * scale);
            for a in (0..rank).rev() {
                coords[a] += 1;
                if coords[a] < self.shape[a] {
                    break;
                }
                coords[a] = 0;
            }
        }
        Some(out)
    }
}
