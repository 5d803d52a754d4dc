//! The closed set of IR operations and their shape inference.
//!
//! Attributes are normalised when the front end builds an op: every default is explicit,
//! axes are non-negative, pads are `[begin, end]` pairs per axis. *Core* ops have a direct MIL
//! counterpart; *composite* ops (HardSwish, one-sided Clip, Gemm) are conveniences for the front
//! end that the `legalize` pass rewrites into core ops before the back end sees them.

use crate::ir::{DType, TensorType};
use std::fmt;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InferError(pub String);

macro_rules! infer_bail {
    ($($arg:tt)*) => { return Err(InferError(format!($($arg)*))) };
}

pub mod control;
pub mod recurrent;
pub mod scatter;

pub use control::{IfAttrs, Region, WhileAttrs};
pub use recurrent::{GruAttrs, LstmAttrs, RnnAttrs};
pub use scatter::ScatterMode;

/// Convolution attributes; `pads` holds `[begin, end]` per spatial axis.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads: Vec<[usize; 2]>,
    pub groups: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKind {
    Max,
    Avg { exclude_padding: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub struct PoolAttrs {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<[usize; 2]>,
    pub ceil_mode: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
    /// `sqrt(sum(x²))`.
    L2,
}

/// Elementwise float functions of one operand (each is one MIL op, or a MIL binary op with a
/// constant operand: Neg is `mul(x, -1)`, Reciprocal `real_div(1, x)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Tanh,
    Sqrt,
    Exp,
    /// Natural log with no epsilon (MIL's `log` gets `epsilon = 0`).
    Log,
    Erf,
    /// Also int32.
    Abs,
    /// Also int32.
    Neg,
    Reciprocal,
    Floor,
    Ceil,
    Softplus,
    Elu {
        alpha: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    Gelu {
        mode: GeluMode,
    },
    /// `x * sigmoid(x)` (MIL `silu`).
    Silu,
    /// -1, 0 or 1 (NaN stays NaN).
    Sign,
    /// To the nearest integer, ties to even (ONNX Round; MIL `round` documents "0.5 is rounded
    /// to 0").
    Round,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Atanh,
}

/// MIL `gelu`'s three formulas (coremltools iOS15 `activation.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeluMode {
    /// `0.5·x·(1 + erf(x/√2))`.
    Exact,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    Tanh,
    /// `x·sigmoid(1.702·x)`.
    Sigmoid,
}

impl GeluMode {
    /// The MIL `mode` string.
    pub fn mil_name(self) -> &'static str {
        match self {
            GeluMode::Exact => "EXACT",
            GeluMode::Tanh => "TANH_APPROXIMATION",
            GeluMode::Sigmoid => "SIGMOID_APPROXIMATION",
        }
    }

    /// The lower-case name the text dump shows.
    pub fn name(self) -> &'static str {
        match self {
            GeluMode::Exact => "exact",
            GeluMode::Tanh => "tanh",
            GeluMode::Sigmoid => "sigmoid",
        }
    }
}

impl UnaryOp {
    pub fn name(&self) -> &'static str {
        match self {
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Erf => "erf",
            UnaryOp::Abs => "abs",
            UnaryOp::Neg => "neg",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Elu { .. } => "elu",
            UnaryOp::LeakyRelu { .. } => "leaky_relu",
            UnaryOp::Gelu { .. } => "gelu",
            UnaryOp::Silu => "silu",
            UnaryOp::Sign => "sign",
            UnaryOp::Round => "round",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tan => "tan",
            UnaryOp::Asin => "asin",
            UnaryOp::Acos => "acos",
            UnaryOp::Atan => "atan",
            UnaryOp::Sinh => "sinh",
            UnaryOp::Cosh => "cosh",
            UnaryOp::Atanh => "atanh",
        }
    }

    /// Whether int32 operands are allowed (otherwise fp16/fp32 only).
    pub fn allows_int(&self) -> bool {
        matches!(self, UnaryOp::Abs | UnaryOp::Neg)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    /// Float operands only.
    Pow,
}

/// Elementwise comparisons; the result is bool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

impl CompareOp {
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Equal => "equal",
            CompareOp::NotEqual => "not_equal",
            CompareOp::Less => "less",
            CompareOp::LessEqual => "less_equal",
            CompareOp::Greater => "greater",
            CompareOp::GreaterEqual => "greater_equal",
        }
    }
}

/// Elementwise boolean connectives (bool operands only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogicalOp {
    And,
    Or,
    Xor,
}

impl LogicalOp {
    pub fn name(self) -> &'static str {
        match self {
            LogicalOp::And => "logical_and",
            LogicalOp::Or => "logical_or",
            LogicalOp::Xor => "logical_xor",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Max,
    Min,
}

/// One axis of a strided slice, with Python slice semantics `x[begin:end:stride]`: `begin` is a
/// valid index, `end` an exclusive bound (`None` runs to the end in the stride's direction,
/// which for a negative stride means through index 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    pub begin: usize,
    pub end: Option<usize>,
    pub stride: i64,
}

impl SliceAxis {
    /// The whole axis, unchanged.
    pub fn full(dim: usize) -> SliceAxis {
        SliceAxis {
            begin: 0,
            end: Some(dim),
            stride: 1,
        }
    }

    /// The number of elements the slice takes from an axis of size `dim`.
    pub fn len(&self, dim: usize) -> usize {
        let (b, s) = (self.begin as i64, self.stride);
        if s > 0 {
            let e = self.end.map_or(dim as i64, |e| e.min(dim) as i64);
            if e <= b {
                0
            } else {
                ((e - b + s - 1) / s) as usize
            }
        } else {
            let e = self.end.map_or(-1, |e| e as i64);
            if b <= e || s == 0 {
                0
            } else {
                ((b - e + (-s) - 1) / (-s)) as usize
            }
        }
    }

    /// The source index of element `i` of the slice.
    pub fn source_index(&self, i: usize) -> usize {
        (self.begin as i64 + i as i64 * self.stride) as usize
    }

