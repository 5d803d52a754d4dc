//! ONNX `TensorProto` → IR [`Tensor`]: raw and typed payloads, and external data mapped from
//! files that must lie inside the model's folder.

use crate::proto::onnx::tensor_proto::{DataLocation, DataType};
use crate::proto::onnx::TensorProto;
use bytes::Bytes;
use edgec_passes::ir::{DType, Tensor, TensorType};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Resolves external-data locations and keeps each data file mapped once.
pub struct ExternalData {
    model_dir: PathBuf,
    canonical_dir: Option<PathBuf>,
    files: HashMap<PathBuf, Bytes>,
}

impl ExternalData {
    pub fn new(model_dir: &Path) -> Self {
        let dir = if model_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            model_dir
        };
        ExternalData {
            model_dir: dir.to_path_buf(),
            canonical_dir: dir.canonicalize().ok(),
            files: HashMap::new(),
        }
    }

    fn file(&mut self, location: &str) -> Result<Bytes, String> {
        let relative = Path::new(location);
        if relative.is_absolute() || location.is_empty() {
            return Err(format!(
                "external data location {location:?} must be a relative path inside the model's folder"
            ));
        }
        // Refuse `..` that climbs out before touching the file system, then check the real
        // path too, so a symlink cannot lead out either.
        let mut depth = 0i64;
        for component in relative.components() {
            match component {
                std::path::Component::ParentDir => depth -= 1,
                std::path::Component::Normal(_) => depth += 1,
                _ => {}
            }
            if depth < 0 {
                return Err(format!(
                    "external data location {location:?} resolves outside the model's folder"
                ));
            }
        }
        let joined = self.model_dir.join(relative);
        let canonical = joined
            .canonicalize()
            .map_err(|e| format!("external data file {} cannot be opened: {e}", joined.display()))?;
        let inside = self
            .canonical_dir
            .as_ref()
            .is_some_and(|dir| canonical.starts_with(dir));
        if !inside {
            return Err(format!(
                "external data location {location:?} resolves outside the model's folder ({})",
                canonical.display()
            ));
        }
        if let Some(bytes) = self.files.get(&canonical) {
            return Ok(bytes.clone());
        }
        let bytes = super::map_file(&canonical).map_err(|e| e.to_string())?;
        self.files.insert(canonical, bytes.clone());
        Ok(bytes)
    }
}

pub fn dtype_of(onnx: i32) -> Result<DType, String> {
    let dt = DataType::try_from(onnx).map_err(|_| format!("unknown ONNX data type {onnx}"))?;
    Ok(match dt {
        DataType::Float => DType::F32,
        DataType::Float16 => DType::F16,
        DataType::Int32 => DType::I32,
        DataType::Int64 => DType::I64,
        DataType::Int8 => DType::I8,
        DataType::Uint8 => DType::U8,
        DataType::Bool => DType::Bool,
        other => return Err(format!("data type {} is not supported", other.as_str_name())),
    })
}

/// Validate ONNX dims (non-negative, within [`super::limits`]) as a static shape.
pub fn checked_shape(dims: &[i64]) -> Result<Vec<usize>, String> {
    super::limits::check_shape(dims)
}

