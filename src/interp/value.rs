//! Decode MIL `Value`s (const payloads, inline bindings, constexpr attributes) into tensors,
//! and MIL `ValueType`s into (dtype, shape) pairs.
//!
//! Immediates follow coremltools' encoding (coreml-format.md §4): fp32 in `floats`, int32 and
//! the 16-bit ints in `ints`, int64 in `longInts`, bools in `bools`, strings in `strings`, and
//! fp16, int8, uint8 and the sub-byte types as raw little-endian `bytes`. The reader is lenient
//! where the meaning is unambiguous (e.g. fp16 written as `floats`), strict about element counts.

use super::tensor::{numel, Buf, DType, OpResult, Tensor};
use super::weights::{decode_le, packed_size, WeightStore};
use crate::proto::coreml::mil_spec::{dimension, tensor_value, value, value_type, DataType, Value, ValueType};
use std::sync::Arc;

/// The interpreter's element type for a MIL `DataType` code.
pub(crate) fn dtype_of(code: i32) -> OpResult<DType> {
    Ok(match DataType::try_from(code) {
        Ok(DataType::Float16) => DType::Fp16,
        Ok(DataType::Float32) => DType::Fp32,
        Ok(DataType::Int32) => DType::Int32,
        // int64 values are narrowed to int32 (with a range check) as Core ML itself computes
        // in int32.
        Ok(DataType::Int64) => DType::Int32,
        Ok(DataType::Int16) => DType::Int16,
        Ok(DataType::Uint16) => DType::Uint16,
        Ok(DataType::Int8) => DType::Int8,
        Ok(DataType::Uint8) => DType::Uint8,
        Ok(DataType::Int4) => DType::Int4,
        Ok(DataType::Uint1) => DType::UintN(1),
        Ok(DataType::Uint2) => DType::UintN(2),
        Ok(DataType::Uint3) => DType::UintN(3),
        Ok(DataType::Uint4) => DType::UintN(4),
        Ok(DataType::Uint6) => DType::UintN(6),
        Ok(DataType::Bool) => DType::Bool,
        Ok(DataType::String) => DType::Str,
        Ok(other) => return Err(format!("MIL data type {} is not supported", other.as_str_name())),
        Err(_) => return Err(format!("unknown MIL data type code {code}")),
    })
}

/// A declared tensor type: dtype and dimensions (`None` for an unknown dimension).
#[derive(Clone, Debug)]
pub(crate) struct DeclaredType {
    pub dtype: DType,
    pub dims: Vec<Option<usize>>,
}

impl DeclaredType {
    /// The shape, if every dimension is known.
    pub(crate) fn shape(&self) -> Option<Vec<usize>> {
        self.dims.iter().copied().collect()
    }

    pub(crate) fn matches_shape(&self, shape: &[usize]) -> bool {
        self.dims.len() == shape.len() && self.dims.iter().zip(shape).all(|(d, &s)| d.is_none_or(|d| d == s))
    }

    pub(crate) fn describe(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        format!("{}[{}]", self.dtype.name(), dims.join(","))
    }
}

pub(crate) fn declared_type(ty: Option<&ValueType>) -> OpResult<DeclaredType> {
    match ty.and_then(|t| t.r#type.as_ref()) {
        Some(value_type::Type::TensorType(t)) => {
            let dtype = dtype_of(t.data_type)?;
            if t.rank < 0 {
                return Err("tensors of unknown rank are not supported".into());
            }
            let dims = t
                .dimensions
                .iter()
                .map(|d| match &d.dimension {
                    Some(dimension::Dimension::Constant(c)) => usize::try_from(c.size)
                        .map(Some)
                        .map_err(|_| format!("dimension {} is too large", c.size)),
                    _ => Ok(None),
                })
                .collect::<OpResult<Vec<_>>>()?;
            if dims.len() as i64 != t.rank {
                return Err(format!(
                    "tensor type of rank {} lists {} dimensions",
                    t.rank,
                    dims.len()
                ));
            }
            Ok(DeclaredType { dtype, dims })
        }
        Some(other) => Err(format!("only tensor values are supported, not {other:?}")),
        None => Err("value has no type".into()),
    }
}

