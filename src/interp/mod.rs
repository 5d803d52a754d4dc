//! A reference interpreter for Core ML ML Programs, so edgec's output can be executed and
//! checked on machines without Core ML.
//!
//! It reads a package from disk exactly as Core ML would get it (`Manifest.json`, the
//! `model.mlmodel` protobuf, `weights/*.bin` blobs), never edgec's IR, and evaluates `main`'s
//! block for the function's opset on the CPU in f32, following the op definitions of
//! coremltools 9 (`coremltools/converters/mil/mil/ops/defs/`). The op implementations live in
//! `ops/`, one file per op family; see `ops/mod.rs` for how to add one.
//!
//! Precision: fp16 tensors are computed in f32. With [`InterpOptions::fp16_rounding`] every
//! fp16-typed op result is rounded through IEEE half after the op, which reproduces the
//! storage precision of a device running the program in fp16 (accumulation inside an op stays
//! f32, so the device may differ by a few more ulps).

mod control;
pub mod emulate;
mod eval;
mod ops;
mod tensor;
mod value;
mod weights;

pub use crate::npy::{ArrayData, NdArray};

/// The environment variable that, when set, makes every run print where its time went, per op
/// type, on stderr.
pub const PROFILE_ENV: &str = "EDGEC_INTERP_PROFILE";

use crate::error::{Error, Result};
use crate::proto::coreml::array_feature_type::ArrayDataType;
use crate::proto::coreml::mil_spec::Block;
use crate::proto::coreml::{feature_type, model, FeatureDescription, Model};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tensor::{Buf, DType, Tensor};
use value::{declared_type, DeclaredType};

/// How to run a program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterpOptions {
    /// Round every fp16-typed value (op results, fp16 inputs) through IEEE half, as a device
    /// storing activations in fp16 would. Off: fp16 tensors keep full f32 precision.
    pub fp16_rounding: bool,
}

/// One model input or output as the package describes it.
#[derive(Clone, Debug)]
struct Feature {
    name: String,
    data_type: ArrayDataType,
}

/// A package, read and ready to run.
struct Loaded {
    /// `@model_path`: the folder that holds `model.mlmodel`.
    model_dir: PathBuf,
    inputs: Vec<Feature>,
    outputs: Vec<Feature>,
    /// `main`'s inputs with their MIL types, by name.
    function_inputs: HashMap<String, DeclaredType>,
    block: Block,
    /// ONNX name → MIL name, from the `com.edgec.io_names` metadata (empty if absent).
    io_names: HashMap<String, String>,
    /// Model inputs compiled in as constants, with their values (`com.edgec.fixed_inputs`).
    fixed_inputs: HashMap<String, Vec<f64>>,
}

fn package_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Package {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn feature(f: &FeatureDescription) -> std::result::Result<Feature, String> {
    match f.r#type.as_ref().and_then(|t| t.r#type.as_ref()) {
        Some(feature_type::Type::MultiArrayType(a)) => {
            let data_type = ArrayDataType::try_from(a.data_type)
                .map_err(|_| format!("feature {:?} has unknown array data type {}", f.name, a.data_type))?;
            Ok(Feature {
                name: f.name.clone(),
                data_type,
            })
        }
        _ => Err(format!(
            "feature {:?} is not a multi-array; only multi-array inputs and outputs are supported",
            f.name
        )),
    }
}

fn load(package: &Path) -> Result<Loaded> {
    let err = |m: String| package_error(package, m);
    let model_rel = crate::coreml::inspect::root_model_path(package)?;
    let model_path = package.join(&model_rel);
    let model_dir = model_path
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| err("the root model has no parent folder".into()))?;
    let bytes = std::fs::read(&model_path).map_err(|source| Error::Io {
        path: model_path.clone(),
        source,
    })?;
    let spec = Model::decode(bytes.as_slice()).map_err(|e| err(format!("{model_rel} is not a Core ML model: {e}")))?;
    let description = spec
        .description
        .ok_or_else(|| err("the model has no description".into()))?;
    let program = match spec.r#type {
        Some(model::Type::MlProgram(p)) => p,
        _ => return Err(err("the model is not an ML Program".into())),
    };
    let mut functions = program.functions;
    let function = functions
        .remove("main")
        .ok_or_else(|| err("the program has no main function".into()))?;
    let mut blocks = function.block_specializations;
    let block = blocks
        .remove(&function.opset)
        .ok_or_else(|| err(format!("main has no block for its opset {:?}", function.opset)))?;
    let function_inputs = function
        .inputs
        .iter()
        .map(|i| {
            declared_type(i.r#type.as_ref())
                .map(|t| (i.name.clone(), t))
                .map_err(|e| err(format!("main input {:?}: {e}", i.name)))
        })
        .collect::<Result<HashMap<_, _>>>()?;
    let inputs = description
        .input
        .iter()
        .map(feature)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(err)?;
    let outputs = description
        .output
        .iter()
        .map(feature)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(err)?;
    for f in &inputs {
        if !function_inputs.contains_key(&f.name) {
            return Err(err(format!("described input {:?} is not an input of main", f.name)));
        }
    }
    let described: Vec<&str> = outputs.iter().map(|f| f.name.as_str()).collect();
    if described != block.outputs.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(err(format!(
            "the description's outputs {described:?} differ from main's outputs {:?}",
            block.outputs
        )));
    }
    let io_names = description
        .metadata
        .as_ref()
        .and_then(|m| m.user_defined.get("com.edgec.io_names"))
        .and_then(|s| serde_json::from_str::<HashMap<String, String>>(s).ok())
        .unwrap_or_default();
    let fixed_inputs = description
        .metadata
        .as_ref()
        .and_then(|m| m.user_defined.get("com.edgec.fixed_inputs"))
        .and_then(|s| serde_json::from_str::<HashMap<String, Vec<f64>>>(s).ok())
        .unwrap_or_default();
    Ok(Loaded {
        model_dir,
        inputs,
        outputs,
        function_inputs,
        block,
        io_names,
        fixed_inputs,
    })
}

