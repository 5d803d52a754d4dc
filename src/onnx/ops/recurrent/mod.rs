//! Recurrent layers: LSTM, GRU and RNN.
//!
//! An ONNX node is read once into a [`Layer`]: the input made time-major (`layout = 1` is
//! transposed), each direction's weights, biases, peepholes and initial states taken apart,
//! the activation list resolved with its parameters. The layer is then built one of two ways:
//!
//! - [`native`]: MIL's own `lstm`, `gru` or `rnn` op (gates reordered and the two ONNX biases
//!   added at compile time), when MIL computes exactly what ONNX asks;
//! - [`unroll`]: one small graph of primitive ops per time step, for the variants MIL cannot
//!   express (listed in [`native::obstacle`]).
//!
//! Both return ONNX's outputs in layout 0 (`Y [seq, directions, batch, hidden]`, `Y_h` and
//! `Y_c [directions, batch, hidden]`); [`finish`] transposes them for `layout = 1`.

mod native;
mod unroll;

use super::{Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{Op, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[("LSTM", lstm), ("GRU", gru), ("RNN", rnn)];

fn lstm(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let input_forget = cx.attr_int("input_forget", 0)? != 0;
    import(cx, Cell::Lstm { input_forget })
}

fn gru(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let linear_before_reset = cx.attr_int("linear_before_reset", 0)? != 0;
    import(cx, Cell::Gru { linear_before_reset })
}

fn rnn(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    import(cx, Cell::Rnn)
}

fn import(cx: &mut NodeCx, cell: Cell) -> Result<Vec<ValueId>, String> {
    let layer = Layer::read(cx, cell)?;
    let outputs = match native::obstacle(cx, &layer) {
        None => native::build(cx, &layer)?,
        Some(_) => unroll::build(cx, &layer)?,
    };
    finish(cx, &layer, outputs)
}

/// The recurrent cell and its ONNX options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    /// `input_forget`: the forget gate is `1 - i` (coupled gates).
    Lstm {
        input_forget: bool,
    },
    /// `linear_before_reset`: the reset gate scales `R_h·h + Rb_h` instead of `h`.
    Gru {
        linear_before_reset: bool,
    },
    Rnn,
}

impl Cell {
    /// Gate matrices stacked in `W` and `R`.
    fn gates(self) -> usize {
        match self {
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }

    /// ONNX's default activation list for one direction (f, g, h).
    fn default_activations(self) -> &'static [Activation] {
        match self {
            Cell::Lstm { .. } => &[Activation::Sigmoid, Activation::Tanh, Activation::Tanh],
            Cell::Gru { .. } => &[Activation::Sigmoid, Activation::Tanh],
            Cell::Rnn => &[Activation::Tanh],
        }
    }
}

/// ONNX's activation functions for recurrent layers, parameters resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Activation {
    Relu,
    Tanh,
    Sigmoid,
    /// `alpha·x + beta`.
    Affine {
        alpha: f32,
        beta: f32,
    },
    LeakyRelu {
        alpha: f32,
    },
    /// `x` where `x > alpha`, else 0.
    ThresholdedRelu {
        alpha: f32,
    },
    /// `alpha·tanh(beta·x)`.
    ScaledTanh {
        alpha: f32,
        beta: f32,
    },
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    Elu {
        alpha: f32,
    },
    /// `x / (1 + |x|)`.
    Softsign,
    Softplus,
}

impl Activation {
    /// Parse the activation `name`, taking its parameters from the front of `alphas` and
    /// `betas` (each function consumes only the parameters it has, as onnxruntime reads the
    /// lists). Missing parameters take the defaults of the ONNX operator of the same name;
    /// where ONNX and onnxruntime disagree or ONNX has none, they must be given.
    fn parse(
        name: &str,
        alphas: &mut impl Iterator<Item = f32>,
        betas: &mut impl Iterator<Item = f32>,
    ) -> Result<Activation, String> {
        let param = |list: &mut dyn Iterator<Item = f32>, what: &str, default: Option<f32>| {
            list.next()
                .or(default)
                .ok_or_else(|| format!("activation {name} needs an activation_{what} value"))
        };
        Ok(match name.to_ascii_lowercase().as_str() {
            "relu" => Activation::Relu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "affine" => Activation::Affine {
                alpha: param(alphas, "alpha", None)?,
                beta: param(betas, "beta", None)?,
            },
            "leakyrelu" => Activation::LeakyRelu {
                alpha: param(alphas, "alpha", Some(0.01))?,
            },
            // ONNX's ThresholdedRelu defaults to 1, onnxruntime's recurrent layers to 0.
            "thresholdedrelu" => Activation::ThresholdedRelu {
                alpha: param(alphas, "alpha", None)?,
            },
            "scaledtanh" => Activation::ScaledTanh {
                alpha: param(alphas, "alpha", None)?,
                beta: param(betas, "beta", None)?,
            },
            "hardsigmoid" => Activation::HardSigmoid {
                alpha: param(alphas, "alpha", Some(0.2))?,
                beta: param(betas, "beta", Some(0.5))?,
            },
            "elu" => Activation::Elu {
                alpha: param(alphas, "alpha", Some(1.0))?,
            },
            "softsign" => Activation::Softsign,
            "softplus" => Activation::Softplus,
            _ => return Err(format!("unknown activation {name:?}")),
        })
    }
}

