//! The graph: an arena of values and nodes addressed by typed ids.
//!
//! Every value is defined exactly once: as a graph input, as a constant, or as an output of a
//! node. Shapes are fully static (the front end freezes them before building the graph).
//! Nodes live in an arena and `order` lists the live ones in topological order, so a pass
//! removes a node by dropping it from `order` and inserts one by splicing it in.

use bytes::Bytes;
use half::f16;
use std::fmt;

/// Element types the IR can carry. `I64` only appears before legalisation narrows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    I32,
    I64,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I64 => 8,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16)
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A static tensor type: element type plus dimensions (empty for a scalar).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorType {
            dtype,
            shape: self.shape.clone(),
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// Constant data: little-endian elements of `ty.dtype` in row-major order.
///
/// `data` is a `Bytes`, so a tensor read from a memory-mapped model file is a slice of the
/// mapping, never a copy.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub ty: TensorType,
    pub data: Bytes,
}

/// Why a tensor could not be built from raw bytes.
#[derive(Debug, thiserror::Error)]
#[error("tensor of type {ty} needs {expected} bytes but has {actual}")]
pub struct TensorSizeError {
    pub ty: TensorType,
    pub expected: usize,
    pub actual: usize,
}

impl Tensor {
    pub fn new(ty: TensorType, data: Bytes) -> Result<Self, TensorSizeError> {
        let expected = ty.num_elements() * ty.dtype.size_in_bytes();
        if data.len() != expected {
            return Err(TensorSizeError {
                ty,
                expected,
                actual: data.len(),
            });
        }
        Ok(Tensor { ty, data })
    }

    /// The one value of a type with no elements (a zero-sized axis).
    pub fn empty(ty: TensorType) -> Self {
        debug_assert_eq!(ty.num_elements(), 0);
        Tensor { ty, data: Bytes::new() }
    }