    pub fn is_full(&self, dim: usize) -> bool {
        self.begin == 0 && self.stride == 1 && self.end.is_none_or(|e| e >= dim)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

/// Channel order of a depth/space rearrangement: where the block offset `(i, j)` sits in the
/// channel index `c` of the deep tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOrder {
    /// Depth-column-row (ONNX's default, TensorFlow's): `c = (i·b + j)·C + k`.
    Dcr,
    /// Column-row-depth (PyTorch's pixel shuffle): `c = k·b² + i·b + j`.
    Crd,
}

/// Where bilinear resampling reads the input: MIL's `resize_bilinear` sampling modes, whose
/// sample grids coremltools documents (iOS15 `image_resizing.py`). Positions are clamped to
/// `[0, in - 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// `i·(in-1)/(out-1)` (ONNX `align_corners`); undefined for `out = 1`.
    StrictAlignCorners,
    /// As `StrictAlignCorners`, but `(in-1)/2` for `out = 1`.
    AlignCorners,
    /// `i·(in - in/out)/(out-1)`, which is `i·in/out` (ONNX `asymmetric`); undefined for `out = 1`.
    Default,
    /// `(i + 1/2)·max(1, in-1)/out`.
    OffsetCorners,
    /// `(i + 1/2)·in/out - 1/2` (ONNX `half_pixel`).
    UnalignCorners,
}

impl Sampling {
    /// Every mode, in the order the front end prefers them when several fit.
    pub const ALL: [Sampling; 5] = [
        Sampling::UnalignCorners,
        Sampling::StrictAlignCorners,
        Sampling::AlignCorners,
        Sampling::Default,
        Sampling::OffsetCorners,
    ];

