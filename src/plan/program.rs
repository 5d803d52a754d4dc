//! A read-only view of a MIL program for the planner: the ops of `main` in program order, the
//! type of every value, which values are constants (from `const` or `constexpr_*` ops: weights
//! decompressed at load time), and who produces and reads each value.

use crate::coreml::text::dtype_name;
use crate::proto::coreml::mil_spec::{
    argument::binding, dimension, tensor_value, value, value_type, Block, DataType, Operation, Program, Value,
};
use std::collections::{HashMap, HashSet};

/// The static type of a tensor value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: i32,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }

    pub fn bytes(&self) -> u64 {
        let size = match DataType::try_from(self.dtype) {
            Ok(DataType::Float32 | DataType::Int32 | DataType::Uint32) => 4,
            Ok(DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16) => 2,
            Ok(DataType::Float64 | DataType::Int64 | DataType::Uint64) => 8,
            _ => 1,
        };
        self.elements() * size
    }

    pub fn is(&self, dtype: DataType) -> bool {
        self.dtype == dtype as i32
    }
}

impl std::fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        write!(f, "{}[{}]", dtype_name(self.dtype), dims.join(","))
    }
}

/// Op types that only hold (or decompress) weights; Core ML's compute plan does not list them.
pub fn is_constant_op(op_type: &str) -> bool {
    op_type == "const" || op_type.starts_with("constexpr_")
}

pub struct ProgramView<'a> {
    /// Every op of `main`'s block, consts included, in program order.
    pub ops: Vec<&'a Operation>,
    pub types: HashMap<&'a str, TensorInfo>,
    /// Values defined by constant ops.
    pub constants: HashSet<&'a str>,
    /// The `val` of each `const` op, by its output name.
    pub const_values: HashMap<&'a str, &'a Value>,
    /// Value name → the index (in `ops`) of the op producing it.
    pub producer: HashMap<&'a str, usize>,
    /// Value name → indices of the non-constant ops reading it.
    pub readers: HashMap<&'a str, Vec<usize>>,
    pub function_inputs: HashSet<&'a str>,
    pub block_outputs: HashSet<&'a str>,
}

/// `main`'s block for its opset (edgec writes one function; other tools may write more, but an
/// app loads `main` unless it names another).
pub fn main_block(program: &Program) -> Option<(&crate::proto::coreml::mil_spec::Function, &Block)> {
    let function = program
        .functions
        .get("main")
        .or_else(|| program.functions.values().next())?;
    let block = function.block_specializations.get(&function.opset)?;
    Some((function, block))
}

impl<'a> ProgramView<'a> {
    pub fn new(program: &'a Program) -> Self {
        let mut view = ProgramView {
            ops: Vec::new(),
            types: HashMap::new(),
            constants: HashSet::new(),
            const_values: HashMap::new(),
            producer: HashMap::new(),
            readers: HashMap::new(),
            function_inputs: HashSet::new(),
            block_outputs: HashSet::new(),
        };
        let Some((function, block)) = main_block(program) else {
            return view;
        };
        for input in &function.inputs {
            view.function_inputs.insert(input.name.as_str());
            if let Some(t) = tensor_info(input.r#type.as_ref()) {
                view.types.insert(input.name.as_str(), t);
            }
        }
        view.block_outputs = block.outputs.iter().map(String::as_str).collect();
        for (index, op) in block.operations.iter().enumerate() {
            let constant = is_constant_op(&op.r#type);
            for out in &op.outputs {
                view.producer.insert(out.name.as_str(), index);
                if let Some(t) = tensor_info(out.r#type.as_ref()) {
                    view.types.insert(out.name.as_str(), t);
                }
                if constant {
                    view.constants.insert(out.name.as_str());
                }
            }
            if op.r#type == "const" {
                if let (Some(out), Some(val)) = (op.outputs.first(), op.attributes.get("val")) {
                    view.const_values.insert(out.name.as_str(), val);
                }
            }
            if !constant {
                for name in input_names(op) {
                    view.readers.entry(name).or_default().push(index);
                }
            }
            view.ops.push(op);
        }
        view
    }