/// Which way one direction reads the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sweep {
    Forward,
    Reverse,
}

impl Sweep {
    /// The suffix of the names of this direction's values.
    fn tag(self) -> &'static str {
        match self {
            Sweep::Forward => "fwd",
            Sweep::Reverse => "bwd",
        }
    }
}

/// One direction's operands, without ONNX's direction axis.
struct Direction {
    sweep: Sweep,
    /// `[gates·H, I]`, gates in ONNX order.
    w: ValueId,
    /// `[gates·H, H]`.
    r: ValueId,
    /// The input and recurrent biases, `[gates·H]` each (absent: zero).
    wb: Option<ValueId>,
    rb: Option<ValueId>,
    /// LSTM peepholes `[3H]` (input, output, forget).
    p: Option<ValueId>,
    /// `[1, b, H]` (absent: zero).
    initial_h: Option<ValueId>,
    initial_c: Option<ValueId>,
    /// f, g(, h) of this direction.
    activations: Vec<Activation>,
}

/// An ONNX recurrent node, read and normalised.
struct Layer {
    cell: Cell,
    hidden: usize,
    seq: usize,
    batch: usize,
    dtype: DType,
    /// `[seq, batch, input]`.
    x: ValueId,
    /// One entry, or two (forward, reverse) for a bidirectional layer.
    directions: Vec<Direction>,
    /// `initial_h` and `initial_c` of all directions, `[directions, batch, hidden]`.
    initial_states: [Option<ValueId>; 2],
    /// Bound on every activation's input, `[-clip, clip]`.
    clip: Option<f32>,
    /// The sequence lengths `[batch]`, when some may be shorter than `seq` (int32).
    lengths: Option<ValueId>,
    /// `layout = 1`: batch-major input, states and outputs.
    batch_major: bool,
    /// Which of Y, Y_h, Y_c the node asks for.
    wants_y: bool,
    wants_h: bool,
    wants_c: bool,
}

/// ONNX's outputs in layout 0, those asked for.
struct Outputs {
    /// `[seq, directions, batch, hidden]`.
    y: Option<ValueId>,
    /// `[directions, batch, hidden]`.
    h: Option<ValueId>,
    c: Option<ValueId>,
}

/// One direction's results: `y` `[seq, batch, hidden]` in time order (if asked for), the
/// final states `[1, batch, hidden]`.
struct DirectionOutputs {
    y: Option<ValueId>,
    h: ValueId,
    c: Option<ValueId>,
}