/// Decode a `Value` (immediate or blob) into a tensor of its declared type.
pub(crate) fn decode(v: &Value, weights: &WeightStore) -> OpResult<Tensor> {
    let ty = declared_type(v.r#type.as_ref())?;
    let shape = ty
        .shape()
        .ok_or_else(|| format!("constant of type {} has unknown dimensions", ty.describe()))?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("constant too large")?;
    let dtype = ty.dtype;
    let buf = match &v.value {
        Some(value::Value::BlobFileValue(b)) => weights.read(&b.file_name, b.offset, dtype, count)?,
        Some(value::Value::ImmediateValue(imm)) => match &imm.value {
            Some(value::immediate_value::Value::Tensor(t)) => immediate(t.value.as_ref(), dtype, count)?,
            Some(_) => return Err("tuple, list and dictionary immediates are not supported".into()),
            None => return Err("empty immediate value".into()),
        },
        None => return Err("value has neither an immediate nor a blob payload".into()),
    };
    if buf.len() != count {
        return Err(format!(
            "constant of type {} holds {} values, expected {count}",
            ty.describe(),
            buf.len()
        ));
    }
    debug_assert_eq!(numel(&shape), count);
    Ok(Tensor { dtype, shape, buf })
}

fn immediate(payload: Option<&tensor_value::Value>, dtype: DType, count: usize) -> OpResult<Buf> {
    use tensor_value::Value as V;
    let wrong = |what: &str| format!("{} immediate stored as {what}", dtype.name());
    Ok(match payload {
        None => empty(dtype),
        Some(V::Floats(f)) if dtype.is_float() => Buf::F(Arc::new(f.values.clone())),
        Some(V::Doubles(d)) if dtype.is_float() => Buf::F(Arc::new(d.values.iter().map(|&x| x as f32).collect())),
        Some(V::Ints(i)) if !dtype.is_float() && !matches!(dtype, DType::Bool | DType::Str) => {
            Buf::I(Arc::new(i.values.clone()))
        }
        Some(V::LongInts(l)) if !dtype.is_float() && !matches!(dtype, DType::Bool | DType::Str) => {
            let v = l
                .values
                .iter()
                .map(|&x| i32::try_from(x).map_err(|_| format!("int64 immediate {x} is outside the int32 range")))
                .collect::<OpResult<Vec<_>>>()?;
            Buf::I(Arc::new(v))
        }
        Some(V::Bools(b)) if dtype == DType::Bool => Buf::B(Arc::new(b.values.clone())),
        Some(V::Strings(s)) if dtype == DType::Str => Buf::S(Arc::new(s.values.clone())),
        Some(V::Bytes(b)) => {
            let needed = packed_size(dtype, count).ok_or_else(|| wrong("bytes"))?;
            if b.values.len() != needed {
                return Err(format!(
                    "{} immediate of {count} values has {} bytes, expected {needed}",
                    dtype.name(),
                    b.values.len()
                ));
            }
            decode_le(&b.values, dtype, count)
        }
        Some(V::Floats(_)) => return Err(wrong("floats")),
        Some(V::Doubles(_)) => return Err(wrong("doubles")),
        Some(V::Ints(_)) => return Err(wrong("ints")),
        Some(V::LongInts(_)) => return Err(wrong("longInts")),
        Some(V::Bools(_)) => return Err(wrong("bools")),
        Some(V::Strings(_)) => return Err(wrong("strings")),
    })
}

fn empty(dtype: DType) -> Buf {
    match dtype {
        DType::Fp16 | DType::Fp32 => Buf::F(Arc::new(Vec::new())),
        DType::Bool => Buf::B(Arc::new(Vec::new())),
        DType::Str => Buf::S(Arc::new(Vec::new())),
        _ => Buf::I(Arc::new(Vec::new())),
    }
}