    /// The value bound to parameter `param` of `op` (its first binding), by name.
    pub fn input<'o>(&self, op: &'o Operation, param: &str) -> Option<&'o str> {
        op.inputs.get(param)?.arguments.iter().find_map(|b| match &b.binding {
            Some(binding::Binding::Name(n)) => Some(n.as_str()),
            _ => None,
        })
    }

    pub fn is_constant(&self, name: &str) -> bool {
        self.constants.contains(name)
    }

    /// Integer values of a constant parameter (`strides`, `kernel_sizes`, ...).
    pub fn ints(&self, op: &Operation, param: &str) -> Option<Vec<i64>> {
        let name = self.input(op, param)?;
        let val = self.const_values.get(name)?;
        match &val.value {
            Some(value::Value::ImmediateValue(imm)) => match &imm.value {
                Some(value::immediate_value::Value::Tensor(t)) => match &t.value {
                    Some(tensor_value::Value::Ints(i)) => Some(i.values.iter().map(|&v| v as i64).collect()),
                    Some(tensor_value::Value::LongInts(l)) => Some(l.values.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// A boolean constant parameter (`transpose_x`, ...).
    pub fn flag(&self, op: &Operation, param: &str) -> Option<bool> {
        let name = self.input(op, param)?;
        match &self.const_values.get(name)?.value {
            Some(value::Value::ImmediateValue(imm)) => match &imm.value {
                Some(value::immediate_value::Value::Tensor(t)) => match &t.value {
                    Some(tensor_value::Value::Bools(b)) => b.values.first().copied(),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    /// The type of the value bound to `param`.
    pub fn input_type(&self, op: &Operation, param: &str) -> Option<&TensorInfo> {
        self.types.get(self.input(op, param)?)
    }

    /// Every value `op` reads that ops compute (not constants, not parameters), with the
    /// parameter it is bound to.
    pub fn runtime_inputs<'o>(&self, op: &'o Operation) -> Vec<(&'o str, &'o str)> {
        let mut found = Vec::new();
        for (param, arg) in &op.inputs {
            for b in &arg.arguments {
                if let Some(binding::Binding::Name(n)) = &b.binding {
                    if !self.is_constant(n) {
                        found.push((param.as_str(), n.as_str()));
                    }
                }
            }
        }
        found
    }
}

/// Every value name `op` reads: its bound parameters in parameter order, then what its blocks
/// (control flow) read from the enclosing scope.
pub fn input_names(op: &Operation) -> impl Iterator<Item = &str> {
    crate::coreml::scope::op_reads(op)
}

/// The name of an op: its `name` attribute, or its first output.
pub fn op_name(op: &Operation) -> String {
    let attribute = op.attributes.get("name").and_then(|v| match &v.value {
        Some(value::Value::ImmediateValue(imm)) => match &imm.value {
            Some(value::immediate_value::Value::Tensor(t)) => match &t.value {
                Some(tensor_value::Value::Strings(s)) => s.values.first().cloned(),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    });
    attribute
        .or_else(|| op.outputs.first().map(|o| o.name.clone()))
        .unwrap_or_default()
}

fn tensor_info(ty: Option<&crate::proto::coreml::mil_spec::ValueType>) -> Option<TensorInfo> {
    match ty?.r#type.as_ref()? {
        value_type::Type::TensorType(t) => {
            let shape = t
                .dimensions
                .iter()
                .map(|d| match &d.dimension {
                    Some(dimension::Dimension::Constant(c)) => c.size as usize,
                    // A flexible dimension: plan at size 1 (the flexible-shape rule says why
                    // the plan is weaker then).
                    _ => 1,
                })
                .collect();
            Some(TensorInfo {
                dtype: t.data_type,
                shape,
            })
        }
        _ => None,
    }
}
