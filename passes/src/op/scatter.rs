//! Scatters with indices computed at run time: MIL `scatter_nd` and `scatter_along_axis`.
//! (Scatters with constant indices never become these ops: the front end plans their writes at
//! compile time, as gathers and selects.) Indices are in range by construction: the front end
//! wraps negative ones, since MIL from iOS 17 treats them as out of range.

use super::InferError;
use crate::ir::{DType, TensorType};
use std::fmt;

/// How an update combines with the element it writes (MIL's `mode`). Writes to one element
/// apply in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScatterMode {
    Update,
    Add,
    Mul,
    Max,
    Min,
}

impl ScatterMode {
    /// The MIL `mode` string.
    pub fn name(self) -> &'static str {
        match self {
            ScatterMode::Update => "update",
            ScatterMode::Add => "add",
            ScatterMode::Mul => "mul",
            ScatterMode::Max => "max",
            ScatterMode::Min => "min",
        }
    }
}

/// The types MIL scatters take (fp16, fp32, int32; int64 until it is narrowed).
fn check_operands(op: &str, data: &TensorType, indices: &TensorType, updates: &TensorType) -> Result<(), InferError> {
    if !matches!(data.dtype, DType::F32 | DType::F16 | DType::I32 | DType::I64) {
        infer_bail!("{op} takes float or int32 data, got {data}");
    }
    if !matches!(indices.dtype, DType::I32 | DType::I64) {
        infer_bail!("{op} takes integer indices, got {indices}");
    }
    if updates.dtype != data.dtype {
        infer_bail!("{op} updates {updates} must have the data's type {data}");
    }
    Ok(())
}

/// `scatter_nd`: inputs data, indices (each tuple along the last axis names leading
/// coordinates of data), updates `indices.shape[..-1] + data.shape[tuple..]`.
pub fn infer_scatter_nd(inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
    let [data, indices, updates] = inputs else {
        infer_bail!("scatter_nd takes data, indices and updates");
    };
    check_operands("scatter_nd", data, indices, updates)?;
    let Some((&depth, tuples)) = indices.shape.split_last() else {
        infer_bail!("scatter_nd indices must have rank 1 or more, got {indices}");
    };
    if depth == 0 || depth > data.rank() {
        infer_bail!("scatter_nd index tuples of {depth} for data {data}");
    }
    let mut expected = tuples.to_vec();
    expected.extend(&data.shape[depth..]);
    if updates.shape != expected {
        infer_bail!("scatter_nd updates {updates} must have shape {expected:?}");
    }
    Ok(vec![(*data).clone()])
}

/// `scatter_along_axis`: inputs data, indices and updates of one shape, the data's on every
/// axis but `axis`.
pub fn infer_scatter_along_axis(axis: usize, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
    let [data, indices, updates] = inputs else {
        infer_bail!("scatter_along_axis takes data, indices and updates");
    };
    check_operands("scatter_along_axis", data, indices, updates)?;
    let spans =
        indices.rank() == data.rank() && (0..data.rank()).all(|d| d == axis || indices.shape[d] == data.shape[d]);
    if axis >= data.rank() || !spans || updates.shape != indices.shape {
        infer_bail!(
            "scatter_along_axis indices {indices} and updates {updates} must have one shape, the data's {data} but along axis {axis}"
        );
    }
    Ok(vec![(*data).clone()])
}

impl fmt::Display for ScatterMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
