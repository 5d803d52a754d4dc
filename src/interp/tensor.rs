//! Runtime values of the interpreter.
//!
//! A [`Tensor`] pairs a MIL element type with a shared buffer. Both float types live in `f32`
//! buffers: fp16 tensors are computed in f32 and, when asked, rounded through `half::f16`
//! after each op (see [`super::InterpOptions`]). Buffers are reference-counted so `const`s,
//! `identity` and `reshape` never copy data.

use std::sync::Arc;

/// Result type of op implementations: the message is wrapped with the op's identity later.
pub(crate) type OpResult<T> = Result<T, String>;

/// MIL element types the interpreter knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DType {
    Fp16,
    Fp32,
    Int32,
    Int16,
    Uint16,
    Int8,
    Uint8,
    /// `uint1`..`uint6` (iOS18 compression operands), unpacked one element per `i32`.
    UintN(u8),
    /// `int4` (iOS18 compression operand), unpacked and sign-extended.
    Int4,
    Bool,
    Str,
}

impl DType {
    pub(crate) fn name(self) -> String {
        match self {
            DType::Fp16 => "fp16".into(),
            DType::Fp32 => "fp32".into(),
            DType::Int32 => "int32".into(),
            DType::Int16 => "int16".into(),
            DType::Uint16 => "uint16".into(),
            DType::Int8 => "int8".into(),
            DType::Uint8 => "uint8".into(),
            DType::UintN(b) => format!("uint{b}"),
            DType::Int4 => "int4".into(),
            DType::Bool => "bool".into(),
            DType::Str => "string".into(),
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(self, DType::Fp16 | DType::Fp32)
    }

    /// The dtype named by a `cast`-style string parameter.
    pub(crate) fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "fp16" => DType::Fp16,
            "fp32" => DType::Fp32,
            "int32" => DType::Int32,
            "int16" => DType::Int16,
            "uint16" => DType::Uint16,
            "int8" => DType::Int8,
            "uint8" => DType::Uint8,
            "bool" => DType::Bool,
            _ => return None,
        })
    }
}

/// Element storage. Integer types of every width share `i32` storage.
#[derive(Clone, Debug)]
pub(crate) enum Buf {
    F(Arc<Vec<f32>>),
    I(Arc<Vec<i32>>),
    B(Arc<Vec<bool>>),
    S(Arc<Vec<String>>),
}

impl Buf {
    pub(crate) fn len(&self) -> usize {
        match self {
            Buf::F(v) => v.len(),
            Buf::I(v) => v.len(),
            Buf::B(v) => v.len(),
            Buf::S(v) => v.len(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub buf: Buf,
}

pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major strides of `shape`, in elements.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl Tensor {
    /// A float tensor (`dtype` must be fp16 or fp32).
    pub(crate) fn float(dtype: DType, shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert!(dtype.is_float());
        debug_assert_eq!(numel(&shape), data.len());
        Tensor {
            dtype,
            shape,
            buf: Buf::F(Arc::new(data)),
        }
    }

    pub(crate) fn int(dtype: DType, shape: Vec<usize>, data: Vec<i32>) -> Tensor {
        debug_assert_eq!(numel(&shape), data.len());
        Tensor {
            dtype,
            shape,
            buf: Buf::I(Arc::new(data)),
        }
    }

    pub(crate) fn bools(shape: Vec<usize>, data: Vec<bool>) -> Tensor {
        Tensor {
            dtype: DType::Bool,
            shape,
            buf: Buf::B(Arc::new(data)),
        }
    }

    pub(crate) fn rank(&self) -> usize {
        self.shape.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn type_string(&self) -> String {
        format!(
            "{}[{}]",
            self.dtype.name(),
            self.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",")
        )
    }

    /// The elements of a float tensor.
    pub(crate) fn floats(&self) -> OpResult<&[f32]> {
        match &self.buf {
            Buf::F(v) => Ok(v),
            _ => Err(format!("expected a float tensor, got {}", self.type_string())),
        }
    }

    /// The elements of an integer tensor (any width).
    pub(crate) fn ints(&self) -> OpResult<&[i32]> {
        match &self.buf {
            Buf::I(v) => Ok(v),
            _ => Err(format!("expected an integer tensor, got {}", self.type_string())),
        }
    }

    pub(crate) fn bool_values(&self) -> OpResult<&[bool]> {
        match &self.buf {
            Buf::B(v) => Ok(v),
            _ => Err(format!("expected a bool tensor, got {}", self.type_string())),
        }
    }

    pub(crate) fn strings(&self) -> OpResult<&[String]> {
        match &self.buf {
            Buf::S(v) => Ok(v),
            _ => Err(format!("expected a string, got {}", self.type_string())),
        }
    }

    /// A copy of this tensor with another shape (same element count), sharing the buffer.
    pub(crate) fn reshaped(&self, shape: Vec<usize>) -> Tensor {
        Tensor {
            dtype: self.dtype,
            shape,
            buf: self.buf.clone(),
        }
    }
}

/// Round every element through fp16, as a device computing in fp16 would store it.
pub(crate) fn round_to_fp16(values: &mut [f32]) {
    for v in values {
        *v = half::f16::from_f32(*v).to_f32();
    }
}