impl Layer {
    fn read(cx: &mut NodeCx, cell: Cell) -> Result<Layer, String> {
        let x = cx.required_input(0)?;
        let x_ty = cx.ty(x).clone();
        if !x_ty.dtype.is_float() || x_ty.rank() != 3 {
            return Err(format!("X {x_ty} must be a float tensor of rank 3"));
        }
        let batch_major = match cx.attr_int("layout", 0)? {
            0 => false,
            1 => true,
            other => return Err(format!("layout {other} is not 0 or 1")),
        };
        let x = if batch_major {
            cx.add_step(Op::Transpose { perm: vec![1, 0, 2] }, vec![x], "time_major")?
        } else {
            x
        };
        let (seq, batch, input) = (x_ty.shape[0], x_ty.shape[1], x_ty.shape[2]);
        let (seq, batch) = if batch_major { (batch, seq) } else { (seq, batch) };
        let sweeps = match cx.attr_string("direction", "forward")?.as_str() {
            "forward" => vec![Sweep::Forward],
            "reverse" => vec![Sweep::Reverse],
            "bidirectional" => vec![Sweep::Forward, Sweep::Reverse],
            other => return Err(format!("direction {other:?} is not forward, reverse or bidirectional")),
        };
        let d = sweeps.len();
        let gates = cell.gates();

        let w = cx.required_input(1)?;
        let r = cx.required_input(2)?;
        let r_ty = cx.ty(r).clone();
        let hidden = match cx.attr_int("hidden_size", 0)? {
            0 => r_ty.shape.get(2).copied().unwrap_or(0),
            h => usize::try_from(h).map_err(|_| format!("hidden_size {h} must be positive"))?,
        };
        if hidden == 0 {
            return Err("hidden_size must be positive".into());
        }
        let gh = gates * hidden;
        let expect = |cx: &NodeCx, v: ValueId, what: &str, shape: &[usize]| -> Result<(), String> {
            let ty = cx.ty(v);
            if ty.shape != shape || ty.dtype != x_ty.dtype {
                return Err(format!("{what} {ty} must be {}{shape:?}", x_ty.dtype));
            }
            Ok(())
        };
        expect(cx, w, "W", &[d, gh, input])?;
        expect(cx, r, "R", &[d, gh, hidden])?;
        let b = cx.input(3);
        if let Some(b) = b {
            expect(cx, b, "B", &[d, 2 * gh])?;
        }
        let lengths = read_lengths(cx, seq, batch)?;
        let state_shape = if batch_major {
            [batch, d, hidden]
        } else {
            [d, batch, hidden]
        };
        let is_lstm = matches!(cell, Cell::Lstm { .. });
        let mut states = [None, None];
        for (slot, index, what) in [(0, 5, "initial_h"), (1, 6, "initial_c")] {
            let Some(v) = cx.input(index).filter(|_| slot == 0 || is_lstm) else {
                continue;
            };
            expect(cx, v, what, &state_shape)?;
            states[slot] = Some(if batch_major {
                cx.add_step(Op::Transpose { perm: vec![1, 0, 2] }, vec![v], &format!("{what}_d"))?
            } else {
                v
            });
        }
        let p = cx.input(7).filter(|_| is_lstm);
        if let Some(p) = p {
            expect(cx, p, "P", &[d, 3 * hidden])?;
        }
        let activations = read_activations(cx, cell, d)?;
        let clip = if cx.has_attr("clip") {
            let clip = cx.attr_float("clip", 0.0)?;
            if clip.is_nan() || clip <= 0.0 {
                return Err(format!("clip {clip} must be positive"));
            }
            Some(clip)
        } else {
            None
        };

        let mut directions = Vec::with_capacity(d);
        let per_direction = activations.len() / d;
        for (index, (&sweep, activations)) in sweeps.iter().zip(activations.chunks(per_direction)).enumerate() {
            let tag = sweep.tag();
            let mut part = |v: ValueId, what: &str, columns: Option<usize>, shape: Vec<usize>| {
                take_direction(cx, v, index, columns, shape, &format!("{what}_{tag}"))
            };
            let w = part(w, "w", None, vec![gh, input])?;
            let r = part(r, "r", None, vec![gh, hidden])?;
            let (wb, rb) = match b {
                Some(b) => (
                    Some(part(b, "wb", Some(0), vec![gh])?),
                    Some(part(b, "rb", Some(gh), vec![gh])?),
                ),
                None => (None, None),
            };
            let p = p.map(|p| part(p, "p", None, vec![3 * hidden])).transpose()?;
            let initial_h = states[0]
                .map(|h| part(h, "h0", None, vec![1, batch, hidden]))
                .transpose()?;
            let initial_c = states[1]
                .map(|c| part(c, "c0", None, vec![1, batch, hidden]))
                .transpose()?;
            directions.push(Direction {
                sweep,
                w,
                r,
                wb,
                rb,
                p,
                initial_h,
                initial_c,
                activations: activations.to_vec(),
            });
        }
        Ok(Layer {
            cell,
            hidden,
            seq,
            batch,
            dtype: x_ty.dtype,
            x,
            directions,
            initial_states: states,
            clip,
            lengths,
            batch_major,
            wants_y: cx.has_output(0),
            wants_h: cx.has_output(1),
            wants_c: cx.has_output(2) && matches!(cell, Cell::Lstm { .. }),
        })
    }

    /// A constant of the layer's float type, `value` everywhere.
    fn splat(&self, shape: Vec<usize>, value: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, &vec![value; n]).cast(self.dtype)
    }
}

/// `sequence_lens`: `None` when absent or when every length is the full sequence.
fn read_lengths(cx: &mut NodeCx, seq: usize, batch: usize) -> Result<Option<ValueId>, String> {
    let Some(lengths) = cx.input(4) else {
        return Ok(None);
    };
    let ty = cx.ty(lengths).clone();
    if !matches!(ty.dtype, DType::I32 | DType::I64) || ty.shape != [batch] {
        return Err(format!("sequence_lens {ty} must be an int32 tensor [{batch}]"));
    }
    let Some(values) = cx.const_input(4).map(Tensor::to_i64_vec) else {
        return Ok(Some(lengths));
    };
    if let Some(bad) = values.iter().find(|&&l| l < 1 || l > seq as i64) {
        return Err(format!("sequence length {bad} is outside 1..={seq}"));
    }
    Ok(values.iter().any(|&l| l != seq as i64).then_some(lengths))
}