/// The MIL dtype a described feature carries.
fn feature_dtype(f: &Feature) -> std::result::Result<DType, String> {
    match f.data_type {
        ArrayDataType::Float32 => Ok(DType::Fp32),
        ArrayDataType::Float16 => Ok(DType::Fp16),
        ArrayDataType::Int32 => Ok(DType::Int32),
        ArrayDataType::Int8 => Ok(DType::Int8),
        other => Err(format!(
            "feature {:?} has unsupported type {}",
            f.name,
            other.as_str_name()
        )),
    }
}

/// Convert a supplied array to the declared input type, where that loses nothing that
/// matters: f64/f16 → fp32, f32/f64 → fp16 (rounded), i64/i8/u8 → int32 (range-checked),
/// bool → int32 0/1 (edgec publishes ONNX bool inputs as int32).
fn input_tensor(name: &str, array: &NdArray, decl: &DeclaredType, options: &InterpOptions) -> Result<Tensor> {
    let usage = |m: String| Error::Usage(format!("input {name:?}: {m}"));
    // edgec publishes an ONNX scalar input as [1] (Core ML inputs have rank >= 1): the scalar
    // the ONNX model takes is accepted as is.
    let shape = if array.shape.is_empty() && decl.matches_shape(&[1]) {
        vec![1]
    } else {
        array.shape.clone()
    };
    if !decl.matches_shape(&shape) {
        return Err(usage(format!(
            "has shape {:?}, but the package expects {}",
            array.shape,
            decl.describe()
        )));
    }
    if array.data.len() != array.shape.iter().product::<usize>() {
        return Err(usage(format!(
            "holds {} values, but its shape {:?} needs {}",
            array.data.len(),
            array.shape,
            array.shape.iter().product::<usize>()
        )));
    }
    let refuse = || {
        usage(format!(
            "is {}, which cannot be converted to the package's {}",
            array.data.dtype_name(),
            decl.dtype.name()
        ))
    };
    let buf = match decl.dtype {
        DType::Fp32 | DType::Fp16 => {
            let mut v: Vec<f32> = match &array.data {
                ArrayData::F32(v) => v.clone(),
                ArrayData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
                ArrayData::F64(v) => v.iter().map(|&x| x as f32).collect(),
                _ => return Err(refuse()),
            };
            if decl.dtype == DType::Fp16 && options.fp16_rounding {
                // Core ML converts the caller's array to the fp16 input type.
                tensor::round_to_fp16(&mut v);
            }
            Buf::F(Arc::new(v))
        }
        DType::Int32 => {
            let v: Vec<i32> = match &array.data {
                ArrayData::I32(v) => v.clone(),
                ArrayData::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                ArrayData::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                ArrayData::Bool(v) => v.iter().map(|&x| i32::from(x)).collect(),
                ArrayData::I64(v) => v
                    .iter()
                    .map(|&x| i32::try_from(x).map_err(|_| usage(format!("value {x} is outside the int32 range"))))
                    .collect::<Result<_>>()?,
                _ => return Err(refuse()),
            };
            Buf::I(Arc::new(v))
        }
        DType::Int8 => match &array.data {
            ArrayData::I8(v) => Buf::I(Arc::new(v.iter().map(|&x| i32::from(x)).collect())),
            _ => return Err(refuse()),
        },
        _ => return Err(refuse()),
    };
    Ok(Tensor {
        dtype: decl.dtype,
        shape,
        buf,
    })
}

fn output_array(f: &Feature, t: &Tensor) -> std::result::Result<NdArray, String> {
    let want = feature_dtype(f)?;
    let data = match (&t.buf, want) {
        (Buf::F(v), DType::Fp32) => ArrayData::F32(v.to_vec()),
        (Buf::F(v), DType::Fp16) => ArrayData::F16(v.iter().map(|&x| half::f16::from_f32(x)).collect()),
        (Buf::I(v), DType::Int32) => ArrayData::I32(v.to_vec()),
        (Buf::I(v), DType::Int8) => ArrayData::I8(v.iter().map(|&x| x as i8).collect()),
        _ => {
            return Err(format!(
                "output {:?} is {} in the program, but described as {}",
                f.name,
                t.type_string(),
                f.data_type.as_str_name()
            ))
        }
    };
    if t.dtype != want {
        return Err(format!(
            "output {:?} is {} in the program, but described as {}",
            f.name,
            t.type_string(),
            f.data_type.as_str_name()
        ));
    }
    Ok(NdArray {
        shape: t.shape.clone(),
        data,
    })
}