/// Convert a tensor proto; `external` resolves data stored outside the model file.
pub fn to_tensor(proto: &TensorProto, external: &mut ExternalData) -> Result<Tensor, String> {
    if proto.segment.is_some() {
        return Err("segmented tensors are not supported".into());
    }
    let shape = checked_shape(&proto.dims)?;
    let onnx_type =
        DataType::try_from(proto.data_type).map_err(|_| format!("unknown ONNX data type {}", proto.data_type))?;
    // f64 payloads are narrowed to f32: Core ML has no f64 compute.
    let (source_dtype, dtype) = match onnx_type {
        DataType::Double => (None, DType::F32),
        _ => {
            let d = dtype_of(proto.data_type)?;
            (Some(d), d)
        }
    };
    let ty = TensorType::new(dtype, shape);
    let count = ty.num_elements();

    let raw = if proto.data_location == DataLocation::External as i32 {
        Some(external_bytes(proto, external)?)
    } else if !proto.raw_data.is_empty() || count == 0 {
        Some(proto.raw_data.clone())
    } else {
        None
    };
    if let Some(raw) = raw {
        if source_dtype.is_none() {
            // Checked before narrowing, so the allocation follows the bytes present.
            if raw.len() as u64 != count as u64 * 8 {
                return Err(format!(
                    "holds {} bytes of f64 data, {} expected",
                    raw.len(),
                    count as u64 * 8
                ));
            }
            let values: Vec<f32> = raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect();
            return Ok(Tensor::from_f32(ty.shape, &values));
        }
        return Tensor::new(ty, raw).map_err(|e| e.to_string());
    }

    // Typed fields.
    let wrong = |have: usize| format!("holds {have} values but its shape {:?} needs {count}", ty.shape);
    let tensor = match (onnx_type, dtype) {
        (DataType::Double, _) => {
            if proto.double_data.len() != count {
                return Err(wrong(proto.double_data.len()));
            }
            Tensor::from_f32(
                ty.shape,
                &proto.double_data.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            )
        }
        (_, DType::F32) => {
            if proto.float_data.len() != count {
                return Err(wrong(proto.float_data.len()));
            }
            Tensor::from_f32(ty.shape, &proto.float_data)
        }
        (_, DType::I64) => {
            if proto.int64_data.len() != count {
                return Err(wrong(proto.int64_data.len()));
            }
            Tensor::from_i64(ty.shape, &proto.int64_data)
        }
        (_, DType::I32) => {
            if proto.int32_data.len() != count {
                return Err(wrong(proto.int32_data.len()));
            }
            Tensor::from_i32(ty.shape, &proto.int32_data)
        }
        (_, DType::F16) => {
            // fp16 values travel as their bit patterns in int32_data.
            if proto.int32_data.len() != count {
                return Err(wrong(proto.int32_data.len()));
            }
            let bytes: Vec<u8> = proto
                .int32_data
                .iter()
                .flat_map(|&v| (v as u16).to_le_bytes())
                .collect();
            Tensor::new(ty, bytes.into()).map_err(|e| e.to_string())?
        }
        (_, DType::I8 | DType::U8 | DType::Bool) => {
            if proto.int32_data.len() != count {
                return Err(wrong(proto.int32_data.len()));
            }
            let bytes: Vec<u8> = proto.int32_data.iter().map(|&v| v as u8).collect();
            Tensor::new(ty, bytes.into()).map_err(|e| e.to_string())?
        }
    };
    Ok(tensor)
}

/// The value of `key` in a tensor's `external_data` entries.
fn external_entry<'a>(proto: &'a TensorProto, key: &str) -> Option<&'a str> {
    proto
        .external_data
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// Where the data of a tensor stored outside the model file lives, as written in the model
/// (relative to the model's folder); `None` for tensors stored inline.
pub fn external_location(proto: &TensorProto) -> Option<&str> {
    (proto.data_location == DataLocation::External as i32)
        .then(|| external_entry(proto, "location"))
        .flatten()
}

fn external_bytes(proto: &TensorProto, external: &mut ExternalData) -> Result<Bytes, String> {
    let entry = |key: &str| external_entry(proto, key);
    let location = entry("location").ok_or("external data has no \"location\"")?;
    let parse = |key: &str| -> Result<Option<u64>, String> {
        entry(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("external data {key} {v:?} is not a number"))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?;
    let file = external.file(location)?;
    let file_len = file.len() as u64;
    let end = match length {
        Some(len) => offset
            .checked_add(len)
            .ok_or("external data offset + length overflows")?,
        None => file_len,
    };
    super::limits::MAX_EXTERNAL_TENSOR_BYTES
        .check(end.saturating_sub(offset))
        .map_err(|e| format!("external data in {location:?}: {e}"))?;
    if offset > file_len || end > file_len {
        return Err(format!(
            "external data range {offset}..{end} lies beyond the end of {location:?} ({file_len} bytes)"
        ));
    }
    Ok(file.slice(offset as usize..end as usize))
}
