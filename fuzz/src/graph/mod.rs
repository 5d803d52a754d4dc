//! A structured generator of small ONNX models over the ops edgec imports.
//!
//! The generator keeps the values it has made with their element types and shapes, and adds
//! nodes one at a time. Most steps pick an op it knows the shape rule of ([`ops::CHAINED`]) and
//! draw attributes and constant operands that make the node valid, so the graph grows deeper
//! and often compiles. Some steps instead add a node of any op of edgec's registry with freely
//! drawn inputs and attributes ([`ops::terminal`]); its outputs, of unknown shape, only become
//! graph outputs. Shapes stay small (at most [`MAX_ELEMENTS`] per value) so the interpreter runs
//! a compiled graph in milliseconds.

mod control;
mod ops;
mod scatter;

use arbitrary::{Result, Unstructured};
use edgec::proto::onnx::attribute_proto::AttributeType;
use edgec::proto::onnx::tensor_proto::DataType;
use edgec::proto::onnx::tensor_shape_proto::{dimension, Dimension};
use edgec::proto::onnx::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};

/// The most elements one generated value may have.
pub const MAX_ELEMENTS: i64 = 4096;
/// The most nodes one model gets.
const MAX_STEPS: usize = 10;

/// The element types generated values carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    I64,
    Bool,
}

impl Elem {
    fn onnx(self) -> DataType {
        match self {
            Elem::F32 => DataType::Float,
            Elem::I64 => DataType::Int64,
            Elem::Bool => DataType::Bool,
        }
    }
}

/// A value of the graph being built, with the shape ONNX gives it.
#[derive(Clone, Debug)]
pub struct Val {
    pub name: String,
    pub elem: Elem,
    pub shape: Vec<i64>,
}

