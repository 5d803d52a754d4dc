//! The op registry: one importer per ONNX op type, filled family by family.
//!
//! An importer reads its node through [`NodeCx`] (inputs, constant inputs, attributes with
//! their ONNX defaults, the opset) and adds IR nodes; it returns the values of the node's
//! outputs in order. To add an op: write the importer in its family's file and list it in that
//! file's `OPS`.

mod activation;
mod conv;
mod conv_transpose;
mod decomposed;
mod einsum;
mod elementwise;
mod grid;
mod indexing;
mod layout;
mod linalg;
mod logic;
mod norm;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod rotary;
mod scan;
mod scatter;
mod shape;
mod shape_of;
mod static_indexing;
mod trig;
mod unary;
mod window;

use super::tensor::{self, ExternalData};
use crate::proto::onnx::{attribute_proto::AttributeType, AttributeProto, NodeProto};
use edgec_passes::ir::{DType, Graph, Tensor, TensorType, ValueId};
use edgec_passes::op::Op;
use std::collections::HashMap;

/// Imports one node; errors are messages the caller wraps with the node's name and op.
pub type Importer = fn(&mut NodeCx) -> Result<Vec<ValueId>, String>;

const FAMILIES: &[&[(&str, Importer)]] = &[
    activation::OPS,
    conv::OPS,
    conv_transpose::OPS,
    decomposed::OPS,
    einsum::OPS,
    grid::OPS,
    elementwise::OPS,
    indexing::OPS,
    layout::OPS,
    linalg::OPS,
    logic::OPS,
    norm::OPS,
    quant::OPS,
    recurrent::OPS,
    reduce::OPS,
    resize::OPS,
    rotary::OPS,
    scan::OPS,
    scatter::OPS,
    shape::OPS,
    shape_of::OPS,
    static_indexing::OPS,
    trig::OPS,
    unary::OPS,
    window::OPS,
];

/// Ops the import loop handles itself, as they import subgraphs (`super::control_flow`).
pub const CONTROL_FLOW: &[&str] = &["If", "Loop"];

pub fn lookup(op_type: &str) -> Option<Importer> {
    FAMILIES
        .iter()
        .flat_map(|f| f.iter())
        .find(|(name, _)| *name == op_type)
        .map(|&(_, f)| f)
}

/// Every ONNX op type edgec imports, sorted.
pub fn supported_op_types() -> Vec<&'static str> {
    let mut names: Vec<&str> = FAMILIES.iter().flat_map(|f| f.iter().map(|(n, _)| *n)).collect();
    names.extend(CONTROL_FLOW);
    names.sort_unstable();
    names
}

/// What an importer sees of its node and the graph being built.
pub struct NodeCx<'a> {
    pub node: &'a NodeProto,
    pub opset: i64,
    pub graph: &'a mut Graph,
    env: &'a HashMap<String, ValueId>,
    external: &'a mut ExternalData,
}

impl<'a> NodeCx<'a> {
    pub fn new(
        node: &'a NodeProto,
        opset: i64,
        graph: &'a mut Graph,
        env: &'a HashMap<String, ValueId>,
        external: &'a mut ExternalData,
    ) -> Self {
        NodeCx {
            node,
            opset,
            graph,
            env,
            external,
        }
    }

    /// Input `i`, or `None` when absent (omitted or given as the empty name).
    pub fn input(&self, i: usize) -> Option<ValueId> {
        let name = self.node.input.get(i).filter(|n| !n.is_empty())?;
        self.env.get(name).copied()
    }

    pub fn required_input(&self, i: usize) -> Result<ValueId, String> {
        self.input(i).ok_or_else(|| format!("input {i} is required"))
    }

    /// Required input `i`, which must be a float tensor (for ops edgec builds only for floats),
    /// with its dtype.
    pub fn float_input(&self, i: usize) -> Result<(ValueId, DType), String> {
        let x = self.required_input(i)?;
        let ty = self.ty(x);
        if !ty.dtype.is_float() {
            return Err(format!(
                "{} of {ty} is not supported (float inputs only)",
                self.node.op_type
            ));
        }
        Ok((x, ty.dtype))
    }

    pub fn input_count(&self) -> usize {
        self.node.input.len()
    }

    pub fn ty(&self, v: ValueId) -> &TensorType {
        self.graph.ty(v)
    }

    /// Input `i` as a constant, if it is one.
    pub fn const_input(&self, i: usize) -> Option<&Tensor> {
        self.input(i).and_then(|v| self.graph.constant(v))
    }

