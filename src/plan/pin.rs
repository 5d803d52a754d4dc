//! `--pin-compute-units`: each planned op's unit as the `IntendedBackend` op attribute, encoded
//! as coremltools 9's `set_intended_backends` writes it
//! (`coremltools/models/ml_program/experimental/compute_plan_utils.py`): a `ListType` value of
//! constant length N whose element type is a STRING tensor, holding N rank-0 STRING tensors of
//! one string each. Backend names per unit are coremltools' `_get_backend_names` ("the same is
//! set by the Core ML framework"). Constant ops get none, as a compute plan lists none.
//!
//! Opt-in: nobody has shown on a device what Core ML does with a hint it cannot honour.

use super::{Plan, Unit};
use crate::proto::coreml::mil_spec::{
    dimension, value, value_type, DataType, Dimension, ListType, ListValue, Program, TensorType, Value, ValueType,
};
use std::collections::HashMap;

/// The attribute key.
pub const INTENDED_BACKEND: &str = "IntendedBackend";

/// Core ML's backend names for a unit.
pub fn backend_names(unit: Unit) -> &'static [&'static str] {
    match unit {
        Unit::Ane => &["ane"],
        Unit::Gpu => &["mps_graph"],
        Unit::Cpu => &["bnns", "classic_cpu", "e5_minimal_cpu"],
    }
}

fn string_tensor_type() -> ValueType {
    ValueType {
        r#type: Some(value_type::Type::TensorType(TensorType {
            data_type: DataType::String as i32,
            ..Default::default()
        })),
    }
}

/// The attribute value for `names`.
pub fn backends_value(names: &[&str]) -> Value {
    let list_type = ListType {
        r#type: Some(Box::new(string_tensor_type())),
        length: Some(Dimension {
            dimension: Some(dimension::Dimension::Constant(dimension::ConstantDimension {
                size: names.len() as u64,
            })),
        }),
    };
    let values = names
        .iter()
        .map(|n| {
            let mut v = crate::coreml::mil::string_value(n);
            v.r#type = Some(string_tensor_type());
            v
        })
        .collect();
    Value {
        doc_string: String::new(),
        r#type: Some(ValueType {
            r#type: Some(value_type::Type::ListType(Box::new(list_type))),
        }),
        value: Some(value::Value::ImmediateValue(value::ImmediateValue {
            value: Some(value::immediate_value::Value::List(ListValue { values })),
        })),
    }
}

/// Write every planned op's unit into `program` (its `main` block). Returns how many ops were
/// pinned.
pub fn pin(program: &mut Program, plan: &Plan) -> usize {
    let units: HashMap<&str, Unit> = plan.ops.iter().map(|o| (o.name.as_str(), o.unit)).collect();
    let mut pinned = 0;
    for function in program.functions.values_mut() {
        let opset = function.opset.clone();
        let Some(block) = function.block_specializations.get_mut(&opset) else {
            continue;
        };
        for op in &mut block.operations {
            let name = super::program::op_name(op);
            if let Some(&unit) = units.get(name.as_str()) {
                op.attributes
                    .insert(INTENDED_BACKEND.to_string(), backends_value(backend_names(unit)));
                pinned += 1;
            }
        }
    }
    pinned
}
