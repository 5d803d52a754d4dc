//! Small constructors for MIL protobuf values and types, so the lowering reads as MIL.

use crate::proto::coreml::mil_spec::{
    argument::{binding, Binding},
    dimension, tensor_value, value, value_type, Argument, DataType, Dimension, NamedValueType, TensorType, TensorValue,
    Value, ValueType,
};
use bytes::Bytes;
use edgec_passes::ir::DType;

/// MIL DataType for an IR dtype (`I64` has none: it is narrowed before lowering).
pub fn data_type(dtype: DType) -> Option<DataType> {
    Some(match dtype {
        DType::F32 => DataType::Float32,
        DType::F16 => DataType::Float16,
        DType::I32 => DataType::Int32,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::Uint8,
        DType::Bool => DataType::Bool,
        DType::I64 => return None,
    })
}

pub fn tensor_type(data_type: DataType, shape: &[usize]) -> ValueType {
    ValueType {
        r#type: Some(value_type::Type::TensorType(TensorType {
            data_type: data_type as i32,
            rank: shape.len() as i64,
            dimensions: shape
                .iter()
                .map(|&d| Dimension {
                    dimension: Some(dimension::Dimension::Constant(dimension::ConstantDimension {
                        size: d as u64,
                    })),
                })
                .collect(),
            attributes: Default::default(),
        })),
    }
}

pub fn named(name: &str, ty: ValueType) -> NamedValueType {
    NamedValueType {
        name: name.to_string(),
        r#type: Some(ty),
    }
}

/// An argument binding one named value.
pub fn arg(name: &str) -> Argument {
    args(&[name.to_string()])
}

/// An argument binding several named values (a tuple input such as concat's `values`).
pub fn args(names: &[String]) -> Argument {
    Argument {
        arguments: names
            .iter()
            .map(|n| Binding {
                binding: Some(binding::Binding::Name(n.clone())),
            })
            .collect(),
    }
}

fn immediate(ty: ValueType, tensor: tensor_value::Value) -> Value {
    Value {
        doc_string: String::new(),
        r#type: Some(ty),
        value: Some(value::Value::ImmediateValue(value::ImmediateValue {
            value: Some(value::immediate_value::Value::Tensor(TensorValue {
                value: Some(tensor),
            })),
        })),
    }
}

/// Immediate parameter values, as `const` ops carry them.
#[derive(Clone, Debug, PartialEq)]
pub enum Immediate {
    Ints(Vec<i32>),
    Int(i32),
    Bool(bool),
    Bools(Vec<bool>),
    Str(String),
    /// A float scalar stored in `dtype` (fp16 or fp32).
    Float(f32, DType),
}

impl Immediate {
    pub fn to_value(&self) -> Value {
        use tensor_value::{RepeatedBools, RepeatedBytes, RepeatedFloats, RepeatedInts, RepeatedStrings, Value as V};
        match self {
            Immediate::Ints(v) => immediate(
                tensor_type(DataType::Int32, &[v.len()]),
                V::Ints(RepeatedInts { values: v.clone() }),
            ),
            Immediate::Int(v) => immediate(
                tensor_type(DataType::Int32, &[]),
                V::Ints(RepeatedInts { values: vec![*v] }),
            ),
            Immediate::Bool(b) => immediate(
                tensor_type(DataType::Bool, &[]),
                V::Bools(RepeatedBools { values: vec![*b] }),
            ),
            Immediate::Bools(v) => immediate(
                tensor_type(DataType::Bool, &[v.len()]),
                V::Bools(RepeatedBools { values: v.clone() }),
            ),
            Immediate::Str(s) => immediate(
                tensor_type(DataType::String, &[]),
                V::Strings(RepeatedStrings {
                    values: vec![s.clone()],
                }),
            ),
            Immediate::Float(f, DType::F16) => immediate(
                tensor_type(DataType::Float16, &[]),
                V::Bytes(RepeatedBytes {
                    values: Bytes::copy_from_slice(&half::f16::from_f32(*f).to_le_bytes()),
                }),
            ),
            // A "float" parameter of an integer op (pad's constant_val) takes the op's type.
            Immediate::Float(f, DType::I32) => Immediate::Int(*f as i32).to_value(),
            Immediate::Float(f, _) => immediate(
                tensor_type(DataType::Float32, &[]),
                V::Floats(RepeatedFloats { values: vec![*f] }),
            ),
        }
    }
}

/// A tensor's raw little-endian bytes as an immediate of `data_type`.
pub fn immediate_tensor(data_type: DataType, shape: &[usize], raw: &Bytes) -> Value {
    use tensor_value::{RepeatedBools, RepeatedBytes, RepeatedFloats, RepeatedInts, Value as V};
    let ty = tensor_type(data_type, shape);
    let payload = match data_type {
        DataType::Float32 => V::Floats(RepeatedFloats {
            values: raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        }),
        DataType::Int32 => V::Ints(RepeatedInts {
            values: raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        }),
        DataType::Bool => V::Bools(RepeatedBools {
            values: raw.iter().map(|&b| b != 0).collect(),
        }),
        // fp16, int8 and uint8 immediates travel as raw bytes.
        _ => V::Bytes(RepeatedBytes { values: raw.clone() }),
    };
    immediate(ty, payload)
}

pub fn blob_value(data_type: DataType, shape: &[usize], offset: u64) -> Value {
    Value {
        doc_string: String::new(),
        r#type: Some(tensor_type(data_type, shape)),
        value: Some(value::Value::BlobFileValue(value::BlobFileValue {
            file_name: "@model_path/weights/weight.bin".to_string(),
            offset,
        })),
    }
}

/// A scalar string immediate, for the `name` attribute of ops.
pub fn string_value(s: &str) -> Value {
    Immediate::Str(s.to_string()).to_value()
}