    pub fn from_f32(shape: impl Into<Vec<usize>>, values: &[f32]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            ty: TensorType::new(DType::F32, shape),
            data: Bytes::from(bytes),
        }
    }

    pub fn from_f16(shape: impl Into<Vec<usize>>, values: &[f16]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            ty: TensorType::new(DType::F16, shape),
            data: Bytes::from(bytes),
        }
    }

    pub fn from_i32(shape: impl Into<Vec<usize>>, values: &[i32]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            ty: TensorType::new(DType::I32, shape),
            data: Bytes::from(bytes),
        }
    }

    pub fn from_i64(shape: impl Into<Vec<usize>>, values: &[i64]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            ty: TensorType::new(DType::I64, shape),
            data: Bytes::from(bytes),
        }
    }

    pub fn scalar_f32(value: f32) -> Self {
        Tensor::from_f32(Vec::new(), &[value])
    }

    /// Every element widened to f32 (float and integer types alike).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let d = &self.data[..];
        match self.ty.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => self.to_i64_vec().into_iter().map(|v| v as f32).collect(),
        }
    }

    /// Every element as i64 (floats truncate toward zero, as ONNX Cast does).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        let d = &self.data[..];
        match self.ty.dtype {
            DType::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            DType::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
            DType::U8 | DType::Bool => d.iter().map(|&b| b as i64).collect(),
            DType::F32 | DType::F16 => self.to_f32_vec().into_iter().map(|v| v as i64).collect(),
        }
    }

    /// The tensor converted to `dtype` (a cheap clone when it already has it).
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.ty.dtype {
            return self.clone();
        }
        let shape = self.ty.shape.clone();
        match dtype {
            DType::F32 => Tensor::from_f32(shape, &self.to_f32_vec()),
            DType::F16 if self.ty.dtype == DType::F32 => Tensor {
                ty: TensorType::new(DType::F16, shape),
                data: f32_bytes_to_f16(&self.data),
            },
            DType::F16 => {
                let values = self.to_f32_vec();
                let mut out = vec![f16::ZERO; values.len()];
                half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut out[..], &values);
                Tensor::from_f16(shape, &out)
            }
            DType::I32 => {
                let v: Vec<i32> = self.to_i64_vec().into_iter().map(|x| x as i32).collect();
                Tensor::from_i32(shape, &v)
            }
            DType::I64 => Tensor::from_i64(shape, &self.to_i64_vec()),
            DType::I8 | DType::U8 | DType::Bool => {
                let v: Vec<u8> = self
                    .to_i64_vec()
                    .into_iter()
                    .map(|x| if dtype == DType::Bool { (x != 0) as u8 } else { x as u8 })
                    .collect();
                Tensor {
                    ty: TensorType::new(dtype, shape),
                    data: Bytes::from(v),
                }
            }
        }
    }

    /// The tensor with its axes permuted (`perm[i]` is the source axis of output axis `i`).
    ///
    /// Weights are transposed at compile time (a 50k x 768 LM head, say), so this copies whole
    /// rows of bytes where it can and splits the work over threads: never element by element
    /// with index arithmetic per element.
    pub fn transposed(&self, perm: &[usize]) -> Tensor {
        use rayon::prelude::*;
        let shape = &self.ty.shape;
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let elem = self.ty.dtype.size_in_bytes();
        let count = self.ty.num_elements();
        if perm == [1, 0] && count > 0 {
            let data = match elem {
                1 => transpose_matrix::<1>(&self.data, shape[0], shape[1]),
                2 => transpose_matrix::<2>(&self.data, shape[0], shape[1]),
                4 => transpose_matrix::<4>(&self.data, shape[0], shape[1]),
                _ => transpose_matrix::<8>(&self.data, shape[0], shape[1]),
            };
            return Tensor {
                ty: TensorType::new(self.ty.dtype, out_shape),
                data: data.into(),
            };
        }
        let mut out = vec![0u8; count * elem];
        if count > 0 {
            // Source strides (in elements) in output axis order.
            let mut src_strides = vec![1usize; shape.len()];
            for i in (0..shape.len().saturating_sub(1)).rev() {
                src_strides[i] = src_strides[i + 1] * shape[i + 1];
            }
            let strides: Vec<usize> = perm.iter().map(|&p| src_strides[p]).collect();
            let rank = out_shape.len();
            let inner = out_shape.last().copied().unwrap_or(1);
            let inner_stride = strides.last().copied().unwrap_or(1);
            let src = &self.data[..];
            // One output row (the last axis) per task unit; rows are independent.
            out.par_chunks_mut(inner * elem)
                .with_min_len((1 << 16) / inner.max(1) + 1)
                .enumerate()
                .for_each(|(row, dst)| {
                    let mut rest = row;
                    let mut base = 0;
                    for axis in (0..rank.saturating_sub(1)).rev() {
                        base += (rest % out_shape[axis]) * strides[axis];
                        rest /= out_shape[axis];
                    }
                    if inner_stride == 1 {
                        dst.copy_from_slice(&src[base * elem..(base + inner) * elem]);
                    } else {
                        for (j, d) in dst.chunks_exact_mut(elem).enumerate() {
                            let at = (base + j * inner_stride) * elem;
                            d.copy_from_slice(&src[at..at + elem]);
                        }
                    }
                });
        }
        Tensor {
            ty: TensorType::new(self.ty.dtype, out_shape),
            data: out.into(),
        }
    }

    /// True when every element equals `value` (compared after widening to f32).
    pub fn all_equal_to(&self, value: f32) -> bool {
        self.to_f32_vec().iter().all(|&v| v == value)
    }
}

/// A `rows x cols` matrix of `N`-byte elements, transposed in cache-sized tiles, in parallel
/// over bands of output rows.
fn transpose_matrix<const N: usize>(src: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    use rayon::prelude::*;
    const TILE: usize = 32;
    let mut out = vec![0u8; rows * cols * N];
    // Output is cols x rows; each band holds TILE output rows.
    out.par_chunks_mut(TILE * rows * N).enumerate().for_each(|(band, dst)| {
        let c0 = band * TILE;
        let band_rows = dst.len() / (rows * N);
        for r0 in (0..rows).step_by(TILE) {
            for c in c0..c0 + band_rows {
                let out_row = &mut dst[(c - c0) * rows * N..(c - c0 + 1) * rows * N];
                for r in r0..(r0 + TILE).min(rows) {
                    let at = (r * cols + c) * N;
                    out_row[r * N..(r + 1) * N].copy_from_slice(&src[at..at + N]);
                }
            }
        }
    });
    out
}

