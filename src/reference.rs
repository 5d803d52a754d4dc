//! The ONNX reference for `edgec verify`: the source model run by tract, a pure-Rust ONNX
//! runtime, so that verification needs neither Python nor a Mac. Behind the `reference` feature.

use crate::error::{Error, Result};
use crate::npy::{ArrayData, NdArray};
use crate::onnx::OnnxModel;
use crate::proto::onnx::{tensor_proto::DataType, type_proto};
use tract_onnx::prelude::*;

fn reference_error(model: &OnnxModel, message: impl std::fmt::Display) -> Error {
    Error::Model {
        path: model.path.clone(),
        message: format!("ONNX reference (tract): {message}"),
    }
}

/// tract failing on the model itself: it lacks some ops edgec compiles (Loop among them) and
/// trips on some graphs (two run-time Ifs), so say what to do instead.
fn tract_failure(model: &OnnxModel, e: impl std::fmt::Display) -> Error {
    let message = e.to_string();
    let why = if message.contains("Unimplemented(") {
        "tract does not implement this op"
    } else {
        "tract cannot run this model"
    };
    reference_error(
        model,
        format!("{message}; {why}, so verify cannot check it: run the package with `edgec run --inputs` and compare with another runtime's outputs (onnxruntime's, say)"),
    )
}

/// Convert an input to the element type the ONNX model declares (the package may have narrowed
/// int64 to int32 or double to float).
fn to_tract(array: &NdArray, onnx_type: i32) -> std::result::Result<Tensor, String> {
    let shape = &array.shape;
    let values = array.data.to_f64_vec();
    let t = match DataType::try_from(onnx_type).unwrap_or(DataType::Float) {
        DataType::Int64 => Tensor::from_shape(shape, &values.iter().map(|&v| v as i64).collect::<Vec<_>>()),
        DataType::Int32 => Tensor::from_shape(shape, &values.iter().map(|&v| v as i32).collect::<Vec<_>>()),
        DataType::Bool => Tensor::from_shape(shape, &values.iter().map(|&v| v != 0.0).collect::<Vec<_>>()),
        DataType::Double => Tensor::from_shape(shape, &values),
        DataType::Float16 => Tensor::from_shape(shape, &values.iter().map(|&v| v as f32).collect::<Vec<_>>())
            .and_then(|t| t.cast_to_dt(DatumType::F16).map(|c| c.into_owned())),
        _ => Tensor::from_shape(shape, &values.iter().map(|&v| v as f32).collect::<Vec<_>>()),
    };
    t.map_err(|e| e.to_string())
}

fn from_tract(t: &Tensor) -> std::result::Result<NdArray, String> {
    let shape = t.shape().to_vec();
    let data = match t.datum_type() {
        DatumType::I64 | DatumType::I32 | DatumType::I16 | DatumType::I8 | DatumType::U8 | DatumType::Bool => {
            let c = t.cast_to::<i64>().map_err(|e| e.to_string())?;
            ArrayData::I64(
                c.to_plain_array_view::<i64>()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .copied()
                    .collect(),
            )
        }
        _ => {
            let c = t.cast_to::<f32>().map_err(|e| e.to_string())?;
            ArrayData::F32(
                c.to_plain_array_view::<f32>()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .copied()
                    .collect(),
            )
        }
    };
    Ok(NdArray { shape, data })
}

/// Run the ONNX model on `inputs` (keyed by ONNX input name); outputs in graph order, keyed by
/// ONNX output name.
///
/// tract runs behind a panic boundary: a panic inside it (a shape it mishandles, an index it
/// does not check) becomes an error naming the model, not a crash of edgec.
pub fn run_onnx(model: &OnnxModel, inputs: &[(String, NdArray)]) -> Result<Vec<(String, NdArray)>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_onnx_unguarded(model, inputs))).unwrap_or_else(
        |payload| {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            Err(reference_error(
                model,
                format!("tract panicked on this model ({message}); edgec run still executes the package"),
            ))
        },
    )
}

fn run_onnx_unguarded(model: &OnnxModel, inputs: &[(String, NdArray)]) -> Result<Vec<(String, NdArray)>> {
    let err = |m: String| reference_error(model, m);
    let graph = model.proto.graph.as_ref().ok_or_else(|| err("no graph".into()))?;
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let declared: Vec<(&str, i32)> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .map(|i| {
            let elem = match i.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(type_proto::Value::TensorType(t)) => t.elem_type,
                _ => DataType::Float as i32,
            };
            (i.name.as_str(), elem)
        })
        .collect();

    let mut tract_model = tract_onnx::onnx()
        .model_for_path(&model.path)
        .map_err(|e| tract_failure(model, format!("{e:#}")))?;
    let mut values = TVec::new();
    for (index, (name, elem)) in declared.iter().enumerate() {
        let array = inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
            .ok_or_else(|| err(format!("no value for input {name:?}")))?;
        let tensor = to_tract(array, *elem).map_err(|e| err(format!("input {name:?}: {e}")))?;
        let fact = InferenceFact::dt_shape(tensor.datum_type(), tensor.shape());
        tract_model
            .set_input_fact(index, fact)
            .map_err(|e| tract_failure(model, format!("{e:#}")))?;
        values.push(tensor.into_tvalue());
    }
    let runnable = tract_model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| tract_failure(model, format!("{e:#}")))?;
    let outputs = runnable
        .run(values)
        .map_err(|e| tract_failure(model, format!("{e:#}")))?;
    graph
        .output
        .iter()
        .zip(outputs.iter())
        .map(|(o, t)| {
            from_tract(t)
                .map(|a| (o.name.clone(), a))
                .map_err(|e| err(format!("output {:?}: {e}", o.name)))
        })
        .collect()
}
