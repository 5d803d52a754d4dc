//! The `ModelDescription`: feature types of inputs and outputs, and metadata.

use super::lower::IoFeature;
use crate::proto::coreml::{
    array_feature_type::ArrayDataType, feature_type, ArrayFeatureType, FeatureDescription, FeatureType, Metadata,
    ModelDescription,
};
use edgec_passes::ir::DType;
use std::collections::BTreeMap;

/// Metadata keys edgec writes under `userDefined`, all prefixed `com.edgec.`.
pub struct ProvenanceInfo {
    pub source_file: String,
    pub source_sha256: String,
    pub precision: String,
    pub deployment_target: String,
    pub short_description: String,
    /// JSON object mapping ONNX input/output names to MIL names.
    pub io_names_json: String,
    /// fp16 programs: a JSON array of the ops kept in fp32 (`op`, `node`, `reason`).
    pub fp32_ops_json: Option<String>,
    /// ONNX element type (lower case, e.g. `int64`) of each model input and output, by ONNX
    /// name, so the description can say when the package's type differs.
    pub source_dtypes: BTreeMap<String, String>,
    /// Further `com.edgec.*` metadata entries (the GELU formula, the pattern rewrites).
    pub extra_metadata: BTreeMap<String, String>,
}

pub fn array_data_type(dtype: DType) -> Option<ArrayDataType> {
    Some(match dtype {
        DType::F32 => ArrayDataType::Float32,
        DType::F16 => ArrayDataType::Float16,
        DType::I32 => ArrayDataType::Int32,
        _ => return None,
    })
}

fn feature(f: &IoFeature, info: &ProvenanceInfo) -> Result<FeatureDescription, String> {
    let dt = array_data_type(f.ty.dtype).ok_or_else(|| {
        format!(
            "{:?} has type {}, which Core ML model inputs and outputs cannot carry",
            f.source_name, f.ty
        )
    })?;
    if f.ty.rank() == 0 {
        return Err(format!(
            "{:?} is a scalar; Core ML inputs and outputs need rank >= 1",
            f.source_name
        ));
    }
    let mut notes = Vec::new();
    if f.source_name != f.mil_name {
        notes.push(format!("ONNX name: {}", f.source_name));
    }
    let package_dtype = match f.ty.dtype {
        DType::I32 => "int32",
        DType::F16 => "float16",
        _ => "float",
    };
    match info.source_dtypes.get(&f.source_name).map(String::as_str) {
        // Token ids and other indices: Core ML has no int64 model inputs.
        Some("int64") => notes.push("int64 in the ONNX model, int32 here: values must fit in int32".into()),
        Some("double") => notes.push("double in the ONNX model, float32 here".into()),
        Some("bool") => notes.push("bool in the ONNX model, int32 here (0 or 1)".into()),
        Some(source) if source != package_dtype && !(source == "float" && package_dtype == "float16") => {
            notes.push(format!("{source} in the ONNX model, {package_dtype} here"))
        }
        _ => {}
    }
    let short_description = notes.join("; ");
    Ok(FeatureDescription {
        name: f.mil_name.clone(),
        short_description,
        r#type: Some(FeatureType {
            is_optional: false,
            r#type: Some(feature_type::Type::MultiArrayType(ArrayFeatureType {
                shape: f.ty.shape.iter().map(|&d| d as i64).collect(),
                data_type: dt as i32,
                shape_flexibility: None,
                default_optional_value: None,
            })),
        }),
    })
}

pub fn describe(
    inputs: &[IoFeature],
    outputs: &[IoFeature],
    info: &ProvenanceInfo,
) -> Result<ModelDescription, String> {
    let mut user_defined = BTreeMap::from([
        ("com.edgec.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("com.edgec.source".to_string(), info.source_file.clone()),
        ("com.edgec.source_sha256".to_string(), info.source_sha256.clone()),
        ("com.edgec.precision".to_string(), info.precision.clone()),
        (
            "com.edgec.deployment_target".to_string(),
            info.deployment_target.clone(),
        ),
        ("com.edgec.io_names".to_string(), info.io_names_json.clone()),
    ]);
    user_defined.extend(info.extra_metadata.clone());
    if let Some(list) = &info.fp32_ops_json {
        user_defined.insert("com.edgec.fp32_ops".to_string(), list.clone());
    }
    Ok(ModelDescription {
        input: inputs.iter().map(|f| feature(f, info)).collect::<Result<_, _>>()?,
        output: outputs.iter().map(|f| feature(f, info)).collect::<Result<_, _>>()?,
        metadata: Some(Metadata {
            short_description: info.short_description.clone(),
            version_string: String::new(),
            author: "edgec".to_string(),
            license: String::new(),
            user_defined,
        }),
        ..Default::default()
    })
}