/// Little-endian f32 bytes to little-endian f16 bytes (round to nearest even), in parallel
/// chunks and without an intermediate `Vec<f32>`: weights can be gigabytes.
fn f32_bytes_to_f16(src: &[u8]) -> Bytes {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let mut out = vec![0u8; src.len() / 2];
    out.par_chunks_mut(CHUNK * 2)
        .zip(src.par_chunks(CHUNK * 4))
        .for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(2).zip(src.chunks_exact(4)) {
                let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                d.copy_from_slice(&f16::from_f32(v).to_le_bytes());
            }
        });
    Bytes::from(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Clone, Debug)]
pub enum ValueDef {
    /// The `n`th graph input.
    Input(usize),
    /// A compile-time constant.
    Const(Tensor),
    /// Output `index` of `node`.
    Node { node: NodeId, index: usize },
}

#[derive(Clone, Debug)]
pub struct Value {
    /// The source name (an ONNX tensor name); the back end sanitises it for MIL.
    pub name: String,
    pub ty: TensorType,
    pub def: ValueDef,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub op: crate::op::Op,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    /// The ONNX node this came from, for diagnostics and op names.
    pub origin: String,
    /// In an fp16 program, this op computes in fp32 for this reason (`cast_to_fp16` puts casts
    /// around it). Set before `cast_to_fp16`; read by it and by everything after it.
    pub keep_fp32: Option<crate::precision::Fp32Reason>,
}

/// A graph output: the name it is published under and the value it carries.
#[derive(Clone, Debug)]
pub struct GraphOutput {
    pub name: String,
    pub value: ValueId,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    /// Live nodes, topologically sorted.
    pub order: Vec<NodeId>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<GraphOutput>,
    /// What passes did to keep fp16 from changing the model's meaning, in the order they did it.
    pub precision_log: Vec<crate::precision::PrecisionDecision>,
    /// Nodes `guard_fp16_range` changed for fp16 storage, as they were (see
    /// [`Graph::keep_in_fp32`]).
    pub fp16_rewrites: Vec<crate::precision::Fp16Rewrite>,
    /// Constants the back end stores compressed (their dense values stay in the constant).
    pub compressed: std::collections::BTreeMap<ValueId, crate::compressed::CompressedForm>,
    /// One row per weight considered for compression, in program order.
    pub weight_report: Vec<crate::compressed::WeightReport>,
    /// For a constant a pass computed from one ONNX initializer under another name (a folded
    /// transpose, a BatchNorm-fused conv weight, an fp16 copy), that initializer's name: `--weights
    /// name:GLOB` and the weight report speak of the tensors the user knows. See
    /// [`Graph::initializer_name`].
    pub initializer_of: std::collections::BTreeMap<ValueId, String>,
    /// What the pattern passes rewrote, by description ("gelu (exact) from primitives"), for
    /// `-v` and the package metadata.
    pub rewrite_counts: std::collections::BTreeMap<String, usize>,
    /// Nodes the fusion passes folded into a surviving node, keyed by that node (see
    /// [`Graph::record_fusion`]); the compute-unit plan prints them as "fused into".
    pub fusions: std::collections::BTreeMap<NodeId, Vec<FusedNode>>,
    /// Weights the model stores quantized, by initializer name (see
    /// [`Graph::initializer_name`]): `compress_weights` keeps their codes.
    pub prequantized: std::collections::BTreeMap<String, crate::compressed::Prequantized>,
    /// Model inputs compiled in as constants, by name: their values (`--input-value`), or none
    /// for an empty input. The package does not take them; its metadata lists them.
    pub fixed_inputs: std::collections::BTreeMap<String, Vec<f64>>,
    /// What the front end or a pass did that the user should hear about (an empty input
    /// compiled as a constant, say), printed as warnings.
    pub warnings: Vec<String>,
    /// Bytes constant folding may still materialise (`None`: no cap). A front end sets it from
    /// the size of the model it read, so a small file cannot fold into gigabytes of constants;
    /// a node whose results do not fit stays an op.
    pub fold_budget: Option<usize>,
}