    /// Input `i` as constant integers (for shape-like inputs such as Reshape's `shape`).
    pub fn const_ints(&self, i: usize, what: &str) -> Result<Vec<i64>, String> {
        let t = self
            .const_input(i)
            .ok_or_else(|| format!("{what} (input {i}) must be a constant"))?;
        Ok(t.to_i64_vec())
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    pub fn attr_int(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.r#type == AttributeType::Int as i32 => Ok(a.i),
            Some(_) => Err(format!("attribute {name:?} must be an int")),
        }
    }

    pub fn attr_float(&self, name: &str, default: f32) -> Result<f32, String> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) if a.r#type == AttributeType::Float as i32 => Ok(a.f),
            Some(_) => Err(format!("attribute {name:?} must be a float")),
        }
    }

    pub fn attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == AttributeType::Ints as i32 => Ok(Some(a.ints.clone())),
            Some(_) => Err(format!("attribute {name:?} must be a list of ints")),
        }
    }

    pub fn attr_floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == AttributeType::Floats as i32 => Ok(Some(a.floats.clone())),
            Some(_) => Err(format!("attribute {name:?} must be a list of floats")),
        }
    }

    pub fn attr_string(&self, name: &str, default: &str) -> Result<String, String> {
        match self.attr(name) {
            None => Ok(default.to_string()),
            Some(a) if a.r#type == AttributeType::String as i32 => Ok(String::from_utf8_lossy(&a.s).into_owned()),
            Some(_) => Err(format!("attribute {name:?} must be a string")),
        }
    }

    pub fn attr_strings(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == AttributeType::Strings as i32 => Ok(Some(
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            )),
            Some(_) => Err(format!("attribute {name:?} must be a list of strings")),
        }
    }

    pub fn attr_tensor(&mut self, name: &str) -> Result<Option<Tensor>, String> {
        let Some(a) = self.node.attribute.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        let t =
            a.t.as_ref()
                .ok_or_else(|| format!("attribute {name:?} must be a tensor"))?;
        tensor::to_tensor(t, self.external)
            .map(Some)
            .map_err(|e| format!("attribute {name:?}: {e}"))
    }

    /// Name of the node's first output, the base for names of intermediate values.
    fn base_name(&self) -> String {
        match self.node.output.first().filter(|n| !n.is_empty()) {
            Some(n) => n.clone(),
            None if !self.node.name.is_empty() => self.node.name.clone(),
            None => self.node.op_type.to_lowercase(),
        }
    }

    /// Add the op producing the node's outputs (named after them).
    pub fn add(&mut self, op: Op, inputs: Vec<ValueId>) -> Result<Vec<ValueId>, String> {
        let names = self.node.output.clone();
        let outputs = self
            .graph
            .add_node(op, inputs, &names, self.node.name.clone())
            .map_err(|e| e.0)?;
        self.check_outputs(&outputs)?;
        self.fold_last();
        Ok(outputs)
    }

    /// Take `bytes` of the model's computed-constant budget (see
    /// [`super::limits::computed_constant_budget`]) for a constant an importer materialises.
    pub fn charge_constant(&mut self, bytes: usize) -> Result<(), String> {
        match self.graph.fold_budget {
            Some(budget) if bytes > budget => Err(format!(
                "its {bytes}-byte result would pass the {}-byte budget left for the constants edgec computes for this model (1 GiB plus {}x the bytes of its initializers)",
                budget,
                super::limits::COMPUTED_BYTES_PER_INITIALIZER_BYTE
            )),
            Some(budget) => {
                self.graph.fold_budget = Some(budget - bytes);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Shapes computed from the model's numbers (Expand's target, Tile's repeats, ...) obey the
    /// same caps as declared ones.
    fn check_outputs(&self, outputs: &[ValueId]) -> Result<(), String> {
        for &v in outputs {
            super::limits::check_computed_shape(&self.graph.ty(v).shape)
                .map_err(|e| format!("output {:?}: {e}", self.graph.value(v).name))?;
        }
        Ok(())
    }

    /// Fold the node just added when all its inputs are constants, so later importers see a
    /// constant (a Clip bound or a Reshape shape computed by a Cast, say) and not an op.
    fn fold_last(&mut self) {
        let Some(&id) = self.graph.order.last() else { return };
        if edgec_passes::passes::fold_constants::fold_node(self.graph, id) {
            self.graph.order.pop();
        }
    }

    /// Add an op producing only the node's output `index` (named after it): for nodes whose
    /// outputs are built one by one, such as Split.
    pub fn add_output(&mut self, index: usize, op: Op, inputs: Vec<ValueId>) -> Result<ValueId, String> {
        let name = self.node.output.get(index).cloned().unwrap_or_default();
        self.add_named(op, inputs, name)
    }

    /// Add a single-output op whose output is called `name`, folding it if it is constant.
    fn add_named(&mut self, op: Op, inputs: Vec<ValueId>, name: String) -> Result<ValueId, String> {
        let out = self
            .graph
            .add_node(op, inputs, &[name], self.node.name.clone())
            .map_err(|e| e.0)?;
        self.check_outputs(&out)?;
        self.fold_last();
        Ok(out[0])
    }

    /// A constant named after the node's output `index`.
    pub fn add_const_output(&mut self, index: usize, tensor: Tensor) -> ValueId {
        let name = self.node.output.get(index).cloned().unwrap_or_default();
        self.graph.add_const(name, tensor)
    }

    /// A constant helper value named `<first output>_<suffix>`.
    pub fn add_const_step(&mut self, tensor: Tensor, suffix: &str) -> ValueId {
        let name = format!("{}_{suffix}", self.base_name());
        self.graph.add_const(name, tensor)
    }

    /// Optional input `i` as constant integers; `None` when the input is absent.
    pub fn opt_const_ints(&self, i: usize, what: &str) -> Result<Option<Vec<i64>>, String> {
        match self.input(i) {
            Some(_) => self.const_ints(i, what).map(Some),
            None => Ok(None),
        }
    }

    /// Whether output `index` exists and is used by name (optional outputs may be left empty).
    pub fn has_output(&self, index: usize) -> bool {
        self.node.output.get(index).is_some_and(|n| !n.is_empty())
    }

    /// Add an intermediate op with several outputs, named `<first output>_<suffix>` each.
    pub fn add_steps(&mut self, op: Op, inputs: Vec<ValueId>, suffixes: &[&str]) -> Result<Vec<ValueId>, String> {
        let base = self.base_name();
        let names: Vec<String> = suffixes.iter().map(|s| format!("{base}_{s}")).collect();
        let origin = self.node.name.clone();
        self.graph.add_node(op, inputs, &names, origin).map_err(|e| e.0)
    }

    /// Add an intermediate op; its output is named `<first output>_<suffix>`.
    pub fn add_step(&mut self, op: Op, inputs: Vec<ValueId>, suffix: &str) -> Result<ValueId, String> {
        let name = format!("{}_{suffix}", self.base_name());
        self.add_named(op, inputs, name)
    }
}

/// Normalise a possibly negative axis against `rank`.
pub fn axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..r.max(1)).contains(&a) {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// [`axis`] for an op that needs a real axis of its input (Gather, Split, TopK...): a rank-0
/// input has none.
pub fn tensor_axis(axis_value: i64, rank: usize) -> Result<usize, String> {
    if rank == 0 {
        return Err(format!(
            "the input is a scalar (rank 0), which has no axis {axis_value}"
        ));
    }
    axis(axis_value, rank)
}

/// Normalise a list of possibly negative axes against `rank`, refusing duplicates.
pub fn axes(values: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        let a = axis(v, rank)?;
        if out.contains(&a) {
            return Err(format!("axis {v} appears twice in {values:?}"));
        }
        out.push(a);
    }
    Ok(out)
}

/// Convert ONNX ints that must be positive sizes (kernels, strides, dilations, sizes), each at
/// most a dimension ([`super::limits::MAX_DIM`]), so that shape arithmetic on them cannot
/// overflow.
pub fn positive(values: &[i64], what: &str) -> Result<Vec<usize>, String> {
    values
        .iter()
        .map(|&v| {
            if v <= 0 {
                return Err(format!("{what} must be positive, got {values:?}"));
            }
            super::limits::MAX_DIM
                .check(v as u64)
                .map_err(|e| format!("{what} {values:?}: {e}"))?;
            Ok(v as usize)
        })
        .collect()
}

/// Convert ONNX ints that must be non-negative amounts (pads, output padding), each at most a
/// dimension, as [`positive`] does.
pub fn non_negative(values: &[i64], what: &str) -> Result<Vec<usize>, String> {
    values
        .iter()
        .map(|&v| {
            if v < 0 {
                return Err(format!("{what} must be non-negative, got {values:?}"));
            }
            super::limits::MAX_DIM
                .check(v as u64)
                .map_err(|e| format!("{what} {values:?}: {e}"))?;
            Ok(v as usize)
        })
        .collect()
}
