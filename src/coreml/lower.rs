//! Lower the legal IR to a MIL `Program`, one MIL op per IR op (the MIL op may depend on the
//! deployment target; the one exception is an fp16 DCR DepthToSpace before iOS 17, which
//! works around a Core ML bug with four ops). Ops with several results (topk) name each
//! output and are named after the first.
//!
//! Following what Core ML's own converter writes: every parameter is explicit (defaults
//! included) and bound by name to a `const` op; constants of 10 or more fp16/fp32/int8/uint8
//! elements go to `weight.bin`, smaller ones are immediates; every op carries only the `name`
//! attribute; conv and pool pads are always explicit (`pad_type = "custom"`; conv_transpose
//! uses `valid` when it crops nothing).

mod compressed;
mod pad;
mod recurrent;

use super::mil::{self, arg, args, Immediate};
use super::names::NameTable;
use super::target::DeploymentTarget;
use super::weights::{BlobType, WeightWriter};
use crate::proto::coreml::mil_spec::{Argument, Block, Function, NamedValueType, Operation, Program};
use edgec_passes::ir::{DType, Graph, NodeId, Tensor, TensorType, ValueDef, ValueId};
use edgec_passes::op::{ArgKind, BinaryOp, BlockOrder, Op, PoolKind, ReduceKind, Sampling, UnaryOp};
use std::collections::BTreeMap;

/// Constants with at least this many elements go to the weight file (Core ML's own cut-off).
pub(crate) const BLOB_MIN_ELEMENTS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum LowerError {
    #[error("node {origin:?}: {message}")]
    Unsupported { origin: String, message: String },
    #[error("writing weight.bin: {0}")]
    Io(#[from] std::io::Error),
}

/// A model input or output as published in the package.
#[derive(Clone, Debug)]
pub struct IoFeature {
    pub source_name: String,
    pub mil_name: String,
    pub ty: TensorType,
}

pub struct Lowered {
    pub program: Program,
    pub inputs: Vec<IoFeature>,
    pub outputs: Vec<IoFeature>,
    /// Source (ONNX) value name → MIL name, for every value that has one, in program order.
    pub names: Vec<(String, String)>,
    /// Every non-const MIL op (by its first output's name) and the IR node it lowers, in
    /// program order; the identity ops that publish outputs belong to no node.
    pub op_nodes: Vec<(String, NodeId)>,
}

struct Lowerer<'a> {
    graph: &'a Graph,
    target: DeploymentTarget,
    weights: &'a mut WeightWriter,
    names: NameTable,
    value_names: Vec<Option<String>>,
    name_map: Vec<(String, String)>,
    ops: Vec<Operation>,
}

pub fn lower(graph: &Graph, target: DeploymentTarget, weights: &mut WeightWriter) -> Result<Lowered, LowerError> {
    let mut l = Lowerer {
        graph,
        target,
        weights,
        names: NameTable::default(),
        value_names: vec![None; graph.values.len()],
        name_map: Vec::new(),
        ops: Vec::new(),
    };

    // Interface names first, so they keep their sanitised ONNX names.
    let mut inputs = Vec::new();
    for &v in &graph.inputs {
        let value = graph.value(v);
        let mil_name = l.assign(v);
        inputs.push(IoFeature {
            source_name: value.name.clone(),
            mil_name,
            ty: value.ty.clone(),
        });
    }
    let mut published: Vec<Option<String>> = Vec::new();
    for out in &graph.outputs {
        let taken = l.value_names[out.value.index()].is_some();
        let node_defined = matches!(graph.value(out.value).def, ValueDef::Node { .. });
        if node_defined && !taken {
            let name = l.names.claim(&out.name);
            l.record(out.value, name.clone());
            published.push(Some(name));
        } else {
            published.push(None);
        }
    }

    let mut op_nodes = Vec::new();
    for &id in &graph.order {
        let first = l.ops.len();
        l.lower_node(id)?;
        for op in &l.ops[first..] {
            if let (false, Some(out)) = (op.r#type == "const", op.outputs.first()) {
                op_nodes.push((out.name.clone(), id));
            }
        }
    }

    let uses = graph.use_counts();
    let mut outputs = Vec::new();
    for (out, name) in graph.outputs.iter().zip(published) {
        let ty = graph.ty(out.value).clone();
        let mil_name = match name {
            Some(n) => n,
            None => {
                // An input, constant, or value published twice: give it its own identity op.
                let source = l.value(out.value)?;
                let n = l.names.claim(&out.name);
                l.emit("identity", &n, vec![("x".into(), arg(&source))], &ty)?;
                n
            }
        };
        outputs.push(IoFeature {
            source_name: out.name.clone(),
            mil_name,
            ty,
        });
    }
    for (input, feature) in graph.inputs.iter().zip(&inputs) {
        // Core ML rejects a program with an input no op reads.
        if uses[input.index()] == 0 {
            let n = l.names.claim(&format!("{}_unused", feature.mil_name));
            l.emit("identity", &n, vec![("x".into(), arg(&feature.mil_name))], &feature.ty)?;
        }
    }

    let function_inputs = inputs
        .iter()
        .map(|f| Ok(mil::named(&f.mil_name, value_type(&f.ty, "")?)))
        .collect::<Result<Vec<_>, LowerError>>()?;
    let block = Block {
        inputs: Vec::new(),
        outputs: outputs.iter().map(|f| f.mil_name.clone()).collect(),
        operations: std::mem::take(&mut l.ops),
        attributes: BTreeMap::new(),
    };
    let function = Function {
        inputs: function_inputs,
        opset: target.opset().to_string(),
        block_specializations: BTreeMap::from([(target.opset().to_string(), block)]),
        attributes: BTreeMap::new(),
    };
    let program = Program {
        version: 1,
        functions: BTreeMap::from([("main".to_string(), function)]),
        doc_string: String::new(),
        attributes: BTreeMap::new(),
    };
    Ok(Lowered {
        program,
        inputs,
        outputs,
        names: l.name_map,
        op_nodes,
    })
}