/// The environment `main` starts from: each supplied input, matched to the package's input
/// features (by MIL or ONNX name) and converted to its declared type.
fn input_env(
    loaded: &Loaded,
    package: &Path,
    inputs: &[(String, NdArray)],
    options: &InterpOptions,
) -> Result<eval::Env> {
    // "name (ONNX name x.y)" for messages, so either spelling leads the user to the input.
    let describe_input = |mil: &str| -> String {
        match loaded
            .io_names
            .iter()
            .find(|(onnx, m)| m.as_str() == mil && onnx.as_str() != mil)
        {
            Some((onnx, _)) => format!("{mil} (ONNX name {onnx:?})"),
            None => mil.to_string(),
        }
    };
    let mut env = eval::Env::new();
    for (given, array) in inputs {
        if let Some(fixed) = loaded
            .fixed_inputs
            .get(given)
            .filter(|_| !loaded.inputs.iter().any(|f| &f.name == given))
        {
            // Compiled in: the caller may still pass it, with the value it was compiled with.
            let values = array.data.to_f64_vec();
            let same = values.len() == fixed.len() && values.iter().zip(fixed).all(|(&a, &b)| a as f32 == b as f32);
            if !same {
                return Err(Error::Usage(format!(
                    "{}: input {given:?} was compiled in as {fixed:?} (--input-value, or empty); it cannot be given {}",
                    package.display(),
                    if values.len() <= 8 {
                        format!("{values:?}")
                    } else {
                        format!("{} other values", values.len())
                    }
                )));
            }
            continue;
        }
        let name = if loaded.inputs.iter().any(|f| &f.name == given) {
            given.clone()
        } else if let Some(mil) = loaded
            .io_names
            .get(given)
            .filter(|m| loaded.inputs.iter().any(|f| &f.name == *m))
        {
            mil.clone()
        } else {
            let known: Vec<String> = loaded.inputs.iter().map(|f| describe_input(&f.name)).collect();
            return Err(Error::Usage(format!(
                "{}: the package has no input {given:?} (its inputs: {})",
                package.display(),
                known.join(", ")
            )));
        };
        if env.contains_key(&name) {
            return Err(Error::Usage(format!("input {name:?} is given more than once")));
        }
        let decl = &loaded.function_inputs[&name];
        let f = loaded.inputs.iter().find(|f| f.name == name);
        if let Some(f) = f {
            // The description and main's signature must agree, or the package is malformed.
            let described = feature_dtype(f).map_err(|m| package_error(package, m))?;
            if described != decl.dtype {
                return Err(package_error(
                    package,
                    format!(
                        "input {name:?} is described as {} but main declares {}",
                        f.data_type.as_str_name(),
                        decl.describe()
                    ),
                ));
            }
        }
        env.insert(name.clone(), input_tensor(&name, array, decl, options)?);
    }
    let missing: Vec<String> = loaded
        .inputs
        .iter()
        .filter(|f| !env.contains_key(&f.name))
        .map(|f| describe_input(&f.name))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "{}: missing input(s): {}",
            package.display(),
            missing.join(", ")
        )));
    }
    Ok(env)
}

/// Run the ML Program of `package` on `inputs` and return its outputs, in the order and with
/// the names and dtypes of the package's description.
///
/// Inputs are matched by the package's input feature names; an edgec package's original
/// (ONNX) names, from its `com.edgec.io_names` metadata, are accepted too. Every input must be
/// given exactly once, with the declared shape; dtypes are converted where that is lossless
/// or expected (f64/f16 → fp32, int64 → int32 with a range check).
pub fn run_package(
    package: &Path,
    inputs: &[(String, NdArray)],
    options: &InterpOptions,
) -> Result<Vec<(String, NdArray)>> {
    let loaded = load(package)?;
    let env = input_env(&loaded, package, inputs, options)?;
    let store = weights::WeightStore::new(loaded.model_dir.clone());
    let results = eval::run_block(&loaded.block, env, &store, options).map_err(|m| package_error(package, m))?;
    loaded
        .outputs
        .iter()
        .zip(&results)
        .map(|(f, t)| {
            output_array(f, t)
                .map(|a| (f.name.clone(), a))
                .map_err(|m| package_error(package, m))
        })
        .collect()
}

/// The package's `com.edgec.io_names` map (ONNX name → MIL name), in no particular order;
/// empty for packages edgec did not write.
pub fn io_names(package: &Path) -> Result<Vec<(String, String)>> {
    Ok(load(package)?.io_names.into_iter().collect())
}

/// The package's input feature names, in description order.
pub fn input_names(package: &Path) -> Result<Vec<String>> {
    Ok(load(package)?.inputs.into_iter().map(|f| f.name).collect())
}
