//! A readable text dump of an emitted MIL program, read back from the protobuf (so it shows
//! exactly what a package holds). Golden tests compare it; `edgec inspect` prints it.

use crate::proto::coreml::mil_spec::{
    argument::binding, dimension, tensor_value, value, value_type, Block, DataType, Operation, Program, Value,
    ValueType,
};
use std::fmt::Write;

pub fn dtype_name(dt: i32) -> String {
    match DataType::try_from(dt) {
        Ok(DataType::Float16) => "fp16".into(),
        Ok(DataType::Float32) => "fp32".into(),
        Ok(DataType::Int32) => "int32".into(),
        Ok(DataType::Bool) => "bool".into(),
        Ok(DataType::String) => "string".into(),
        Ok(DataType::Int8) => "int8".into(),
        Ok(DataType::Uint8) => "uint8".into(),
        Ok(other) => other.as_str_name().to_lowercase(),
        Err(_) => format!("dtype{dt}"),
    }
}

pub fn type_string(ty: Option<&ValueType>) -> String {
    match ty.and_then(|t| t.r#type.as_ref()) {
        Some(value_type::Type::TensorType(t)) => {
            let dims: Vec<String> = t
                .dimensions
                .iter()
                .map(|d| match &d.dimension {
                    Some(dimension::Dimension::Constant(c)) => c.size.to_string(),
                    _ => "?".into(),
                })
                .collect();
            format!("{}[{}]", dtype_name(t.data_type), dims.join(","))
        }
        Some(other) => format!("{other:?}"),
        None => "<untyped>".into(),
    }
}

/// Render a `Value`: immediates in full when short, blobs by offset.
pub fn value_string(v: &Value) -> String {
    match &v.value {
        Some(value::Value::BlobFileValue(b)) => {
            format!("blob({}, offset={})", b.file_name, b.offset)
        }
        Some(value::Value::ImmediateValue(imm)) => match &imm.value {
            Some(value::immediate_value::Value::Tensor(t)) => match &t.value {
                Some(tensor_value::Value::Floats(f)) => list(f.values.iter().map(|v| format!("{v:?}"))),
                Some(tensor_value::Value::Ints(i)) => list(i.values.iter().map(|v| v.to_string())),
                Some(tensor_value::Value::Bools(b)) => list(b.values.iter().map(|v| v.to_string())),
                Some(tensor_value::Value::Strings(s)) => list(s.values.iter().map(|v| format!("{v:?}"))),
                Some(tensor_value::Value::LongInts(l)) => list(l.values.iter().map(|v| v.to_string())),
                Some(tensor_value::Value::Doubles(d)) => list(d.values.iter().map(|v| v.to_string())),
                Some(tensor_value::Value::Bytes(b)) => bytes_string(v.r#type.as_ref(), &b.values),
                None => "[]".into(),
            },
            other => format!("{other:?}"),
        },
        None => "<no value>".into(),
    }
}

fn bytes_string(ty: Option<&ValueType>, bytes: &[u8]) -> String {
    let is_fp16 = matches!(ty.and_then(|t| t.r#type.as_ref()), Some(value_type::Type::TensorType(t)) if t.data_type == DataType::Float16 as i32);
    if is_fp16 {
        list(
            bytes
                .chunks_exact(2)
                .map(|c| format!("{:?}", half::f16::from_le_bytes([c[0], c[1]]).to_f32())),
        )
    } else {
        list(bytes.iter().map(|b| b.to_string()))
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    const SHOWN: usize = 8;
    let items: Vec<String> = items.collect();
    let single = items.len() == 1;
    let mut s = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN {
        let _ = write!(s, ", ... ({} values)", items.len());
    }
    if single {
        s
    } else {
        format!("[{s}]")
    }
}

fn op_line(op: &Operation) -> String {
    let outs: Vec<String> = op
        .outputs
        .iter()
        .map(|o| format!("%{}: {}", o.name, type_string(o.r#type.as_ref())))
        .collect();
    if op.r#type == "const" {
        let val = op.attributes.get("val").map(value_string).unwrap_or_default();
        return format!("{} = const({val})", outs.join(", "));
    }
    let args: Vec<String> = op
        .inputs
        .iter()
        .map(|(k, a)| {
            let bound: Vec<String> = a
                .arguments
                .iter()
                .map(|b| match &b.binding {
                    Some(binding::Binding::Name(n)) => format!("%{n}"),
                    Some(binding::Binding::Value(v)) => value_string(v),
                    None => "?".into(),
                })
                .collect();
            if bound.len() == 1 {
                format!("{k}={}", bound[0])
            } else {
                format!("{k}=({})", bound.join(", "))
            }
        })
        .collect();
    let pin = op
        .attributes
        .get(crate::plan::pin::INTENDED_BACKEND)
        .map(|v| format!("  [IntendedBackend: {}]", backend_list(v)))
        .unwrap_or_default();
    format!("{} = {}({}){pin}", outs.join(", "), op.r#type, args.join(", "))
}

/// The strings of an `IntendedBackend` list value (`--pin-compute-units`).
fn backend_list(v: &Value) -> String {
    let Some(value::Value::ImmediateValue(imm)) = &v.value else {
        return "?".into();
    };
    let Some(value::immediate_value::Value::List(list)) = &imm.value else {
        return "?".into();
    };
    let names: Vec<String> = list.values.iter().map(value_string).collect();
    names.join(", ")
}

pub fn program_text(program: &Program) -> String {
    let mut out = String::new();
    for (name, f) in &program.functions {
        let inputs: Vec<String> = f
            .inputs
            .iter()
            .map(|i| format!("%{}: {}", i.name, type_string(i.r#type.as_ref())))
            .collect();
        let _ = writeln!(out, "func {name}<{}>({}) {{", f.opset, inputs.join(", "));
        if let Some(block) = f.block_specializations.get(&f.opset) {
            block_lines(block, "  ", &mut out);
            let outs: Vec<String> = block.outputs.iter().map(|o| format!("%{o}")).collect();
            let _ = writeln!(out, "}} -> ({})", outs.join(", "));
        } else {
            let _ = writeln!(out, "}} (no block for opset {})", f.opset);
        }
    }
    out
}

/// `block`'s ops at `indent`; a control-flow op's blocks follow it, one level deeper, each as
/// `block(inputs) { ... } -> (outputs)`.
fn block_lines(block: &Block, indent: &str, out: &mut String) {
    for op in &block.operations {
        let _ = writeln!(out, "{indent}{}", op_line(op));
        for nested in &op.blocks {
            let inputs: Vec<String> = nested
                .inputs
                .iter()
                .map(|i| format!("%{}: {}", i.name, type_string(i.r#type.as_ref())))
                .collect();
            let _ = writeln!(out, "{indent}  block({}) {{", inputs.join(", "));
            block_lines(nested, &format!("{indent}    "), out);
            let outs: Vec<String> = nested.outputs.iter().map(|o| format!("%{o}")).collect();
            let _ = writeln!(out, "{indent}  }} -> ({})", outs.join(", "));
        }
    }
}