impl Val {
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

pub fn numel(shape: &[i64]) -> i64 {
    shape.iter().product()
}

/// The model being generated.
pub struct Gen<'a, 'u> {
    pub u: &'u mut Unstructured<'a>,
    pub opset: i64,
    pub vals: Vec<Val>,
    pub(super) nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    /// Outputs of terminal nodes: graph outputs of unknown shape.
    loose_outputs: Vec<String>,
    counter: usize,
}

/// The generated model and the byte that picks its compile options.
pub fn generate(data: &[u8]) -> Result<(u8, ModelProto)> {
    let mut u = Unstructured::new(data);
    let option_byte: u8 = u.arbitrary()?;
    let opset = u.int_in_range(7..=*edgec::onnx::SUPPORTED_OPSETS.end())?;
    let mut g = Gen {
        u: &mut u,
        opset,
        vals: Vec::new(),
        nodes: Vec::new(),
        initializers: Vec::new(),
        inputs: Vec::new(),
        loose_outputs: Vec::new(),
        counter: 0,
    };
    let input_count = g.u.int_in_range(1..=2)?;
    for _ in 0..input_count {
        let elem = match g.u.int_in_range(0..=9)? {
            0 => Elem::I64,
            1 => Elem::Bool,
            _ => Elem::F32,
        };
        let shape = g.shape(1, 4)?;
        g.graph_input(elem, shape);
    }
    let steps = g.u.int_in_range(1..=MAX_STEPS)?;
    for _ in 0..steps {
        if g.u.ratio(1, 8)? {
            ops::terminal(&mut g)?;
        } else {
            let index = g.u.choose_index(ops::CHAINED.len())?;
            let (_, build) = ops::CHAINED[index];
            // An op that finds no operand it can use adds nothing; the next step tries another.
            build(&mut g)?;
        }
    }
    Ok((option_byte, g.finish()?))
}

/// FNV-1a of `bytes`: names dumped models by content.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn tensor_type(elem: Elem, shape: Option<&[i64]>) -> TypeProto {
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: elem.onnx() as i32,
            shape: shape.map(|s| TensorShapeProto {
                dim: s
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(dimension::Value::DimValue(d)),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    }
}

impl Gen<'_, '_> {
    pub fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}", self.counter)
    }

    /// A shape of rank `min_rank..=max_rank` with small dimensions.
    pub fn shape(&mut self, min_rank: usize, max_rank: usize) -> Result<Vec<i64>> {
        let rank = self.u.int_in_range(min_rank..=max_rank)?;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(self.u.int_in_range(1..=6)?);
        }
        Ok(shape)
    }

    /// A graph input of `elem` and `shape` that later nodes do not pick (indices, say): its name.
    pub fn runtime_input(&mut self, elem: Elem, shape: Vec<i64>) -> String {
        let name = self.fresh("input");
        self.inputs.push(ValueInfoProto {
            name: name.clone(),
            r#type: Some(tensor_type(elem, Some(&shape))),
            ..Default::default()
        });
        name
    }

    fn graph_input(&mut self, elem: Elem, shape: Vec<i64>) {
        let name = self.runtime_input(elem, shape.clone());
        self.vals.push(Val { name, elem, shape });
    }

    /// A value satisfying `accept`, if there is one.
    pub fn pick(&mut self, accept: impl Fn(&Val) -> bool) -> Result<Option<Val>> {
        let candidates: Vec<usize> = (0..self.vals.len()).filter(|&i| accept(&self.vals[i])).collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        // Prefer recent values, so graphs grow deep rather than wide.
        let index = if self.u.ratio(2, 3)? {
            candidates.len() - 1
        } else {
            self.u.choose_index(candidates.len())?
        };
        Ok(Some(self.vals[candidates[index]].clone()))
    }

    pub fn pick_float(&mut self) -> Result<Option<Val>> {
        self.pick(|v| v.elem == Elem::F32)
    }

    pub fn pick_float_rank(&mut self, ranks: std::ops::RangeInclusive<usize>) -> Result<Option<Val>> {
        self.pick(|v| v.elem == Elem::F32 && ranks.contains(&v.rank()))
    }

    /// A float initializer of `shape` with small values (some of them zero or negative).
    pub fn init_f32(&mut self, shape: &[i64]) -> Result<String> {
        let mut values = Vec::with_capacity(numel(shape) as usize);
        for _ in 0..numel(shape) {
            values.push(f32::from(self.u.int_in_range(-8i8..=8)?) / 4.0);
        }
        Ok(self.init_floats(shape, values))
    }

    /// A float initializer of `shape` with values in `0.25..=2` (variances, scales that must not
    /// vanish).
    pub fn init_positive(&mut self, shape: &[i64]) -> Result<String> {
        let mut values = Vec::with_capacity(numel(shape) as usize);
        for _ in 0..numel(shape) {
            values.push(f32::from(self.u.int_in_range(1u8..=8)?) / 4.0);
        }
        Ok(self.init_floats(shape, values))
    }

    pub fn init_floats(&mut self, shape: &[i64], values: Vec<f32>) -> String {
        let name = self.fresh("w");
        // Half the weights as raw little-endian bytes, half in the typed field: both are read.
        let raw = self.u.ratio(1, 2).unwrap_or(false);
        let mut t = TensorProto {
            name: name.clone(),
            dims: shape.to_vec(),
            data_type: DataType::Float as i32,
            ..Default::default()
        };
        if raw {
            t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>().into();
        } else {
            t.float_data = values;
        }
        self.initializers.push(t);
        name
    }

    /// An int64 initializer (shapes, axes, indices).
    pub fn init_i64(&mut self, shape: &[i64], values: Vec<i64>) -> String {
        let name = self.fresh("c");
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: shape.to_vec(),
            data_type: DataType::Int64 as i32,
            int64_data: values,
            ..Default::default()
        });
        name
    }

    /// A rank-1 int64 initializer.
    pub fn init_ints(&mut self, values: Vec<i64>) -> String {
        self.init_i64(&[values.len() as i64], values)
    }

    /// A rank-0 initializer of `elem` holding `value`.
    pub fn init_scalar(&mut self, elem: Elem, value: f64) -> String {
        let name = self.fresh("s");
        let mut t = TensorProto {
            name: name.clone(),
            data_type: elem.onnx() as i32,
            ..Default::default()
        };
        match elem {
            Elem::F32 => t.float_data = vec![value as f32],
            Elem::I64 => t.int64_data = vec![value as i64],
            Elem::Bool => t.int32_data = vec![i32::from(value != 0.0)],
        }
        self.initializers.push(t);
        name
    }

    /// Add a node; `outputs` gives each output's element type and shape (`None`: unknown, so
    /// it becomes a graph output and nothing consumes it).
    pub fn node(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        attributes: Vec<AttributeProto>,
        outputs: Vec<Option<(Elem, Vec<i64>)>>,
    ) -> Vec<String> {
        let names: Vec<String> = outputs.iter().map(|_| self.fresh(&op.to_lowercase())).collect();
        for (name, out) in names.iter().zip(outputs) {
            match out {
                Some((elem, shape)) => self.vals.push(Val {
                    name: name.clone(),
                    elem,
                    shape,
                }),
                None => self.loose_outputs.push(name.clone()),
            }
        }
        let name = self.fresh("node");
        self.nodes.push(NodeProto {
            input: inputs,
            output: names.clone(),
            name,
            op_type: op.to_string(),
            attribute: attributes,
            ..Default::default()
        });
        names
    }

    /// Add a node with one output of known type.
    pub fn node1(
        &mut self,
        op: &str,
        inputs: Vec<String>,
        attributes: Vec<AttributeProto>,
        elem: Elem,
        shape: Vec<i64>,
    ) {
        self.node(op, inputs, attributes, vec![Some((elem, shape))]);
    }

    /// The model: graph outputs are the loose outputs, the newest value, and a few others.
    fn finish(mut self) -> Result<ModelProto> {
        let mut outputs: Vec<(String, Option<Elem>)> = self.loose_outputs.iter().map(|n| (n.clone(), None)).collect();
        let produced: Vec<Val> = self
            .vals
            .iter()
            .filter(|v| !self.inputs.iter().any(|i| i.name == v.name))
            .cloned()
            .collect();
        for (i, v) in produced.iter().enumerate() {
            if i + 1 == produced.len() || self.u.ratio(1, 4)? {
                outputs.push((v.name.clone(), Some(v.elem)));
            }
        }
        if outputs.is_empty() {
            // Nothing was built on the inputs: pass the first one through.
            let first = self.vals[0].clone();
            self.node1("Identity", vec![first.name], Vec::new(), first.elem, first.shape);
            let last = self.vals.last().map(|v| (v.name.clone(), Some(v.elem)));
            outputs.extend(last);
        }
        let graph = GraphProto {
            node: self.nodes,
            name: "fuzz".into(),
            initializer: self.initializers,
            input: self.inputs,
            output: outputs
                .into_iter()
                .map(|(name, elem)| ValueInfoProto {
                    name,
                    r#type: elem.map(|e| tensor_type(e, None)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Ok(ModelProto {
            ir_version: 8,
            producer_name: "edgec-fuzz".into(),
            graph: Some(graph),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            ..Default::default()
        })
    }
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints,
        ..Default::default()
    }
}

pub fn attr_floats(name: &str, floats: Vec<f32>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats,
        ..Default::default()
    }
}

pub fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

pub fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Tensor as i32,
        t: Some(t),
        ..Default::default()
    }
}