fn value_type(ty: &TensorType, origin: &str) -> Result<crate::proto::coreml::mil_spec::ValueType, LowerError> {
    let dt = mil::data_type(ty.dtype).ok_or_else(|| LowerError::Unsupported {
        origin: origin.into(),
        message: format!("type {ty} has no Core ML equivalent"),
    })?;
    Ok(mil::tensor_type(dt, &ty.shape))
}

impl Lowerer<'_> {
    fn record(&mut self, v: ValueId, mil_name: String) {
        self.name_map.push((self.graph.value(v).name.clone(), mil_name.clone()));
        self.value_names[v.index()] = Some(mil_name);
    }

    /// Give `v` a fresh MIL name derived from its source name.
    fn assign(&mut self, v: ValueId) -> String {
        let name = self.names.claim(&self.graph.value(v).name);
        self.record(v, name.clone());
        name
    }

    /// The MIL name of `v`, emitting its `const` op on first use.
    fn value(&mut self, v: ValueId) -> Result<String, LowerError> {
        if let Some(name) = &self.value_names[v.index()] {
            return Ok(name.clone());
        }
        let graph = self.graph;
        match &graph.value(v).def {
            ValueDef::Const(t) => {
                let name = self.assign(v);
                match graph.compressed.get(&v) {
                    Some(form) => self.emit_compressed(&name, &t.ty, form)?,
                    None => self.emit_const(&name, t)?,
                }
                Ok(name)
            }
            _ => Err(LowerError::Unsupported {
                origin: String::new(),
                message: format!("value {:?} is used before it is defined", graph.value(v).name),
            }),
        }
    }

    fn emit_const(&mut self, name: &str, t: &Tensor) -> Result<(), LowerError> {
        let t = if t.ty.dtype == DType::I64 {
            narrow_to_i32(t, name)?
        } else {
            t.clone()
        };
        let dt = mil::data_type(t.ty.dtype).ok_or_else(|| LowerError::Unsupported {
            origin: String::new(),
            message: format!("constant {name:?} of type {}", t.ty),
        })?;
        let blob_type = match t.ty.dtype {
            DType::F16 => Some(BlobType::Float16),
            DType::F32 => Some(BlobType::Float32),
            DType::U8 => Some(BlobType::UInt8),
            DType::I8 => Some(BlobType::Int8),
            _ => None,
        };
        let val = match blob_type {
            Some(bt) if t.ty.num_elements() >= BLOB_MIN_ELEMENTS => {
                let offset = self.weights.append_shared(bt, &t.data)?;
                mil::blob_value(dt, &t.ty.shape, offset)
            }
            _ => mil::immediate_tensor(dt, &t.ty.shape, &t.data),
        };
        self.push_const(name, val);
        Ok(())
    }

    fn push_const(&mut self, name: &str, val: crate::proto::coreml::mil_spec::Value) {
        let ty = val.r#type.clone().unwrap_or_default();
        self.ops.push(Operation {
            r#type: "const".into(),
            inputs: BTreeMap::new(),
            outputs: vec![NamedValueType {
                name: name.into(),
                r#type: Some(ty),
            }],
            blocks: Vec::new(),
            attributes: BTreeMap::from([("name".to_string(), mil::string_value(name)), ("val".to_string(), val)]),
        });
    }

    /// A parameter `const` named `<op>_<key>`; returns its binding.
    fn param(&mut self, op_name: &str, key: &str, value: Immediate) -> (String, Argument) {
        let name = self.names.claim(&format!("{op_name}_{key}"));
        self.push_const(&name, value.to_value());
        (key.to_string(), arg(&name))
    }

    /// Emit an op named `out_name` with one output of type `out_ty`.
    fn emit(
        &mut self,
        op_type: &str,
        out_name: &str,
        inputs: Vec<(String, Argument)>,
        out_ty: &TensorType,
    ) -> Result<(), LowerError> {
        let ty = value_type(out_ty, out_name)?;
        self.emit_op(op_type, out_name, inputs, vec![mil::named(out_name, ty)]);
        Ok(())
    }

    /// Append an op named `name` with the given (already typed) outputs.
    fn emit_op(&mut self, op_type: &str, name: &str, inputs: Vec<(String, Argument)>, outputs: Vec<NamedValueType>) {
        self.ops.push(Operation {
            r#type: op_type.into(),
            inputs: inputs.into_iter().collect(),
            outputs,
            blocks: Vec::new(),
            attributes: BTreeMap::from([("name".to_string(), mil::string_value(name))]),
        });
    }

    /// A fresh name for an intermediate op of a multi-op lowering (emitted with
    /// [`Self::emit`]): `<op>_<suffix>`.
    fn step_name(&mut self, op_name: &str, suffix: &str) -> String {
        self.names.claim(&format!("{op_name}_{suffix}"))
    }

    /// Reorder the channels of `x` (`[N, C·b², H, W]`) from DCR to CRD grouping:
    /// reshape `[N, b², C, H·W]`, swap the two channel axes, reshape back.
    fn dcr_to_crd(&mut self, n: &str, x: &str, ty: &TensorType, b: usize) -> Result<String, LowerError> {
        let (batch, c, hw) = (ty.shape[0], ty.shape[1] / (b * b), ty.shape[2] * ty.shape[3]);
        let ints = |v: &[usize]| Immediate::Ints(v.iter().map(|&d| d as i32).collect());
        let grouped_ty = TensorType::new(ty.dtype, [batch, b * b, c, hw]);
        let grouped = self.step_name(n, "grouped");
        let s = self.param(&grouped, "shape", ints(&grouped_ty.shape));
        self.emit("reshape", &grouped, vec![("x".into(), arg(x)), s], &grouped_ty)?;
        let swapped_ty = TensorType::new(ty.dtype, [batch, c, b * b, hw]);
        let swapped = self.step_name(n, "swapped");
        let p = self.param(&swapped, "perm", ints(&[0, 2, 1, 3]));
        self.emit("transpose", &swapped, vec![("x".into(), arg(&grouped)), p], &swapped_ty)?;
        let crd = self.step_name(n, "crd");
        let s = self.param(&crd, "shape", ints(&ty.shape));
        self.emit("reshape", &crd, vec![("x".into(), arg(&swapped)), s], ty)?;
        Ok(crd)
    }

    fn lower_node(&mut self, id: edgec_passes::ir::NodeId) -> Result<(), LowerError> {
        let graph = self.graph;
        let node = graph.node(id);
        let unsupported = |message: String| LowerError::Unsupported {
            origin: node.origin.clone(),
            message,
        };
        let in_names = node
            .inputs
            .iter()
            .map(|&v| self.value(v))
            .collect::<Result<Vec<_>, _>>()?;
        // Every output gets its MIL name (published names were claimed up front); the op is
        // named after its first output.
        let out_names: Vec<String> = node
            .outputs
            .iter()
            .map(|&out| match &self.value_names[out.index()] {
                Some(n) => n.clone(),
                None => self.assign(out),
            })
            .collect();
        let n = out_names[0].as_str();
        let float_dtype = graph.ty(node.inputs[0]).dtype;
        let x = || ("x", arg(&in_names[0]));
        let ints = |v: &[usize]| Immediate::Ints(v.iter().map(|&d| d as i32).collect());

        let mut blocks = Vec::new();
        let (op_type, inputs): (&str, Vec<(String, Argument)>) = match &node.op {
            Op::Conv(a) => {
                let mut inputs = vec![x(), ("weight", arg(&in_names[1]))];
                if let Some(b) = in_names.get(2) {
                    inputs.push(("bias", arg(b)));
                }
                let mut inputs: Vec<(String, Argument)> = inputs.into_iter().map(|(k, a)| (k.to_string(), a)).collect();
                inputs.push(self.param(n, "strides", ints(&a.strides)));
                inputs.push(self.param(n, "pad_type", Immediate::Str("custom".into())));
                inputs.push(self.param(n, "pad", flat_pads(&a.pads)));
                inputs.push(self.param(n, "dilations", ints(&a.dilations)));
                inputs.push(self.param(n, "groups", Immediate::Int(a.groups as i32)));
                ("conv", inputs)
            }
            Op::ConvTranspose(a) => {
                // The weight must be a constant before iOS 17 (the front end makes sure).
                let mut inputs = vec![named(x()), ("weight".into(), arg(&in_names[1]))];
                if let Some(b) = in_names.get(2) {
                    inputs.push(("bias".into(), arg(b)));
                }
                let cropped = a.pads.iter().any(|p| p[0] + p[1] > 0);
                let pad_type = if cropped { "custom" } else { "valid" };
                inputs.push(self.param(n, "pad_type", Immediate::Str(pad_type.into())));
                inputs.push(self.param(n, "pad", flat_pads(&a.pads)));
                inputs.push(self.param(n, "strides", ints(&a.strides)));
                inputs.push(self.param(n, "dilations", ints(&a.dilations)));
                inputs.push(self.param(n, "groups", Immediate::Int(a.groups as i32)));
                ("conv_transpose", inputs)
            }
            Op::BatchNorm { epsilon } => {
                let mut inputs: Vec<(String, Argument)> = ["x", "mean", "variance", "gamma", "beta"]
                    .iter()
                    .zip(&in_names)
                    .map(|(k, v)| (k.to_string(), arg(v)))
                    .collect();
                inputs.push(self.param(n, "epsilon", Immediate::Float(*epsilon, float_dtype)));
                ("batch_norm", inputs)
            }
            Op::Relu => ("relu", vec![named(x())]),
            Op::Relu6 => ("relu6", vec![named(x())]),
            Op::Sigmoid => ("sigmoid", vec![named(x())]),
            Op::Identity => ("identity", vec![named(x())]),
            Op::HardSigmoid { alpha, beta } => {
                let a = self.param(n, "alpha", Immediate::Float(*alpha, float_dtype));
                let b = self.param(n, "beta", Immediate::Float(*beta, float_dtype));
                ("sigmoid_hard", vec![named(x()), a, b])
            }
            Op::Clip {
                min: Some(lo),
                max: Some(hi),
            } => {
                let a = self.param(n, "alpha", Immediate::Float(*lo, float_dtype));
                let b = self.param(n, "beta", Immediate::Float(*hi, float_dtype));
                ("clip", vec![named(x()), a, b])
            }
            Op::Unary(u) => {
                // A constant of x's type: float, or int32 (Abs/Neg also take int32).
                let scalar = |v: f32| match float_dtype {
                    DType::F16 | DType::F32 => Immediate::Float(v, float_dtype),
                    _ => Immediate::Int(v as i32),
                };
                match u {
                    UnaryOp::Tanh => ("tanh", vec![named(x())]),
                    UnaryOp::Sqrt => ("sqrt", vec![named(x())]),
                    UnaryOp::Exp => ("exp", vec![named(x())]),
                    UnaryOp::Erf => ("erf", vec![named(x())]),
                    UnaryOp::Abs => ("abs", vec![named(x())]),
                    UnaryOp::Floor => ("floor", vec![named(x())]),
                    UnaryOp::Ceil => ("ceil", vec![named(x())]),
                    UnaryOp::Softplus => ("softplus", vec![named(x())]),
                    // MIL computes log(x + epsilon), epsilon 1e-45 by default: ONNX has none.
                    UnaryOp::Log => {
                        let e = self.param(n, "epsilon", scalar(0.0));
                        ("log", vec![named(x()), e])
                    }
                    // No MIL `neg`.
                    UnaryOp::Neg => {
                        let y = self.param(n, "y", scalar(-1.0));
                        ("mul", vec![named(x()), y])
                    }
                    // Not `inverse`, which adds epsilon (default 1e-4) to x.
                    UnaryOp::Reciprocal => {
                        let one = self.param(n, "x", scalar(1.0));
                        ("real_div", vec![one, ("y".into(), arg(&in_names[0]))])
                    }
                    UnaryOp::Elu { alpha } => {
                        let a = self.param(n, "alpha", Immediate::Float(*alpha, float_dtype));
                        ("elu", vec![named(x()), a])
                    }
                    UnaryOp::LeakyRelu { alpha } => {
                        let a = self.param(n, "alpha", Immediate::Float(*alpha, float_dtype));
                        ("leaky_relu", vec![named(x()), a])
                    }
                    UnaryOp::Gelu { mode } => {
                        let m = self.param(n, "mode", Immediate::Str(mode.mil_name().into()));
                        ("gelu", vec![named(x()), m])
                    }
                    UnaryOp::Silu => ("silu", vec![named(x())]),
                    UnaryOp::Sign => ("sign", vec![named(x())]),
                    UnaryOp::Round => ("round", vec![named(x())]),
                    UnaryOp::Sin => ("sin", vec![named(x())]),
                    UnaryOp::Cos => ("cos", vec![named(x())]),
                    UnaryOp::Tan => ("tan", vec![named(x())]),
                    UnaryOp::Asin => ("asin", vec![named(x())]),
                    UnaryOp::Acos => ("acos", vec![named(x())]),
                    UnaryOp::Atan => ("atan", vec![named(x())]),
                    UnaryOp::Sinh => ("sinh", vec![named(x())]),
                    UnaryOp::Cosh => ("cosh", vec![named(x())]),
                    UnaryOp::Atanh => ("atanh", vec![named(x())]),
                }
            }
            Op::Pool(p) => {
                let mut inputs = vec![named(x())];
                inputs.push(self.param(n, "kernel_sizes", ints(&p.kernel)));
                inputs.push(self.param(n, "strides", ints(&p.strides)));
                inputs.push(self.param(n, "pad_type", Immediate::Str("custom".into())));
                inputs.push(self.param(n, "pad", flat_pads(&p.pads)));
                let op_type = match p.kind {
                    PoolKind::Max => "max_pool",
                    PoolKind::Avg { exclude_padding } => {
                        inputs.push(self.param(n, "exclude_padding_from_average", Immediate::Bool(exclude_padding)));
                        "avg_pool"
                    }
                };
                inputs.push(self.param(n, "ceil_mode", Immediate::Bool(p.ceil_mode)));
                (op_type, inputs)
            }
            Op::Reduce { kind, axes, keep_dims } => {
                let op_type = match kind {
                    ReduceKind::Mean => "reduce_mean",
                    ReduceKind::Sum => "reduce_sum",
                    ReduceKind::Max => "reduce_max",
                    ReduceKind::Min => "reduce_min",
                    ReduceKind::Prod => "reduce_prod",
                    ReduceKind::L2 => "reduce_l2_norm",
                };
                let a = self.param(n, "axes", ints(axes));
                let k = self.param(n, "keep_dims", Immediate::Bool(*keep_dims));
                (op_type, vec![named(x()), a, k])
            }
            Op::Binary(b) => {
                let op_type = match b {
                    BinaryOp::Add => "add",
                    BinaryOp::Sub => "sub",
                    BinaryOp::Mul => "mul",
                    BinaryOp::Div => "real_div",
                    BinaryOp::Maximum => "maximum",
                    BinaryOp::Minimum => "minimum",
                    BinaryOp::Pow => "pow",
                };
                (op_type, vec![named(x()), ("y".into(), arg(&in_names[1]))])
            }
            Op::Concat { axis } => {
                let a = self.param(n, "axis", Immediate::Int(*axis as i32));
                let i = self.param(n, "interleave", Immediate::Bool(false));
                ("concat", vec![("values".into(), args(&in_names)), a, i])
            }
            Op::Reshape { shape } => {
                let s = self.param(n, "shape", ints(shape));
                ("reshape", vec![named(x()), s])
            }
            Op::Transpose { perm } => {
                let p = self.param(n, "perm", ints(perm));
                ("transpose", vec![named(x()), p])
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let ta = self.param(n, "transpose_x", Immediate::Bool(*transpose_a));
                let tb = self.param(n, "transpose_y", Immediate::Bool(*transpose_b));
                ("matmul", vec![named(x()), ("y".into(), arg(&in_names[1])), ta, tb])
            }
            Op::Linear => (
                "linear",
                vec![
                    named(x()),
                    ("weight".into(), arg(&in_names[1])),
                    ("bias".into(), arg(&in_names[2])),
                ],
            ),
            Op::Softmax { axis } => {
                let a = self.param(n, "axis", Immediate::Int(*axis as i32));
                ("softmax", vec![named(x()), a])
            }
            Op::LocalResponseNorm {
                size,
                alpha,
                beta,
                bias,
            } => {
                let inputs = vec![
                    named(x()),
                    self.param(n, "size", Immediate::Int(*size as i32)),
                    self.param(n, "alpha", Immediate::Float(*alpha, float_dtype)),
                    self.param(n, "beta", Immediate::Float(*beta, float_dtype)),
                    self.param(n, "k", Immediate::Float(*bias, float_dtype)),
                ];
                ("local_response_norm", inputs)
            }
            Op::Pad { pads, mode, value } => {
                let ty = graph.ty(node.inputs[0]).clone();
                ("pad", self.pad_inputs(n, &in_names[0], &ty, pads, *mode, *value)?)
            }
            Op::Cast { to } => {
                let dtype = match to {
                    DType::F16 => "fp16",
                    DType::F32 => "fp32",
                    DType::I32 | DType::I64 => "int32",
                    DType::Bool => "bool",
                    other => return Err(unsupported(format!("cast to {other}"))),
                };
                let d = self.param(n, "dtype", Immediate::Str(dtype.into()));
                ("cast", vec![named(x()), d])
            }
            Op::Compare(c) => (c.name(), vec![named(x()), ("y".into(), arg(&in_names[1]))]),
            Op::Logical(l) => (l.name(), vec![named(x()), ("y".into(), arg(&in_names[1]))]),
            Op::Not => ("logical_not", vec![named(x())]),
            Op::Select => (
                "select",
                vec![
                    ("cond".into(), arg(&in_names[0])),
                    ("a".into(), arg(&in_names[1])),
                    ("b".into(), arg(&in_names[2])),
                ],
            ),
            Op::Gather { axis } | Op::GatherElements { axis } => {
                let mut inputs = vec![named(x()), ("indices".into(), arg(&in_names[1]))];
                inputs.push(self.param(n, "axis", Immediate::Int(*axis as i32)));
                let gather = matches!(node.op, Op::Gather { .. });
                if gather && self.target >= DeploymentTarget::Ios16 {
                    inputs.push(self.param(n, "batch_dims", Immediate::Int(0)));
                }
                if self.target >= DeploymentTarget::Ios17 {
                    // Indices are in range by construction (normalised or guarded).
                    inputs.push(self.param(n, "validate_indices", Immediate::Bool(false)));
                }
                (if gather { "gather" } else { "gather_along_axis" }, inputs)
            }
            Op::Slice { axes } => {
                let begin = axes.iter().map(|s| s.begin as i32).collect();
                let end = axes.iter().map(|s| s.end.map_or(0, |e| e as i32)).collect();
                let stride = axes.iter().map(|s| s.stride as i32).collect();
                let end_mask = axes.iter().map(|s| s.end.is_none()).collect();
                let inputs = vec![
                    named(x()),
                    self.param(n, "begin", Immediate::Ints(begin)),
                    self.param(n, "end", Immediate::Ints(end)),
                    self.param(n, "stride", Immediate::Ints(stride)),
                    self.param(n, "begin_mask", Immediate::Bools(vec![false; axes.len()])),
                    self.param(n, "end_mask", Immediate::Bools(end_mask)),
                    self.param(n, "squeeze_mask", Immediate::Bools(vec![false; axes.len()])),
                ];
                ("slice_by_index", inputs)
            }
            Op::Tile { reps } => {
                let r = self.param(n, "reps", ints(reps));
                ("tile", vec![named(x()), r])
            }
            Op::LayerNorm { axes, epsilon } => {
                // `guard_fp16_range` has raised an epsilon fp16 would round to 0 (BERT's 1e-12).
                let epsilon = *epsilon;
                let mut inputs = vec![named(x())];
                inputs.push(self.param(n, "axes", ints(axes)));
                if let [_, gamma, beta] = &in_names[..] {
                    inputs.push(("gamma".into(), arg(gamma)));
                    inputs.push(("beta".into(), arg(beta)));
                }
                inputs.push(self.param(n, "epsilon", Immediate::Float(epsilon, float_dtype)));
                ("layer_norm", inputs)
            }
            Op::ArgReduce { kind, axis, keep_dims } => {
                let a = self.param(n, "axis", Immediate::Int(*axis as i32));
                let k = self.param(n, "keep_dims", Immediate::Bool(*keep_dims));
                let op_type = match kind {
                    ArgKind::Max => "reduce_argmax",
                    ArgKind::Min => "reduce_argmin",
                };
                (op_type, vec![named(x()), a, k])
            }
            Op::CumSum {
                axis,
                exclusive,
                reverse,
            } => {
                let a = self.param(n, "axis", Immediate::Int(*axis as i32));
                let e = self.param(n, "exclusive", Immediate::Bool(*exclusive));
                let r = self.param(n, "reverse", Immediate::Bool(*reverse));
                ("cumsum", vec![named(x()), a, e, r])
            }
            Op::TopK { k, axis, largest } => {
                let mut inputs = vec![named(x())];
                inputs.push(self.param(n, "k", Immediate::Int(*k as i32)));
                inputs.push(self.param(n, "axis", Immediate::Int(*axis as i32)));
                inputs.push(self.param(n, "ascending", Immediate::Bool(!largest)));
                if self.target >= DeploymentTarget::Ios16 {
                    inputs.push(self.param(n, "sort", Immediate::Bool(true)));
                    inputs.push(self.param(n, "return_indices", Immediate::Bool(true)));
                }
                if self.target >= DeploymentTarget::Ios17 {
                    inputs.push(self.param(n, "output_indices_dtype", Immediate::Str("int32".into())));
                }
                ("topk", inputs)
            }
            Op::UpsampleNearest { scales } => {
                let h = self.param(n, "scale_factor_height", Immediate::Int(scales[0] as i32));
                let w = self.param(n, "scale_factor_width", Immediate::Int(scales[1] as i32));
                ("upsample_nearest_neighbor", vec![named(x()), h, w])
            }
            Op::ResizeBilinear { size, sampling } => {
                let in_shape = &graph.ty(node.inputs[0]).shape;
                let input = [in_shape[in_shape.len() - 2], in_shape[in_shape.len() - 1]];
                // Whole upscale factors go to upsample_bilinear (its grid is recomputed from
                // the output size, so it matches resize_bilinear's for these modes).
                let factors = (size[0] % input[0] == 0 && size[1] % input[1] == 0)
                    .then(|| [size[0] / input[0], size[1] / input[1]]);
                let upsample = match sampling {
                    Sampling::UnalignCorners => Some((false, true)),
                    Sampling::StrictAlignCorners | Sampling::AlignCorners if size.iter().all(|&s| s > 1) => {
                        Some((true, false))
                    }
                    // align_corners=false without half-pixel centres needs iOS 16's parameter.
                    Sampling::Default if self.target >= DeploymentTarget::Ios16 => Some((false, false)),
                    _ => None,
                };
                match (factors, upsample) {
                    (Some(f), Some((align_corners, half_pixel_centers))) => {
                        let mut inputs = vec![named(x())];
                        inputs.push(self.param(n, "scale_factor_height", Immediate::Int(f[0] as i32)));
                        inputs.push(self.param(n, "scale_factor_width", Immediate::Int(f[1] as i32)));
                        inputs.push(self.param(n, "align_corners", Immediate::Bool(align_corners)));
                        if self.target >= DeploymentTarget::Ios16 {
                            inputs.push(self.param(n, "half_pixel_centers", Immediate::Bool(half_pixel_centers)));
                        }
                        ("upsample_bilinear", inputs)
                    }
                    _ => {
                        let mut inputs = vec![named(x())];
                        inputs.push(self.param(n, "target_size_height", Immediate::Int(size[0] as i32)));
                        inputs.push(self.param(n, "target_size_width", Immediate::Int(size[1] as i32)));
                        inputs.push(self.param(n, "sampling_mode", Immediate::Str(sampling.name().into())));
                        ("resize_bilinear", inputs)
                    }
                }
            }
            Op::DepthToSpace { block, order } => {
                let b = *block;
                // Core ML 6 computes fp16 DCR depth_to_space as zeros (seen by onnxruntime's
                // CoreML provider); Core ML 7 is fine. Before iOS 17, regroup the channels into
                // CRD order (rank 4 throughout) and pixel-shuffle instead.
                let dcr_in_fp16 = *order == BlockOrder::Dcr && float_dtype == DType::F16;
                if *order == BlockOrder::Crd || (dcr_in_fp16 && self.target < DeploymentTarget::Ios17) {
                    let x = if *order == BlockOrder::Dcr {
                        self.dcr_to_crd(n, &in_names[0], graph.ty(node.inputs[0]), b)?
                    } else {
                        in_names[0].clone()
                    };
                    let f = self.param(n, "upscale_factor", Immediate::Int(b as i32));
                    ("pixel_shuffle", vec![("x".into(), arg(&x)), f])
                } else {
                    let bs = self.param(n, "block_size", Immediate::Int(b as i32));
                    ("depth_to_space", vec![named(x()), bs])
                }
            }
            Op::SpaceToDepth { block } => {
                let bs = self.param(n, "block_size", Immediate::Int(*block as i32));
                ("space_to_depth", vec![named(x()), bs])
            }
            Op::ScaledDotProductAttention => {
                if self.target < DeploymentTarget::Ios18 {
                    return Err(unsupported(format!(
                        "scaled_dot_product_attention needs iOS18, the target is {}",
                        self.target
                    )));
                }
                let keys = ["query", "key", "value", "attn_mask"];
                let inputs = keys
                    .iter()
                    .zip(&in_names)
                    .map(|(k, v)| (k.to_string(), arg(v)))
                    .collect();
                ("scaled_dot_product_attention", inputs)
            }
            Op::Lstm(a) => ("lstm", self.lstm_inputs(n, &in_names, a)),
            Op::Gru(a) => ("gru", self.gru_inputs(n, &in_names, a)),
            Op::Rnn(a) => ("rnn", self.rnn_inputs(n, &in_names, a)),
            Op::ScatterNd { mode } | Op::ScatterAlongAxis { mode, .. } => {
                let mut inputs = vec![
                    ("data".to_string(), arg(&in_names[0])),
                    ("indices".to_string(), arg(&in_names[1])),
                    ("updates".to_string(), arg(&in_names[2])),
                ];
                if let Op::ScatterAlongAxis { axis, .. } = node.op {
                    inputs.push(self.param(n, "axis", Immediate::Int(axis as i32)));
                }
                inputs.push(self.param(n, "mode", Immediate::Str(mode.name().into())));
                if self.target >= DeploymentTarget::Ios17 {
                    // Indices are in range by construction (the front end wraps negative ones).
                    inputs.push(self.param(n, "validate_indices", Immediate::Bool(false)));
                }
                (node.op.name(), inputs)
            }
            Op::If(a) => {
                blocks.push(self.lower_region(&a.then_branch.0, 0, &in_names[1..])?);
                blocks.push(self.lower_region(&a.else_branch.0, 0, &in_names[1..])?);
                ("cond", vec![("pred".into(), arg(&in_names[0]))])
            }
            Op::While(a) => {
                blocks.push(self.lower_region(&a.cond.0, a.carried, &in_names)?);
                blocks.push(self.lower_region(&a.body.0, a.carried, &in_names)?);
                ("while_loop", vec![("loop_vars".into(), args(&in_names[..a.carried]))])
            }
            op @ (Op::Clip { .. } | Op::HardSwish | Op::Gemm { .. }) => {
                return Err(unsupported(format!("composite op {} reached the back end", op.name())));
            }
        };
        let outputs = node
            .outputs
            .iter()
            .zip(&out_names)
            .map(|(&out, name)| Ok(mil::named(name, value_type(graph.ty(out), &node.origin)?)))
            .collect::<Result<Vec<_>, LowerError>>()?;
        self.emit_op(op_type, n, inputs, outputs);
        if let Some(op) = self.ops.last_mut() {
            op.blocks = blocks;
        }
        Ok(())
    }

    /// A control-flow op's body as a MIL block. The region's first `block_inputs` inputs become
    /// the block's own (while_loop's loop variables, fresh in each block); each later input `i`
    /// is the op's operand `operands[i]`, which the block reads from the enclosing scope by name,
    /// as MIL captures. Names stay unique across the whole program (the milproto loader keeps one
    /// scope). Outputs not computed by the block's own ops get an `identity` in the block.
    fn lower_region(&mut self, region: &Graph, block_inputs: usize, operands: &[String]) -> Result<Block, LowerError> {
        let mut body = Lowerer {
            graph: region,
            target: self.target,
            weights: &mut *self.weights,
            names: std::mem::take(&mut self.names),
            value_names: vec![None; region.values.len()],
            name_map: Vec::new(),
            ops: Vec::new(),
        };
        let result = body.lower_block(block_inputs, operands);
        self.names = std::mem::take(&mut body.names);
        result
    }

    fn lower_block(&mut self, block_inputs: usize, operands: &[String]) -> Result<Block, LowerError> {
        let region = self.graph;
        let mut inputs = Vec::new();
        for (i, &v) in region.inputs.iter().enumerate() {
            if i < block_inputs {
                let name = self.assign(v);
                inputs.push(mil::named(&name, value_type(region.ty(v), "")?));
            } else {
                let operand = operands.get(i).ok_or_else(|| LowerError::Unsupported {
                    origin: String::new(),
                    message: format!("a control-flow body takes input {i}, its op has no such operand"),
                })?;
                self.value_names[v.index()] = Some(operand.clone());
            }
        }
        for &id in &region.order {
            self.lower_node(id)?;
        }
        let mut published = std::collections::HashSet::new();
        let mut outputs = Vec::new();
        for out in &region.outputs {
            let computed = matches!(region.value(out.value).def, ValueDef::Node { .. });
            let source = self.value(out.value)?;
            if computed && published.insert(out.value) {
                outputs.push(source);
            } else {
                let name = self.names.claim(&out.name);
                self.emit(
                    "identity",
                    &name,
                    vec![("x".into(), arg(&source))],
                    region.ty(out.value),
                )?;
                outputs.push(name);
            }
        }
        Ok(Block {
            inputs,
            outputs,
            operations: std::mem::take(&mut self.ops),
            attributes: BTreeMap::new(),
        })
    }
}

fn named((k, a): (&str, Argument)) -> (String, Argument) {
    (k.to_string(), a)
}

/// Core ML has no int64 compute: narrow, refusing values that do not fit.
fn narrow_to_i32(t: &Tensor, name: &str) -> Result<Tensor, LowerError> {
    let values = t.to_i64_vec();
    if let Some(v) = values.iter().find(|&&v| i32::try_from(v).is_err()) {
        return Err(LowerError::Unsupported {
            origin: String::new(),
            message: format!("constant {name:?} holds {v}, outside the int32 range"),
        });
    }
    Ok(t.cast(DType::I32))
}

/// MIL's `pad` parameter: `[before, after]` per axis, flattened.
fn flat_pads(pads: &[[usize; 2]]) -> Immediate {
    Immediate::Ints(pads.iter().flat_map(|&[b, e]| [b as i32, e as i32]).collect())
}
