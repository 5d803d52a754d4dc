//! Emission of compressed weights (docs: coreml-format.md §6): a compressed constant becomes a
//! `constexpr_*` op under the constant's own MIL name, so its readers bind to it unchanged.
//!
//! - Before iOS 18, every parameter is an attribute: `constexpr_lut_to_dense` (packed uint8
//!   indices, one LUT, `shape` as uint32) and `constexpr_affine_dequantize` (int8 data, a zero
//!   point and a scale per output channel).
//! - From iOS 18, every parameter is an input bound to a literal value: `constexpr_lut_to_dense`
//!   (`uintN` indices of the weight's shape, LUTs shaped `[.., groups, .., 2^n, 1]`) and
//!   `constexpr_blockwise_shift_scale` (int8/int4 data, scales of the weight's rank).
//!
//! Indices and codes arrive packed as Core ML stores them (`edgec_passes::compressed::pack_bits`:
//! LSB first; signed int4 is the two's-complement low nibble), and are written as they are.

use super::{LowerError, Lowerer, BLOB_MIN_ELEMENTS};
use crate::coreml::mil;
use crate::coreml::target::DeploymentTarget;
use crate::coreml::weights::BlobType;
use crate::proto::coreml::mil_spec::argument::{binding, Binding};
use crate::proto::coreml::mil_spec::{Argument, DataType, Operation, Value};
use bytes::Bytes;
use edgec_passes::compressed::CompressedForm;
use edgec_passes::ir::{DType, TensorType};
use half::f16;
use std::collections::BTreeMap;

/// The MIL data type and blob type of `bits`-bit unsigned indices (iOS 18).
fn index_types(bits: u32) -> Option<(DataType, BlobType)> {
    Some(match bits {
        1 => (DataType::Uint1, BlobType::UInt1),
        2 => (DataType::Uint2, BlobType::UInt2),
        3 => (DataType::Uint3, BlobType::UInt3),
        4 => (DataType::Uint4, BlobType::UInt4),
        6 => (DataType::Uint6, BlobType::UInt6),
        8 => (DataType::Uint8, BlobType::UInt8),
        _ => return None,
    })
}