    /// The MIL `sampling_mode` string.
    pub fn name(self) -> &'static str {
        match self {
            Sampling::StrictAlignCorners => "STRICT_ALIGN_CORNERS",
            Sampling::AlignCorners => "ALIGN_CORNERS",
            Sampling::Default => "DEFAULT",
            Sampling::OffsetCorners => "OFFSET_CORNERS",
            Sampling::UnalignCorners => "UNALIGN_CORNERS",
        }
    }

    /// The clamped input position of each of `output` samples along an axis of `input`
    /// elements, or `None` where the documented formula is undefined (divides by zero).
    pub fn grid(self, input: usize, output: usize) -> Option<Vec<f64>> {
        if input == 0 || output == 0 {
            return None;
        }
        let (xin, xout) = (input as f64, output as f64);
        if output == 1 && matches!(self, Sampling::StrictAlignCorners | Sampling::Default) {
            return None;
        }
        if input == 1 {
            return Some(vec![0.0; output]);
        }
        let (start, spacing) = match self {
            Sampling::AlignCorners if output == 1 => ((xin - 1.0) / 2.0, 0.0),
            Sampling::StrictAlignCorners | Sampling::AlignCorners => (0.0, (xin - 1.0) / (xout - 1.0)),
            Sampling::Default => (0.0, (xin - xin / xout) / (xout - 1.0)),
            Sampling::OffsetCorners => {
                let delta = (xin - 1.0).max(1.0) / xout;
                (0.5 * delta, delta)
            }
            Sampling::UnalignCorners => {
                let spacing = xin / xout;
                (0.5 * spacing - 0.5, spacing)
            }
        };
        Some(
            (0..output)
                .map(|i| (start + i as f64 * spacing).clamp(0.0, xin - 1.0))
                .collect(),
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    // ---- core ops: each maps to one MIL op ----
    /// inputs: x, weight `[C_out, C_in/groups, *K]`, optional bias `[C_out]`.
    Conv(ConvAttrs),
    /// Transposed convolution; inputs: x, weight `[C_in, C_out/groups, *K]`, optional bias
    /// `[C_out]`. `pads` crops `[begin, end]` off each spatial axis of the full result, which
    /// has `(in - 1)·stride + (K - 1)·dilation + 1` elements.
    ConvTranspose(ConvAttrs),
    /// inputs: x, mean, variance, gamma, beta (each `[C]`).
    BatchNorm {
        epsilon: f32,
    },
    Relu,
    Relu6,
    Sigmoid,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// Both bounds present (one-sided clips are composite).
    Clip {
        min: Option<f32>,
        max: Option<f32>,
    },
    /// Elementwise function of one operand.
    Unary(UnaryOp),
    Pool(PoolAttrs),
    Reduce {
        kind: ReduceKind,
        axes: Vec<usize>,
        keep_dims: bool,
    },
    /// NumPy-broadcasting elementwise op.
    Binary(BinaryOp),
    Concat {
        axis: usize,
    },
    Reshape {
        shape: Vec<usize>,
    },
    Transpose {
        perm: Vec<usize>,
    },
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    /// inputs: x `[.., K]`, weight `[N, K]`, bias `[N]`.
    Linear,
    Softmax {
        axis: usize,
    },
    /// `pads` holds `[begin, end]` for every axis of the input.
    Pad {
        pads: Vec<[usize; 2]>,
        mode: PadMode,
        value: f32,
    },
    Cast {
        to: DType,
    },
    Identity,
    /// Elementwise comparison of two same-typed operands, NumPy broadcasting; bool result.
    Compare(CompareOp),
    /// Elementwise connective of two bool operands, NumPy broadcasting.
    Logical(LogicalOp),
    /// Elementwise negation of a bool operand.
    Not,
    /// inputs: cond (bool), a, b; `cond ? a : b` with NumPy broadcasting of all three, where
    /// the result has the shape of `a` and `b` broadcast (cond may not widen it, as in MIL).
    Select,
    /// inputs: x (float or int; MIL has no bool gather), indices (int, values in `0..dim`); output `x.shape[..axis] + indices.shape +
    /// x.shape[axis+1..]`.
    Gather {
        axis: usize,
    },
    /// inputs: x, indices of x's rank (values in `0..dim`); output has the indices' shape.
    GatherElements {
        axis: usize,
    },
    /// A strided slice, one entry per axis of the input.
    Slice {
        axes: Vec<SliceAxis>,
    },
    /// Repeat the input `reps[i]` times along axis `i`.
    Tile {
        reps: Vec<usize>,
    },
    /// inputs: x, and optionally gamma and beta (both shaped like `x.shape[axes]`; without
    /// them 1 and 0); normalises over `axes`.
    LayerNorm {
        axes: Vec<usize>,
        epsilon: f32,
    },
    /// Index of the largest/smallest element along `axis`, as int32.
    ArgReduce {
        kind: ArgKind,
        axis: usize,
        keep_dims: bool,
    },
    /// The `k` largest (or smallest) elements along `axis`, sorted, ties in index order; two
    /// outputs: the values, and their int32 indices.
    TopK {
        k: usize,
        axis: usize,
        largest: bool,
    },
    /// Nearest-neighbour upsampling of the last two axes (input rank >= 3) by whole factors
    /// `[height, width]`: `y[i] = x[i / s]`.
    UpsampleNearest {
        scales: [usize; 2],
    },
    /// Bilinear resampling of the last two axes (input rank >= 3) to `size` (`[height,
    /// width]`), reading the input at the positions `sampling` gives.
    ResizeBilinear {
        size: [usize; 2],
        sampling: Sampling,
    },
    /// `[N, C·b², H, W]` → `[N, C, H·b, W·b]`: each channel block becomes a `b`×`b` patch.
    DepthToSpace {
        block: usize,
        order: BlockOrder,
    },
    /// `[N, C, H·b, W·b]` → `[N, C·b², H, W]`, the inverse of a DCR DepthToSpace.
    SpaceToDepth {
        block: usize,
    },
    /// Running sum along `axis` (float or int): `exclusive` leaves each element out of its own
    /// sum, `reverse` sums from the end of the axis.
    CumSum {
        axis: usize,
        exclusive: bool,
        reverse: bool,
    },
    /// Across the channels (axis 1) of `[N, C, *D]`, rank 3 or 4 (MIL's limit):
    /// `x / (bias + alpha/size · Σ x²)^beta`, the sum over the `size` channels centred on each
    /// (odd `size`, so that ONNX's and Core ML's windows agree), clipped at the edges.
    LocalResponseNorm {
        size: usize,
        alpha: f32,
        beta: f32,
        bias: f32,
    },
    /// `softmax(q·kᵀ/√E + mask)·v` over the last two axes (MIL iOS18
    /// `scaled_dot_product_attention`); inputs: query `[B.., L, E]`, key `[B.., S, E]`, value
    /// `[B.., S, EV]` and an optional additive float mask broadcastable to `[B.., L, S]`.
    ScaledDotProductAttention,
    /// MIL `lstm`: see [`recurrent`] for operands and semantics.
    Lstm(LstmAttrs),
    /// MIL `gru`.
    Gru(GruAttrs),
    /// MIL `rnn`.
    Rnn(RnnAttrs),
    /// MIL `scatter_nd` (indices computed at run time): see [`scatter`].
    ScatterNd {
        mode: ScatterMode,
    },
    /// MIL `scatter_along_axis` (indices computed at run time).
    ScatterAlongAxis {
        axis: usize,
        mode: ScatterMode,
    },
    /// MIL `cond`: see [`control`] for operands and regions.
    If(IfAttrs),
    /// MIL `while_loop`.
    While(WhileAttrs),
    // ---- composite ops: rewritten by `legalize` ----
    /// `x * hard_sigmoid(x, 1/6, 1/2)`.
    HardSwish,
    /// `alpha * op(A) @ op(B) + beta * C`; inputs A, B and optional C.
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
}

impl Op {
    /// A short lower-case name, used by the text dump.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "conv",
            Op::ConvTranspose(_) => "conv_transpose",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::Sigmoid => "sigmoid",
            Op::HardSigmoid { .. } => "hard_sigmoid",
            Op::Clip { .. } => "clip",
            Op::Pool(p) => match p.kind {
                PoolKind::Max => "max_pool",
                PoolKind::Avg { .. } => "avg_pool",
            },
            Op::Reduce { kind, .. } => match kind {
                ReduceKind::Mean => "reduce_mean",
                ReduceKind::Sum => "reduce_sum",
                ReduceKind::Max => "reduce_max",
                ReduceKind::Min => "reduce_min",
                ReduceKind::Prod => "reduce_prod",
                ReduceKind::L2 => "reduce_l2_norm",
            },
            Op::Unary(u) => u.name(),
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Maximum => "maximum",
                BinaryOp::Minimum => "minimum",
                BinaryOp::Pow => "pow",
            },
            Op::Concat { .. } => "concat",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::MatMul { .. } => "matmul",
            Op::Linear => "linear",
            Op::Softmax { .. } => "softmax",
            Op::Pad { .. } => "pad",
            Op::Cast { .. } => "cast",
            Op::Identity => "identity",
            Op::Compare(c) => c.name(),
            Op::Logical(l) => l.name(),
            Op::Not => "logical_not",
            Op::Select => "select",
            Op::Gather { .. } => "gather",
            Op::GatherElements { .. } => "gather_elements",
            Op::Slice { .. } => "slice",
            Op::Tile { .. } => "tile",
            Op::LayerNorm { .. } => "layer_norm",
            Op::ArgReduce { kind, .. } => match kind {
                ArgKind::Max => "argmax",
                ArgKind::Min => "argmin",
            },
            Op::CumSum { .. } => "cumsum",
            Op::TopK { .. } => "topk",
            Op::UpsampleNearest { .. } => "upsample_nearest",
            Op::ResizeBilinear { .. } => "resize_bilinear",
            Op::DepthToSpace { .. } => "depth_to_space",
            Op::SpaceToDepth { .. } => "space_to_depth",
            Op::LocalResponseNorm { .. } => "local_response_norm",
            Op::ScaledDotProductAttention => "scaled_dot_product_attention",
            Op::Lstm(_) => "lstm",
            Op::Gru(_) => "gru",
            Op::Rnn(_) => "rnn",
            Op::ScatterNd { .. } => "scatter_nd",
            Op::ScatterAlongAxis { .. } => "scatter_along_axis",
            Op::If(_) => "if",
            Op::While(_) => "while_loop",
            Op::HardSwish => "hard_swish",
            Op::Gemm { .. } => "gemm",
        }
    }

    /// Whether the back end may see this op (after `legalize`).
    pub fn is_core(&self) -> bool {
        match self {
            Op::HardSwish | Op::Gemm { .. } => false,
            Op::Clip { min, max } => min.is_some() && max.is_some(),
            _ => true,
        }
    }

    /// Output types from input types; errors describe the mismatch.
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
        let arity = |lo: usize, hi: usize| -> Result<(), InferError> {
            if inputs.len() < lo || inputs.len() > hi {
                infer_bail!("{} takes {lo}..={hi} inputs, got {}", self.name(), inputs.len());
            }
            Ok(())
        };
        let float_input = |t: &TensorType| -> Result<(), InferError> {
            if !t.dtype.is_float() {
                infer_bail!("{} needs a float input, got {}", self.name(), t);
            }
            Ok(())
        };
        // MIL's arithmetic, reductions and matmul take fp16, fp32 or int32 (coremltools'
        // type domains): a bool operand would make a package Core ML refuses.
        let numeric_input = |t: &TensorType| -> Result<(), InferError> {
            if t.dtype == DType::Bool {
                infer_bail!("{} needs a numeric input, got {}", self.name(), t);
            }
            Ok(())
        };
        match self {
            Op::Conv(a) => {
                arity(2, 3)?;
                let (x, w) = (inputs[0], inputs[1]);
                float_input(x)?;
                let spatial = x.rank().checked_sub(2).filter(|s| (1..=3).contains(s));
                let Some(spatial) = spatial else {
                    infer_bail!("conv input must have rank 3..=5, got {x}")
                };
                if w.rank() != x.rank() {
                    infer_bail!("conv weight {w} must have the rank of the input {x}");
                }
                if a.strides.len() != spatial || a.dilations.len() != spatial || a.pads.len() != spatial {
                    infer_bail!("conv attributes must cover {spatial} spatial axes");
                }
                if a.groups == 0 || x.shape[1] % a.groups != 0 || w.shape[0] % a.groups != 0 {
                    infer_bail!(
                        "conv groups {} must divide input channels {} and output channels {}",
                        a.groups,
                        x.shape[1],
                        w.shape[0]
                    );
                }
                if w.shape[1] * a.groups != x.shape[1] {
                    infer_bail!(
                        "conv weight {w} expects {} input channels, input {x} has {}",
                        w.shape[1] * a.groups,
                        x.shape[1]
                    );
                }
                if let Some(b) = inputs.get(2) {
                    if b.shape != [w.shape[0]] {
                        infer_bail!("conv bias {b} must be [{}]", w.shape[0]);
                    }
                }
                let mut shape = vec![x.shape[0], w.shape[0]];
                for i in 0..spatial {
                    let k = (w.shape[2 + i].saturating_sub(1)) * a.dilations[i] + 1;
                    let padded = x.shape[2 + i] + a.pads[i][0] + a.pads[i][1];
                    if padded < k || a.strides[i] == 0 {
                        infer_bail!("conv window {k} larger than padded input {padded} on spatial axis {i}");
                    }
                    shape.push((padded - k) / a.strides[i] + 1);
                }
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::ConvTranspose(a) => {
                arity(2, 3)?;
                let (x, w) = (inputs[0], inputs[1]);
                float_input(x)?;
                let spatial = x.rank().checked_sub(2).filter(|s| (1..=3).contains(s));
                let Some(spatial) = spatial else {
                    infer_bail!("conv_transpose input must have rank 3..=5, got {x}")
                };
                if w.rank() != x.rank() || w.shape[0] != x.shape[1] {
                    infer_bail!(
                        "conv_transpose weight {w} must be [C_in={}, C_out/groups, *K]",
                        x.shape[1]
                    );
                }
                if a.strides.len() != spatial || a.dilations.len() != spatial || a.pads.len() != spatial {
                    infer_bail!("conv_transpose attributes must cover {spatial} spatial axes");
                }
                if a.groups == 0 || x.shape[1] % a.groups != 0 {
                    infer_bail!(
                        "conv_transpose groups {} must divide input channels {}",
                        a.groups,
                        x.shape[1]
                    );
                }
                let c_out = w.shape[1] * a.groups;
                if let Some(b) = inputs.get(2) {
                    if b.shape != [c_out] {
                        infer_bail!("conv_transpose bias {b} must be [{c_out}]");
                    }
                }
                let mut shape = vec![x.shape[0], c_out];
                for i in 0..spatial {
                    let full = (x.shape[2 + i].saturating_sub(1)) * a.strides[i]
                        + (w.shape[2 + i].saturating_sub(1)) * a.dilations[i]
                        + 1;
                    let cropped = a.pads[i][0] + a.pads[i][1];
                    if cropped >= full || a.strides[i] == 0 {
                        infer_bail!(
                            "conv_transpose pads {:?} leave nothing of {full} on spatial axis {i}",
                            a.pads[i]
                        );
                    }
                    shape.push(full - cropped);
                }
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::BatchNorm { .. } => {
                arity(5, 5)?;
                let x = inputs[0];
                float_input(x)?;
                if !(3..=5).contains(&x.rank()) {
                    infer_bail!("batch_norm input must have rank 3..=5, got {x}");
                }
                for p in &inputs[1..] {
                    if p.shape != [x.shape[1]] {
                        infer_bail!("batch_norm parameter {p} must be [{}]", x.shape[1]);
                    }
                }
                Ok(vec![x.clone()])
            }
            Op::Relu | Op::Relu6 | Op::Sigmoid | Op::HardSigmoid { .. } | Op::HardSwish | Op::Clip { .. } => {
                arity(1, 1)?;
                float_input(inputs[0])?;
                Ok(vec![inputs[0].clone()])
            }
            Op::Unary(u) => {
                arity(1, 1)?;
                let x = inputs[0];
                let int_ok = u.allows_int() && matches!(x.dtype, DType::I32 | DType::I64);
                if !int_ok {
                    float_input(x)?;
                }
                Ok(vec![x.clone()])
            }
            Op::Identity => {
                arity(1, 1)?;
                Ok(vec![inputs[0].clone()])
            }
            Op::Cast { to } => {
                arity(1, 1)?;
                Ok(vec![inputs[0].with_dtype(*to)])
            }
            Op::Pool(p) => {
                arity(1, 1)?;
                let x = inputs[0];
                float_input(x)?;
                let spatial = x.rank().saturating_sub(2);
                if !(1..=3).contains(&spatial) {
                    infer_bail!("pool input must have rank 3..=5, got {x}");
                }
                if p.kernel.len() != spatial || p.strides.len() != spatial || p.pads.len() != spatial {
                    infer_bail!("pool attributes must cover {spatial} spatial axes");
                }
                let mut shape = x.shape[..2].to_vec();
                for i in 0..spatial {
                    shape.push(pool_output_size(
                        x.shape[2 + i],
                        p.kernel[i],
                        p.strides[i],
                        p.pads[i],
                        p.ceil_mode,
                    )?);
                }
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::Reduce { kind, axes, keep_dims } => {
                arity(1, 1)?;
                let x = inputs[0];
                // An integer mean or L2 norm has no documented rounding in MIL.
                if matches!(kind, ReduceKind::Mean | ReduceKind::L2) {
                    float_input(x)?;
                } else {
                    numeric_input(x)?;
                }
                check_axes(axes, x.rank())?;
                let shape = x
                    .shape
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
                        (false, _) => Some(d),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect::<Vec<_>>();
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::Binary(_) => {
                arity(2, 2)?;
                let (a, b) = (inputs[0], inputs[1]);
                if a.dtype != b.dtype {
                    infer_bail!("{} operands differ in type: {a} vs {b}", self.name());
                }
                numeric_input(a)?;
                if *self == Op::Binary(BinaryOp::Pow) {
                    float_input(a)?;
                }
                let shape = broadcast_shapes(&a.shape, &b.shape)?;
                Ok(vec![TensorType::new(a.dtype, shape)])
            }
            Op::Concat { axis } => {
                if inputs.is_empty() {
                    infer_bail!("concat needs at least one input");
                }
                let first = inputs[0];
                if *axis >= first.rank() {
                    infer_bail!("concat axis {axis} out of range for {first}");
                }
                let mut shape = first.shape.clone();
                shape[*axis] = 0;
                for t in inputs {
                    let same = t.rank() == first.rank()
                        && t.dtype == first.dtype
                        && t.shape
                            .iter()
                            .zip(&first.shape)
                            .enumerate()
                            .all(|(i, (a, b))| i == *axis || a == b);
                    if !same {
                        infer_bail!("concat inputs {first} and {t} do not agree off axis {axis}");
                    }
                    shape[*axis] += t.shape[*axis];
                }
                Ok(vec![TensorType::new(first.dtype, shape)])
            }
            Op::Reshape { shape } => {
                arity(1, 1)?;
                let x = inputs[0];
                let count: usize = shape.iter().product();
                if count != x.num_elements() {
                    infer_bail!("reshape of {x} to {shape:?} changes the element count");
                }
                Ok(vec![TensorType::new(x.dtype, shape.clone())])
            }
            Op::Transpose { perm } => {
                arity(1, 1)?;
                let x = inputs[0];
                let mut seen = vec![false; x.rank()];
                if perm.len() != x.rank()
                    || perm
                        .iter()
                        .any(|&p| p >= x.rank() || std::mem::replace(&mut seen[p], true))
                {
                    infer_bail!("transpose perm {perm:?} is not a permutation of the axes of {x}");
                }
                Ok(vec![TensorType::new(
                    x.dtype,
                    perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
                )])
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                arity(2, 2)?;
                let (a, b) = (inputs[0], inputs[1]);
                if a.dtype != b.dtype {
                    infer_bail!("matmul operands differ in type: {a} vs {b}");
                }
                numeric_input(a)?;
                let shape = matmul_shape(a, b, *transpose_a, *transpose_b)?;
                Ok(vec![TensorType::new(inputs[0].dtype, shape)])
            }
            Op::Linear => {
                arity(3, 3)?;
                let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
                float_input(x)?;
                if !(1..=3).contains(&x.rank()) || w.rank() != 2 || b.shape != [w.shape[0]] {
                    infer_bail!("linear needs x of rank 1..=3, weight [N,K], bias [N]; got {x}, {w}, {b}");
                }
                if x.shape[x.rank() - 1] != w.shape[1] {
                    infer_bail!("linear weight {w} does not match input {x}");
                }
                let mut shape = x.shape.clone();
                *shape.last_mut().unwrap_or(&mut 0) = w.shape[0];
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::Softmax { axis } => {
                arity(1, 1)?;
                float_input(inputs[0])?;
                check_axes(&[*axis], inputs[0].rank())?;
                Ok(vec![inputs[0].clone()])
            }
            Op::LocalResponseNorm { size, .. } => {
                arity(1, 1)?;
                float_input(inputs[0])?;
                if !(3..=4).contains(&inputs[0].rank()) || size % 2 == 0 {
                    infer_bail!(
                        "local_response_norm needs rank 3 or 4 and an odd size, got {} and {size}",
                        inputs[0]
                    );
                }
                Ok(vec![inputs[0].clone()])
            }
            Op::Pad { pads, mode, .. } => {
                arity(1, 1)?;
                let x = inputs[0];
                if pads.len() != x.rank() {
                    infer_bail!("pad needs [begin, end] for each of the {} axes", x.rank());
                }
                let mut shape = Vec::with_capacity(x.rank());
                for (d, p) in x.shape.iter().zip(pads) {
                    if *mode == PadMode::Reflect && (p[0] >= *d || p[1] >= *d) {
                        infer_bail!("reflect padding {p:?} must be smaller than the axis size {d}");
                    }
                    shape.push(d + p[0] + p[1]);
                }
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::Compare(_) => {
                arity(2, 2)?;
                let (a, b) = (inputs[0], inputs[1]);
                if a.dtype != b.dtype || a.dtype == DType::Bool {
                    infer_bail!(
                        "{} needs two numeric operands of one type, got {a} and {b}",
                        self.name()
                    );
                }
                Ok(vec![TensorType::new(
                    DType::Bool,
                    broadcast_shapes(&a.shape, &b.shape)?,
                )])
            }
            Op::Logical(_) => {
                arity(2, 2)?;
                let (a, b) = (inputs[0], inputs[1]);
                if a.dtype != DType::Bool || b.dtype != DType::Bool {
                    infer_bail!("{} needs bool operands, got {a} and {b}", self.name());
                }
                Ok(vec![TensorType::new(
                    DType::Bool,
                    broadcast_shapes(&a.shape, &b.shape)?,
                )])
            }
            Op::Not => {
                arity(1, 1)?;
                if inputs[0].dtype != DType::Bool {
                    infer_bail!("logical_not needs a bool operand, got {}", inputs[0]);
                }
                Ok(vec![inputs[0].clone()])
            }
            Op::Select => {
                arity(3, 3)?;
                let (c, a, b) = (inputs[0], inputs[1], inputs[2]);
                if c.dtype != DType::Bool || a.dtype != b.dtype {
                    infer_bail!("select needs a bool condition and two operands of one type, got {c}, {a}, {b}");
                }
                // MIL types select's result as broadcast(a, b): cond must not widen it.
                let shape = broadcast_shapes(&a.shape, &b.shape)?;
                if broadcast_shapes(&c.shape, &shape)? != shape {
                    infer_bail!("select condition {c} is wider than its operands {a} and {b}");
                }
                Ok(vec![TensorType::new(a.dtype, shape)])
            }
            Op::Gather { axis } => {
                arity(2, 2)?;
                let (x, idx) = (inputs[0], inputs[1]);
                check_axes(&[*axis], x.rank())?;
                if !matches!(idx.dtype, DType::I32 | DType::I64) {
                    infer_bail!("gather indices must be integers, got {idx}");
                }
                if x.dtype == DType::Bool {
                    infer_bail!("gather takes float or integer data, not {x} (cast bool to int32 first)");
                }
                let mut shape = x.shape[..*axis].to_vec();
                shape.extend_from_slice(&idx.shape);
                shape.extend_from_slice(&x.shape[axis + 1..]);
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::GatherElements { axis } => {
                arity(2, 2)?;
                let (x, idx) = (inputs[0], inputs[1]);
                check_axes(&[*axis], x.rank())?;
                if !matches!(idx.dtype, DType::I32 | DType::I64) || idx.rank() != x.rank() {
                    infer_bail!("gather_elements indices must be integers of the data's rank, got {idx} for {x}");
                }
                if x.dtype == DType::Bool {
                    infer_bail!("gather_elements takes float or integer data, not {x} (cast bool to int32 first)");
                }
                Ok(vec![TensorType::new(x.dtype, idx.shape.clone())])
            }
            Op::Slice { axes } => {
                arity(1, 1)?;
                let x = inputs[0];
                if axes.len() != x.rank() {
                    infer_bail!("slice needs one entry per axis of {x}, got {}", axes.len());
                }
                let mut shape = Vec::with_capacity(x.rank());
                for (s, &d) in axes.iter().zip(&x.shape) {
                    if s.stride == 0 || s.begin >= d.max(1) {
                        infer_bail!("slice {s:?} is invalid for an axis of size {d}");
                    }
                    let n = s.len(d);
                    if n == 0 {
                        infer_bail!("slice {s:?} of an axis of size {d} is empty");
                    }
                    shape.push(n);
                }
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::Tile { reps } => {
                arity(1, 1)?;
                let x = inputs[0];
                if reps.len() != x.rank() || reps.contains(&0) {
                    infer_bail!("tile needs a positive repeat count per axis of {x}, got {reps:?}");
                }
                let shape = x.shape.iter().zip(reps).map(|(d, r)| d * r).collect::<Vec<_>>();
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::LayerNorm { axes, .. } => {
                arity(1, 3)?;
                if inputs.len() == 2 {
                    infer_bail!("layer_norm takes gamma and beta together, or neither");
                }
                let x = inputs[0];
                float_input(x)?;
                check_axes(axes, x.rank())?;
                let expected: Vec<usize> = axes.iter().map(|&a| x.shape[a]).collect();
                for p in &inputs[1..] {
                    if p.shape != expected || p.dtype != x.dtype {
                        infer_bail!(
                            "layer_norm gamma/beta {p} must be {}",
                            TensorType::new(x.dtype, expected)
                        );
                    }
                }
                Ok(vec![x.clone()])
            }
            Op::ArgReduce { axis, keep_dims, .. } => {
                arity(1, 1)?;
                let x = inputs[0];
                numeric_input(x)?;
                check_axes(&[*axis], x.rank())?;
                let mut shape = x.shape.clone();
                if *keep_dims {
                    shape[*axis] = 1;
                } else {
                    shape.remove(*axis);
                }
                Ok(vec![TensorType::new(DType::I32, shape)])
            }
            Op::CumSum { axis, .. } => {
                arity(1, 1)?;
                let x = inputs[0];
                check_axes(&[*axis], x.rank())?;
                if x.dtype == DType::Bool {
                    infer_bail!("cumsum takes float or integer data, not {x}");
                }
                Ok(vec![x.clone()])
            }
            Op::TopK { k, axis, .. } => {
                arity(1, 1)?;
                let x = inputs[0];
                check_axes(&[*axis], x.rank())?;
                if x.dtype == DType::Bool {
                    infer_bail!("topk takes float or integer data, not {x}");
                }
                if *k == 0 || *k > x.shape[*axis] {
                    infer_bail!("topk k={k} must be in 1..={} for {x} on axis {axis}", x.shape[*axis]);
                }
                let mut shape = x.shape.clone();
                shape[*axis] = *k;
                Ok(vec![
                    TensorType::new(x.dtype, shape.clone()),
                    TensorType::new(DType::I32, shape),
                ])
            }
            Op::UpsampleNearest { scales } => {
                arity(1, 1)?;
                let x = inputs[0];
                float_input(x)?;
                if x.rank() < 3 || scales.contains(&0) {
                    infer_bail!("upsample_nearest needs rank >= 3 and positive scales, got {x} and {scales:?}");
                }
                let mut shape = x.shape.clone();
                let r = shape.len();
                shape[r - 2] *= scales[0];
                shape[r - 1] *= scales[1];
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::ResizeBilinear { size, sampling } => {
                arity(1, 1)?;
                let x = inputs[0];
                float_input(x)?;
                if x.rank() < 3 || size.contains(&0) {
                    infer_bail!("resize_bilinear needs rank >= 3 and a positive size, got {x} and {size:?}");
                }
                let r = x.rank();
                for (i, (&input, &output)) in x.shape[r - 2..].iter().zip(size).enumerate() {
                    if sampling.grid(input, output).is_none() {
                        infer_bail!(
                            "{} sampling is undefined for {input} -> {output} on axis {}",
                            sampling.name(),
                            r - 2 + i
                        );
                    }
                }
                let mut shape = x.shape.clone();
                shape[r - 2] = size[0];
                shape[r - 1] = size[1];
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::DepthToSpace { block, .. } | Op::SpaceToDepth { block } => {
                arity(1, 1)?;
                let x = inputs[0];
                float_input(x)?;
                let b = *block;
                if x.rank() != 4 || b < 2 {
                    infer_bail!(
                        "{} needs a rank-4 input and a block of at least 2, got {x} and {b}",
                        self.name()
                    );
                }
                let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
                let shape = if matches!(self, Op::DepthToSpace { .. }) {
                    if c % (b * b) != 0 {
                        infer_bail!("depth_to_space: {c} channels do not split into {b}x{b} blocks");
                    }
                    vec![n, c / (b * b), h * b, w * b]
                } else {
                    if h % b != 0 || w % b != 0 {
                        infer_bail!("space_to_depth: {h}x{w} does not split into {b}x{b} blocks");
                    }
                    vec![n, c * b * b, h / b, w / b]
                };
                Ok(vec![TensorType::new(x.dtype, shape)])
            }
            Op::ScaledDotProductAttention => {
                arity(3, 4)?;
                let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
                float_input(q)?;
                let r = q.rank();
                if r < 3 || k.rank() != r || v.rank() != r {
                    infer_bail!("attention needs query, key and value of one rank >= 3, got {q}, {k}, {v}");
                }
                if k.dtype != q.dtype || v.dtype != q.dtype {
                    infer_bail!("attention operands differ in type: {q}, {k}, {v}");
                }
                let same_batch = q.shape[..r - 2] == k.shape[..r - 2] && k.shape[..r - 2] == v.shape[..r - 2];
                if !same_batch || q.shape[r - 1] != k.shape[r - 1] || k.shape[r - 2] != v.shape[r - 2] {
                    infer_bail!("attention shapes do not agree: query {q}, key {k}, value {v}");
                }
                if let Some(mask) = inputs.get(3) {
                    let scores: Vec<usize> = q.shape[..r - 1].iter().copied().chain([k.shape[r - 2]]).collect();
                    // MIL also wants the mask's last axis to be the key length itself.
                    let keys_axis = mask.shape.last() == Some(&k.shape[r - 2]);
                    if mask.dtype != q.dtype || !keys_axis || broadcast_shapes(&mask.shape, &scores)? != scores {
                        infer_bail!("attention mask {mask} does not broadcast to the scores {scores:?}");
                    }
                }
                let mut shape = q.shape.clone();
                shape[r - 1] = v.shape[r - 1];
                Ok(vec![TensorType::new(q.dtype, shape)])
            }
            Op::Lstm(a) => a.infer(inputs),
            Op::Gru(a) => a.infer(inputs),
            Op::Rnn(a) => a.infer(inputs),
            Op::ScatterNd { .. } => scatter::infer_scatter_nd(inputs),
            Op::ScatterAlongAxis { axis, .. } => scatter::infer_scatter_along_axis(*axis, inputs),
            Op::If(a) => a.infer(inputs),
            Op::While(a) => a.infer(inputs),
            Op::Gemm { trans_a, trans_b, .. } => {
                arity(2, 3)?;
                let (a, b) = (inputs[0], inputs[1]);
                if a.rank() != 2 || b.rank() != 2 {
                    infer_bail!("gemm needs 2-D operands, got {a} and {b}");
                }
                let shape = matmul_shape(a, b, *trans_a, *trans_b)?;
                if let Some(c) = inputs.get(2) {
                    if broadcast_shapes(&c.shape, &shape)? != shape {
                        infer_bail!("gemm C {c} does not broadcast to {shape:?}");
                    }
                }
                Ok(vec![TensorType::new(a.dtype, shape)])
            }
        }
    }
}

fn check_axes(axes: &[usize], rank: usize) -> Result<(), InferError> {
    if let Some(a) = axes.iter().find(|&&a| a >= rank) {
        infer_bail!("axis {a} out of range for rank {rank}");
    }
    Ok(())
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, InferError> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => infer_bail!("shapes {a:?} and {b:?} do not broadcast"),
        };
    }
    Ok(out)
}

/// NumPy `matmul` result shape (1-D operands promoted and the promoted axis dropped).
pub fn matmul_shape(a: &TensorType, b: &TensorType, ta: bool, tb: bool) -> Result<Vec<usize>, InferError> {
    if a.dtype != b.dtype {
        infer_bail!("matmul operands differ in type: {a} vs {b}");
    }
    if a.rank() == 0 || b.rank() == 0 {
        infer_bail!("matmul operands must not be scalars");
    }
    let mut sa = a.shape.clone();
    let mut sb = b.shape.clone();
    let a_vec = sa.len() == 1;
    let b_vec = sb.len() == 1;
    if a_vec {
        sa.insert(0, 1);
    }
    if b_vec {
        sb.push(1);
    }
    let (ra, rb) = (sa.len(), sb.len());
    if ta && !a_vec {
        sa.swap(ra - 1, ra - 2);
    }
    if tb && !b_vec {
        sb.swap(rb - 1, rb - 2);
    }
    let (m, k) = (sa[ra - 2], sa[ra - 1]);
    let (k2, n) = (sb[rb - 2], sb[rb - 1]);
    if k != k2 {
        infer_bail!("matmul inner dimensions differ: {a} x {b}");
    }
    let mut shape = broadcast_shapes(&sa[..ra - 2], &sb[..rb - 2])?;
    if !a_vec {
        shape.push(m);
    }
    if !b_vec {
        shape.push(n);
    }
    Ok(shape)
}

/// Output size of one pooled axis. Ceil mode drops a last window that would start inside the
/// end padding (the rule PyTorch, ONNX and MIL share).
pub fn pool_output_size(
    input: usize,
    kernel: usize,
    stride: usize,
    pads: [usize; 2],
    ceil_mode: bool,
) -> Result<usize, InferError> {
    let padded = input + pads[0] + pads[1];
    if kernel == 0 || stride == 0 || padded < kernel {
        infer_bail!("pool window {kernel} (stride {stride}) does not fit padded size {padded}");
    }
    let span = padded - kernel;
    let mut out = if ceil_mode {
        span.div_ceil(stride) + 1
    } else {
        span / stride + 1
    };
    if ceil_mode && (out - 1) * stride >= input + pads[0] {
        out -= 1;
    }
    Ok(out)
}

impl Op {
    /// The bodies of a control-flow op, in the order MIL lists its blocks (none for other ops).
    pub fn regions(&self) -> Vec<&crate::ir::Graph> {
        match self {
            Op::If(a) => vec![&*a.then_branch.0, &*a.else_branch.0],
            Op::While(a) => vec![&*a.cond.0, &*a.body.0],
            _ => Vec::new(),
        }
    }

    pub fn regions_mut(&mut self) -> Vec<&mut crate::ir::Graph> {
        match self {
            Op::If(a) => vec![&mut *a.then_branch.0, &mut *a.else_branch.0],
            Op::While(a) => vec![&mut *a.cond.0, &mut *a.body.0],
            _ => Vec::new(),
        }
    }

    /// The attributes as the text dump shows them: ` key=value` pairs, or nothing.
    pub fn attributes(&self) -> String {
        OpAttributes(self).to_string()
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name(), OpAttributes(self))
    }
}

struct OpAttributes<'a>(&'a Op);

impl fmt::Display for OpAttributes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = |p: &[[usize; 2]]| {
            p.iter()
                .map(|x| format!("{}:{}", x[0], x[1]))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.0 {
            Op::Conv(a) | Op::ConvTranspose(a) => write!(
                f,
                " strides={:?} dilations={:?} pads=[{}] groups={}",
                a.strides,
                a.dilations,
                pairs(&a.pads),
                a.groups
            ),
            Op::BatchNorm { epsilon } => write!(f, " epsilon={epsilon:e}"),
            Op::HardSigmoid { alpha, beta } => write!(f, " alpha={alpha} beta={beta}"),
            Op::Unary(UnaryOp::Elu { alpha } | UnaryOp::LeakyRelu { alpha }) => write!(f, " alpha={alpha}"),
            Op::Unary(UnaryOp::Gelu { mode }) => write!(f, " mode={}", mode.name()),
            Op::Unary(_) => Ok(()),
            Op::Clip { min, max } => write!(f, " min={min:?} max={max:?}"),
            Op::Pool(p) => {
                write!(
                    f,
                    " kernel={:?} strides={:?} pads=[{}] ceil_mode={}",
                    p.kernel,
                    p.strides,
                    pairs(&p.pads),
                    p.ceil_mode
                )?;
                if let PoolKind::Avg { exclude_padding } = p.kind {
                    write!(f, " exclude_padding={exclude_padding}")?;
                }
                Ok(())
            }
            Op::Reduce { axes, keep_dims, .. } => write!(f, " axes={axes:?} keep_dims={keep_dims}"),
            Op::Concat { axis } => write!(f, " axis={axis}"),
            Op::Reshape { shape } => write!(f, " shape={shape:?}"),
            Op::Transpose { perm } => write!(f, " perm={perm:?}"),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => write!(f, " transpose_a={transpose_a} transpose_b={transpose_b}"),
            Op::Softmax { axis } => write!(f, " axis={axis}"),
            Op::LocalResponseNorm {
                size,
                alpha,
                beta,
                bias,
            } => {
                write!(f, " size={size} alpha={alpha:e} beta={beta} bias={bias}")
            }
            Op::Pad { pads, mode, value } => {
                write!(f, " pads=[{}] mode={mode:?} value={value}", pairs(pads))
            }
            Op::Cast { to } => write!(f, " to={to}"),
            Op::Gather { axis } | Op::GatherElements { axis } => write!(f, " axis={axis}"),
            Op::Slice { axes } => {
                f.write_str(" [")?;
                for (i, s) in axes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    match s.end {
                        Some(e) => write!(f, "{}:{}:{}", s.begin, e, s.stride)?,
                        None => write!(f, "{}::{}", s.begin, s.stride)?,
                    }
                }
                f.write_str("]")
            }
            Op::Tile { reps } => write!(f, " reps={reps:?}"),
            Op::LayerNorm { axes, epsilon } => write!(f, " axes={axes:?} epsilon={epsilon:e}"),
            Op::ArgReduce { axis, keep_dims, .. } => write!(f, " axis={axis} keep_dims={keep_dims}"),
            Op::CumSum {
                axis,
                exclusive,
                reverse,
            } => write!(f, " axis={axis} exclusive={exclusive} reverse={reverse}"),
            Op::TopK { k, axis, largest } => write!(f, " k={k} axis={axis} largest={largest}"),
            Op::UpsampleNearest { scales } => write!(f, " scales={scales:?}"),
            Op::ResizeBilinear { size, sampling } => write!(f, " size={size:?} sampling={}", sampling.name()),
            Op::DepthToSpace { block, order } => write!(f, " block={block} order={order:?}"),
            Op::SpaceToDepth { block } => write!(f, " block={block}"),
            Op::Lstm(a) => write!(f, "{a}"),
            Op::Gru(a) => write!(f, "{a}"),
            Op::Rnn(a) => write!(f, "{a}"),
            Op::While(a) => write!(f, "{a}"),
            Op::ScatterNd { mode } => write!(f, " mode={mode}"),
            Op::ScatterAlongAxis { axis, mode } => write!(f, " axis={axis} mode={mode}"),
            Op::Gemm {
                alpha,
                beta,
                trans_a,
                trans_b,
            } => {
                write!(f, " alpha={alpha} beta={beta} trans_a={trans_a} trans_b={trans_b}")
            }
            Op::Relu
            | Op::Relu6
            | Op::Sigmoid
            | Op::Binary(_)
            | Op::Linear
            | Op::Identity
            | Op::HardSwish
            | Op::Compare(_)
            | Op::Logical(_)
            | Op::Not
            | Op::Select
            | Op::If(_)
            | Op::ScaledDotProductAttention => Ok(()),
        }
    }
}