/// A source node a fusion pass folded into another node (a BatchNorm into its conv, a bias add
/// into a linear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FusedNode {
    /// The ONNX node it came from.
    pub origin: String,
    /// Its IR op, as `Op::name` spells it (`batch_norm`, `add`, ...).
    pub op: String,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Self {
        Graph {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.index()]
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id.index()]
    }

    pub fn ty(&self, id: ValueId) -> &TensorType {
        &self.values[id.index()].ty
    }

    /// The constant behind `id`, if it is one.
    pub fn constant(&self, id: ValueId) -> Option<&Tensor> {
        match &self.values[id.index()].def {
            ValueDef::Const(t) => Some(t),
            _ => None,
        }
    }

    /// The ONNX initializer constant `id` was computed from, else its own name.
    pub fn initializer_name(&self, id: ValueId) -> &str {
        self.initializer_of
            .get(&id)
            .map_or(&self.values[id.index()].name, String::as_str)
    }

    /// Records that constant `derived` was computed from constant `source` (see
    /// [`Graph::initializer_of`]).
    pub fn record_derived(&mut self, derived: ValueId, source: ValueId) {
        let initializer = self.initializer_name(source).to_string();
        if initializer != self.values[derived.index()].name {
            self.initializer_of.insert(derived, initializer);
        }
    }

    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        let index = self.inputs.len();
        self.values.push(Value {
            name: name.into(),
            ty,
            def: ValueDef::Input(index),
        });
        self.inputs.push(id);
        id
    }

    pub fn add_const(&mut self, name: impl Into<String>, tensor: Tensor) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value {
            name: name.into(),
            ty: tensor.ty.clone(),
            def: ValueDef::Const(tensor),
        });
        id
    }

    /// Create a node whose output types come from shape inference, and append it to `order`.
    pub fn add_node(
        &mut self,
        op: crate::op::Op,
        inputs: Vec<ValueId>,
        output_names: &[String],
        origin: impl Into<String>,
    ) -> Result<Vec<ValueId>, crate::op::InferError> {
        let id = self.create_node(op, inputs, output_names, origin)?;
        self.order.push(id);
        Ok(self.nodes[id.index()].outputs.clone())
    }

    /// Like [`Graph::add_node`] but placed in `order` at `position`.
    pub fn insert_node(
        &mut self,
        position: usize,
        op: crate::op::Op,
        inputs: Vec<ValueId>,
        output_names: &[String],
        origin: impl Into<String>,
    ) -> Result<Vec<ValueId>, crate::op::InferError> {
        let id = self.create_node(op, inputs, output_names, origin)?;
        self.order.insert(position, id);
        Ok(self.nodes[id.index()].outputs.clone())
    }

    fn create_node(
        &mut self,
        op: crate::op::Op,
        inputs: Vec<ValueId>,
        output_names: &[String],
        origin: impl Into<String>,
    ) -> Result<NodeId, crate::op::InferError> {
        let input_types: Vec<&TensorType> = inputs.iter().map(|&v| self.ty(v)).collect();
        let output_types = op.infer(&input_types)?;
        let node_id = NodeId(self.nodes.len() as u32);
        let mut outputs = Vec::with_capacity(output_types.len());
        for (index, ty) in output_types.into_iter().enumerate() {
            let name = output_names
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("{}_out{index}", op.name()));
            let id = ValueId(self.values.len() as u32);
            self.values.push(Value {
                name,
                ty,
                def: ValueDef::Node { node: node_id, index },
            });
            outputs.push(id);
        }
        self.nodes.push(Node {
            op,
            inputs,
            outputs,
            origin: origin.into(),
            keep_fp32: None,
        });
        Ok(node_id)
    }

    /// The position of `node` in `order`.
    pub fn position(&self, node: NodeId) -> Option<usize> {
        self.order.iter().position(|&n| n == node)
    }

    /// The node defining `value`, if a node does.
    pub fn producer(&self, value: ValueId) -> Option<NodeId> {
        match self.values[value.index()].def {
            ValueDef::Node { node, .. } => Some(node),
            _ => None,
        }
    }

    /// For each value, how many live node inputs and graph outputs read it.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.values.len()];
        for &n in &self.order {
            for &v in &self.nodes[n.index()].inputs {
                counts[v.index()] += 1;
            }
        }
        for out in &self.outputs {
            counts[out.value.index()] += 1;
        }
        counts
    }

    /// Live nodes reading `value`.
    pub fn users(&self, value: ValueId) -> Vec<NodeId> {
        self.order
            .iter()
            .copied()
            .filter(|&n| self.nodes[n.index()].inputs.contains(&value))
            .collect()
    }

    pub fn is_graph_output(&self, value: ValueId) -> bool {
        self.outputs.iter().any(|o| o.value == value)
    }

    /// Point every live node input reading `from` at `to` (graph outputs keep `from`).
    pub fn replace_uses_in_nodes(&mut self, from: ValueId, to: ValueId) {
        for &n in &self.order {
            for input in &mut self.nodes[n.index()].inputs {
                if *input == from {
                    *input = to;
                }
            }
        }
    }

    /// Point every live use of `from` (node inputs and graph outputs) at `to`.
    pub fn replace_all_uses(&mut self, from: ValueId, to: ValueId) {
        self.replace_uses_in_nodes(from, to);
        for out in &mut self.outputs {
            if out.value == from {
                out.value = to;
            }
        }
    }

    /// Drop nodes from `order` (their arena slots stay, unreachable).
    pub fn remove_nodes(&mut self, dead: &[NodeId]) {
        if dead.is_empty() {
            return;
        }
        let mut is_dead = vec![false; self.nodes.len()];
        for n in dead {
            is_dead[n.index()] = true;
        }
        self.order.retain(|n| !is_dead[n.index()]);
    }

    /// Rebuild `order` in one sweep, letting `rewrite` replace nodes.
    ///
    /// `rewrite` sees each live node in order, with its inputs already redirected past earlier
    /// replacements. It returns `None` to keep the node, or the values that replace its outputs;
    /// nodes it adds with [`Graph::add_node`] land at the current position. Graph outputs follow
    /// the replacements. Returns whether anything was replaced.
    pub fn rewrite_nodes<E>(
        &mut self,
        mut rewrite: impl FnMut(&mut Graph, NodeId) -> Result<Option<Vec<ValueId>>, E>,
    ) -> Result<bool, E> {
        let old_order = std::mem::take(&mut self.order);
        let mut substitute: Vec<Option<ValueId>> = vec![None; self.values.len()];
        let mut changed = false;
        for node_id in old_order {
            for input in &mut self.nodes[node_id.index()].inputs {
                if let Some(Some(to)) = substitute.get(input.index()) {
                    *input = *to;
                }
            }
            match rewrite(self, node_id)? {
                None => self.order.push(node_id),
                Some(replacements) => {
                    changed = true;
                    substitute.resize(self.values.len(), None);
                    let outputs = self.nodes[node_id.index()].outputs.clone();
                    for (old, new) in outputs.into_iter().zip(replacements) {
                        substitute[old.index()] = Some(new);
                    }
                }
            }
        }
        for out in &mut self.outputs {
            if let Some(Some(to)) = substitute.get(out.value.index()) {
                out.value = *to;
            }
        }
        Ok(changed)
    }

    /// Keep `node` in fp32 for `reason`, undoing any change made to it for fp16 storage.
    pub fn keep_in_fp32(&mut self, node: NodeId, reason: crate::precision::Fp32Reason) {
        if let Some(at) = self.fp16_rewrites.iter().position(|r| r.node == node) {
            let original = self.fp16_rewrites.remove(at);
            let n = &mut self.nodes[node.index()];
            n.op = original.op;
            n.inputs = original.inputs;
        }
        self.nodes[node.index()].keep_fp32 = Some(reason);
    }

    /// Add `count` to the rewrite counter `what` (nothing when `count` is 0).
    pub fn count_rewrites(&mut self, what: impl Into<String>, count: usize) {
        if count > 0 {
            *self.rewrite_counts.entry(what.into()).or_default() += count;
        }
    }

    /// Record that `absorbed` was folded into `into`, with anything already folded into
    /// `absorbed`. Nodes from the same ONNX node as `into` (a Gemm legalised into several IR
    /// nodes) are not listed: they are `into`'s own node.
    pub fn record_fusion(&mut self, into: NodeId, absorbed: NodeId) {
        let node = &self.nodes[absorbed.index()];
        let mut fused = vec![FusedNode {
            origin: node.origin.clone(),
            op: node.op.name().to_string(),
        }];
        fused.extend(self.fusions.remove(&absorbed).unwrap_or_default());
        let own = self.nodes[into.index()].origin.clone();
        let list = self.fusions.entry(into).or_default();
        for f in fused {
            if f.origin != own && !list.iter().any(|g| g.origin == f.origin) {
                list.push(f);
            }
        }
    }

    /// Move the fusion record of `from` to `to`, which replaces it.
    pub fn transfer_fusions(&mut self, from: NodeId, to: NodeId) {
        if let Some(list) = self.fusions.remove(&from) {
            self.fusions.entry(to).or_default().extend(list);
        }
    }

    /// Number of live nodes.
    pub fn live_node_count(&self) -> usize {
        self.order.len()
    }
}