/// The activation list of every direction (`activations` holds one list per direction, in
/// order), with their parameters.
fn read_activations(cx: &NodeCx, cell: Cell, directions: usize) -> Result<Vec<Activation>, String> {
    let per_direction = cell.default_activations().len();
    let Some(names) = cx.attr_strings("activations")? else {
        return Ok(cell.default_activations().repeat(directions));
    };
    if names.len() != per_direction * directions {
        return Err(format!(
            "activations {names:?} must list {} functions ({per_direction} per direction)",
            per_direction * directions
        ));
    }
    let mut alphas = cx.attr_floats("activation_alpha")?.unwrap_or_default().into_iter();
    let mut betas = cx.attr_floats("activation_beta")?.unwrap_or_default().into_iter();
    names
        .iter()
        .map(|name| Activation::parse(name, &mut alphas, &mut betas))
        .collect()
}

/// Direction `index` of `v` (`[directions, ...]`), reshaped to `shape`; with `columns`, only
/// the elements `columns..` of its second axis that `shape` holds (a bias out of `B`).
/// Constant operands fold on the spot.
fn take_direction(
    cx: &mut NodeCx,
    v: ValueId,
    index: usize,
    columns: Option<usize>,
    shape: Vec<usize>,
    suffix: &str,
) -> Result<ValueId, String> {
    let ty = cx.ty(v).clone();
    let sliced = if ty.shape[0] == 1 && columns.is_none() {
        v
    } else {
        let mut axes: Vec<SliceAxis> = ty.shape.iter().map(|&dim| SliceAxis::full(dim)).collect();
        axes[0] = SliceAxis {
            begin: index,
            end: Some(index + 1),
            stride: 1,
        };
        if let Some(begin) = columns {
            let width = shape.iter().product::<usize>();
            axes[1] = SliceAxis {
                begin,
                end: Some(begin + width),
                stride: 1,
            };
        }
        cx.add_step(Op::Slice { axes }, vec![v], &format!("{suffix}_slice"))?
    };
    if cx.ty(sliced).shape == shape {
        return Ok(sliced);
    }
    cx.add_step(Op::Reshape { shape }, vec![sliced], suffix)
}

/// Stack the directions' results into ONNX's layout-0 outputs.
fn combine(cx: &mut NodeCx, layer: &Layer, results: Vec<DirectionOutputs>) -> Result<Outputs, String> {
    let (seq, batch, hidden) = (layer.seq, layer.batch, layer.hidden);
    let mut stack = |values: Vec<ValueId>, shape: Vec<usize>, axis: usize, suffix: &str| -> Result<ValueId, String> {
        let parts = values
            .into_iter()
            .enumerate()
            .map(|(d, v)| cx.add_step(Op::Reshape { shape: shape.clone() }, vec![v], &format!("{suffix}{d}")))
            .collect::<Result<Vec<_>, _>>()?;
        match parts.as_slice() {
            [one] => Ok(*one),
            _ => cx.add_step(Op::Concat { axis }, parts, suffix),
        }
    };
    let y = match results.iter().map(|r| r.y).collect::<Option<Vec<_>>>() {
        Some(ys) if layer.wants_y => Some(stack(ys, vec![seq, 1, batch, hidden], 1, "y")?),
        _ => None,
    };
    let h = match layer.wants_h {
        true => Some(stack(
            results.iter().map(|r| r.h).collect(),
            vec![1, batch, hidden],
            0,
            "h",
        )?),
        false => None,
    };
    let c = match results.iter().map(|r| r.c).collect::<Option<Vec<_>>>() {
        Some(cs) if layer.wants_c => Some(stack(cs, vec![1, batch, hidden], 0, "c")?),
        _ => None,
    };
    Ok(Outputs { y, h, c })
}

/// Publish the outputs under the node's names, batch-major for `layout = 1`.
fn finish(cx: &mut NodeCx, layer: &Layer, outputs: Outputs) -> Result<Vec<ValueId>, String> {
    let values = [outputs.y, outputs.h, outputs.c];
    let mut published = Vec::new();
    let count = cx.node.output.len();
    for (index, value) in values.into_iter().enumerate().take(count) {
        if !cx.has_output(index) {
            // An omitted output: the slot only keeps the positions of the later ones.
            published.push(layer.x);
            continue;
        }
        let value = value.ok_or_else(|| format!("output {index} is not computed"))?;
        let op = match (layer.batch_major, index) {
            (false, _) => Op::Identity,
            (true, 0) => Op::Transpose { perm: vec![2, 0, 1, 3] },
            (true, _) => Op::Transpose { perm: vec![1, 0, 2] },
        };
        published.push(cx.add_output(index, op, vec![value])?);
    }
    Ok(published)
}