impl Lowerer<'_> {
    /// A literal: in the weight file when it has at least [`BLOB_MIN_ELEMENTS`] elements (and a
    /// blob type), else an immediate.
    fn literal(
        &mut self,
        data_type: DataType,
        blob: Option<BlobType>,
        shape: &[usize],
        bytes: &[u8],
    ) -> Result<Value, LowerError> {
        let count: usize = shape.iter().product();
        Ok(match blob {
            Some(bt) if count >= BLOB_MIN_ELEMENTS => {
                let offset = self.weights.append(bt, bytes)?;
                mil::blob_value(data_type, shape, offset)
            }
            _ => mil::immediate_tensor(data_type, shape, &Bytes::copy_from_slice(bytes)),
        })
    }

    /// fp16 entries in the program's float type (fp32 programs widen them exactly).
    fn float_literal(&mut self, dtype: DType, shape: &[usize], values: &[f16]) -> Result<Value, LowerError> {
        if dtype == DType::F32 {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_f32().to_le_bytes()).collect();
            self.literal(DataType::Float32, Some(BlobType::Float32), shape, &bytes)
        } else {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.literal(DataType::Float16, Some(BlobType::Float16), shape, &bytes)
        }
    }

    /// f32 values in the program's float type (rounded to fp16 in an fp16 program).
    fn float_literal_f32(&mut self, dtype: DType, shape: &[usize], values: &[f32]) -> Result<Value, LowerError> {
        if dtype == DType::F32 {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.literal(DataType::Float32, Some(BlobType::Float32), shape, &bytes)
        } else {
            let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
            self.float_literal(dtype, shape, &halves)
        }
    }

    /// Emit the constexpr op that reconstructs the compressed constant `name` of type `ty`.
    pub(super) fn emit_compressed(
        &mut self,
        name: &str,
        ty: &TensorType,
        form: &CompressedForm,
    ) -> Result<(), LowerError> {
        let unsupported = |message: String| LowerError::Unsupported {
            origin: String::new(),
            message: format!("weight {name:?}: {message}"),
        };
        let ios18 = self.target >= DeploymentTarget::Ios18;
        let mut params: Vec<(&str, Value)> = Vec::new();
        let op_type = match form {
            CompressedForm::Palette {
                bits,
                axis,
                luts,
                indices,
            } => {
                let entries = 1usize << bits;
                let flat: Vec<f16> = luts.iter().flatten().copied().collect();
                if ios18 {
                    let (dt, bt) = index_types(*bits).ok_or_else(|| unsupported(format!("{bits}-bit indices")))?;
                    params.push(("indices", self.literal(dt, Some(bt), &ty.shape, indices)?));
                    let mut lut_shape = vec![1; ty.rank()];
                    lut_shape[*axis] = luts.len();
                    lut_shape.extend([entries, 1]);
                    params.push(("lut", self.float_literal(ty.dtype, &lut_shape, &flat)?));
                } else {
                    if luts.len() != 1 || *bits == 3 {
                        return Err(unsupported("grouped or 3-bit LUTs need iOS 18".into()));
                    }
                    let len = indices.len();
                    params.push((
                        "indices",
                        self.literal(DataType::Uint8, Some(BlobType::UInt8), &[len], indices)?,
                    ));
                    params.push(("lut", self.float_literal(ty.dtype, &[entries], &flat)?));
                    let shape: Vec<u8> = ty.shape.iter().flat_map(|&d| (d as u32).to_le_bytes()).collect();
                    params.push(("shape", self.literal(DataType::Uint32, None, &[ty.rank()], &shape)?));
                }
                "constexpr_lut_to_dense"
            }
            CompressedForm::Linear {
                bits,
                axis,
                data,
                scales,
                scale_shape,
            } => {
                if ios18 {
                    let (dt, bt) = if *bits == 4 {
                        (DataType::Int4, BlobType::Int4)
                    } else {
                        (DataType::Int8, BlobType::Int8)
                    };
                    params.push(("data", self.literal(dt, Some(bt), &ty.shape, data)?));
                    params.push(("scale", self.float_literal(ty.dtype, scale_shape, scales)?));
                    "constexpr_blockwise_shift_scale"
                } else {
                    let channels = ty.shape[*axis];
                    if *bits != 8 || scales.len() != channels {
                        return Err(unsupported("4-bit or block-wise quantization needs iOS 18".into()));
                    }
                    params.push((
                        "quantized_data",
                        self.literal(DataType::Int8, Some(BlobType::Int8), &ty.shape, data)?,
                    ));
                    params.push((
                        "zero_point",
                        self.literal(DataType::Int8, Some(BlobType::Int8), &[channels], &vec![0; channels])?,
                    ));
                    params.push(("scale", self.float_literal(ty.dtype, &[channels], scales)?));
                    params.push(("axis", mil::Immediate::Int(*axis as i32).to_value()));
                    "constexpr_affine_dequantize"
                }
            }
            CompressedForm::FromModel(model) => {
                let (dt, bt) = if model.unsigned {
                    (DataType::Uint8, BlobType::UInt8)
                } else {
                    (DataType::Int8, BlobType::Int8)
                };
                let has_offset = model.zero_points.iter().any(|&z| z != 0);
                if ios18 {
                    params.push(("data", self.literal(dt, Some(bt), &ty.shape, &model.codes)?));
                    params.push((
                        "scale",
                        self.float_literal_f32(ty.dtype, &model.param_shape, &model.scales)?,
                    ));
                    if has_offset {
                        params.push((
                            "offset",
                            self.literal(dt, Some(bt), &model.param_shape, &model.zero_points)?,
                        ));
                    }
                    "constexpr_blockwise_shift_scale"
                } else {
                    // One scale, or one per index along a single axis.
                    let varying: Vec<usize> = (0..ty.rank()).filter(|&a| model.param_shape[a] > 1).collect();
                    let (axis, param_dims) = match varying[..] {
                        [] => (0, vec![]),
                        [a] if model.param_shape[a] == ty.shape[a] => (a, vec![ty.shape[a]]),
                        _ => return Err(unsupported("block-wise quantization needs iOS 18".into())),
                    };
                    params.push(("quantized_data", self.literal(dt, Some(bt), &ty.shape, &model.codes)?));
                    params.push((
                        "zero_point",
                        self.literal(dt, Some(bt), &param_dims, &model.zero_points)?,
                    ));
                    params.push(("scale", self.float_literal_f32(ty.dtype, &param_dims, &model.scales)?));
                    params.push(("axis", mil::Immediate::Int(axis as i32).to_value()));
                    "constexpr_affine_dequantize"
                }
            }
        };
        let out_type = mil::data_type(ty.dtype).ok_or_else(|| unsupported(format!("type {ty}")))?;
        let mut attributes = BTreeMap::from([("name".to_string(), mil::string_value(name))]);
        let mut inputs = BTreeMap::new();
        for (key, value) in params {
            if ios18 {
                let binding = Binding {
                    binding: Some(binding::Binding::Value(value)),
                };
                inputs.insert(
                    key.to_string(),
                    Argument {
                        arguments: vec![binding],
                    },
                );
            } else {
                attributes.insert(key.to_string(), value);
            }
        }
        self.ops.push(Operation {
            r#type: op_type.into(),
            inputs,
            outputs: vec![mil::named(name, mil::tensor_type(out_type, &ty.shape))],
            blocks: Vec::new(),
            attributes,
        });
        Ok(())
    }
}
