//! The recurrent layers MIL has as single ops: `lstm`, `gru` and `rnn` (coremltools iOS15
//! `recurrent.py`, fp16 from iOS17). Attributes and operands follow MIL, not ONNX: time-major
//! `x` of shape `[seq, batch, input]`, states `[batch, directions·hidden]`, MIL's gate order,
//! one bias per gate (input and recurrent biases already added), and every operand explicit.
//!
//! What the `y` output holds follows what Core ML computes (coremltools' MIL op tests, which run
//! against Core ML): a `reverse` layer lists its states in processing order, so `y[0]` is the
//! state after reading the *last* time step; a bidirectional `lstm` instead concatenates the
//! backward states aligned with time, `y[t] = [forward_t, backward_t]`. With `output_sequence`
//! off, `y` is `[1, batch, directions·hidden]`: the final state of each direction.
//!
//! Variants MIL cannot express (ONNX's GRU with `linear_before_reset`, activations with
//! parameters, clip, coupled gates, ragged sequence lengths) never become these ops: the front
//! end unrolls them into primitive ops.

use super::InferError;
use crate::ir::TensorType;
use std::fmt;

/// Which way a layer reads its sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Reverse,
    /// Forward and reverse layers side by side (`lstm` only).
    Bidirectional,
}

impl Direction {
    /// The MIL `direction` string.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        }
    }

    pub fn count(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            _ => 1,
        }
    }
}

/// The gate and output activations every MIL recurrent op accepts and computes without
/// parameters. (MIL also names `hard_sigmoid`, `scaled_tanh` and `linear`, with fixed
/// parameters and differing spellings between ops; those variants are unrolled instead.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Sigmoid,
    Tanh,
    Relu,
}

impl Activation {
    /// The MIL activation string.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }

    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
        }
    }
}

/// MIL `lstm`. Inputs: `x [s, b, I]`, `initial_h [b, D·H]`, `initial_c [b, D·H]`,
/// `weight_ih [4H, I]`, `weight_hh [4H, H]`, `bias [4H]`, then `peephole [3H]` if `peephole`;
/// for a bidirectional layer the same four (or three) weights again for the backward direction.
/// Gates are ordered input, forget, output, cell (`ifoz`); peepholes input, forget, output.
/// Outputs: `y [s or 1, b, D·H]`, `h [b, D·H]`, `c [b, D·H]`.
///
/// `i = σ(Wᵢx + Rᵢh + bᵢ + pᵢ⊙c)`, `f = σ(W_f x + R_f h + b_f + p_f⊙c)`,
/// `z = g(W_z x + R_z h + b_z)`, `c' = f⊙c + i⊙z`, `o = σ(W_o x + R_o h + b_o + p_o⊙c')`,
/// `h' = o⊙act(c')`, with σ `recurrent_activation`, g `cell_activation`, act `activation`.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmAttrs {
    pub hidden: usize,
    pub direction: Direction,
    pub output_sequence: bool,
    pub recurrent_activation: Activation,
    pub cell_activation: Activation,
    pub activation: Activation,
    pub peephole: bool,
}

/// MIL `gru` (forward or reverse). Inputs: `x [s, b, I]`, `initial_h [b, H]`,
/// `weight_ih [3H, I]`, `weight_hh [3H, H]`, `bias [3H]`, gates ordered reset, output, update
/// (`roz`). Outputs: `y [s or 1, b, H]`, `h [b, H]`.
///
/// `r = σ(Wᵣx + Rᵣh + bᵣ)`, `z = σ(W_z x + R_z h + b_z)`, `o = act(W_o x + R_o(r⊙h) + b_o)`,
/// `h' = (1 − z)⊙o + z⊙h`: the reset gate applies to the state before the recurrent product
/// (ONNX's `linear_before_reset = 0`).
#[derive(Clone, Debug, PartialEq)]
pub struct GruAttrs {
    pub hidden: usize,
    pub direction: Direction,
    pub output_sequence: bool,
    pub recurrent_activation: Activation,
    pub activation: Activation,
}

/// MIL `rnn` (forward or reverse). Inputs: `x [s, b, I]`, `initial_h [b, H]`,
/// `weight_ih [H, I]`, `weight_hh [H, H]`, `bias [H]`. Outputs: `y [s or 1, b, H]`, `h [b, H]`.
/// `h' = act(W x + R h + b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnAttrs {
    pub hidden: usize,
    pub direction: Direction,
    pub output_sequence: bool,
    pub activation: Activation,
}

/// How a recurrent op's operands are laid out.
struct Operands {
    /// Gate matrices stacked in each weight.
    gates: usize,
    /// Initial states after `x` (h, or h and c).
    states: usize,
    peephole: bool,
}

/// The operands every recurrent op shares, checked: `x`, then the initial states, then per
/// direction `[gates·H, I]`, `[gates·H, H]`, `[gates·H]` and optionally the peephole `[3H]`.
/// Returns the `y` type and the state type.
fn infer_common(
    op: &str,
    inputs: &[&TensorType],
    hidden: usize,
    direction: Direction,
    output_sequence: bool,
    operands: Operands,
) -> Result<(TensorType, TensorType), InferError> {
    let Operands {
        gates,
        states,
        peephole,
    } = operands;
    let directions = direction.count();
    let per_direction = 3 + usize::from(peephole);
    let expected = 1 + states + per_direction * directions;
    if inputs.len() != expected {
        infer_bail!("{op} takes {expected} operands here, got {}", inputs.len());
    }
    let x = inputs[0];
    if !x.dtype.is_float() || x.rank() != 3 {
        infer_bail!("{op} input must be a float [seq, batch, input] tensor, got {x}");
    }
    if hidden == 0 {
        infer_bail!("{op} hidden size must be positive");
    }
    let (seq, batch, input) = (x.shape[0], x.shape[1], x.shape[2]);
    let state = TensorType::new(x.dtype, [batch, directions * hidden]);
    for s in &inputs[1..=states] {
        if **s != state {
            infer_bail!("{op} initial state {s} must be {state}");
        }
    }
    for d in 0..directions {
        let w = &inputs[1 + states + d * per_direction..][..per_direction];
        let mut wanted = vec![
            TensorType::new(x.dtype, [gates * hidden, input]),
            TensorType::new(x.dtype, [gates * hidden, hidden]),
            TensorType::new(x.dtype, [gates * hidden]),
        ];
        if peephole {
            wanted.push(TensorType::new(x.dtype, [3 * hidden]));
        }
        for (got, want) in w.iter().zip(&wanted) {
            if *got != want {
                infer_bail!("{op} weight {got} must be {want}");
            }
        }
    }
    let steps = if output_sequence { seq } else { 1 };
    let y = TensorType::new(x.dtype, [steps, batch, directions * hidden]);
    Ok((y, state))
}

impl LstmAttrs {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
        let operands = Operands {
            gates: 4,
            states: 2,
            peephole: self.peephole,
        };
        let (y, state) = infer_common(
            "lstm",
            inputs,
            self.hidden,
            self.direction,
            self.output_sequence,
            operands,
        )?;
        Ok(vec![y, state.clone(), state])
    }
}

impl GruAttrs {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
        if self.direction == Direction::Bidirectional {
            infer_bail!("gru is forward or reverse (a bidirectional layer is two ops)");
        }
        let operands = Operands {
            gates: 3,
            states: 1,
            peephole: false,
        };
        let (y, state) = infer_common(
            "gru",
            inputs,
            self.hidden,
            self.direction,
            self.output_sequence,
            operands,
        )?;
        Ok(vec![y, state])
    }
}

impl RnnAttrs {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
        if self.direction == Direction::Bidirectional {
            infer_bail!("rnn is forward or reverse (a bidirectional layer is two ops)");
        }
        let operands = Operands {
            gates: 1,
            states: 1,
            peephole: false,
        };
        let (y, state) = infer_common(
            "rnn",
            inputs,
            self.hidden,
            self.direction,
            self.output_sequence,
            operands,
        )?;
        Ok(vec![y, state])
    }
}

impl fmt::Display for LstmAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            " hidden={} direction={} output_sequence={} activations=[{},{},{}] peephole={}",
            self.hidden,
            self.direction.name(),
            self.output_sequence,
            self.recurrent_activation.name(),
            self.cell_activation.name(),
            self.activation.name(),
            self.peephole
        )
    }
}

impl fmt::Display for GruAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            " hidden={} direction={} output_sequence={} activations=[{},{}]",
            self.hidden,
            self.direction.name(),
            self.output_sequence,
            self.recurrent_activation.name(),
            self.activation.name()
        )
    }
}

impl fmt::Display for RnnAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            " hidden={} direction={} output_sequence={} activation={}",
            self.hidden,
            self.direction.name(),
            self.output_sequence,
            self.activation.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::DType;

    fn t(shape: &[usize]) -> TensorType {
        TensorType::new(DType::F32, shape.to_vec())
    }

    #[test]
    fn bidirectional_lstm_types() {
        let attrs = LstmAttrs {
            hidden: 3,
            direction: Direction::Bidirectional,
            output_sequence: true,
            recurrent_activation: Activation::Sigmoid,
            cell_activation: Activation::Tanh,
            activation: Activation::Tanh,
            peephole: true,
        };
        let (x, s) = (t(&[5, 2, 4]), t(&[2, 6]));
        let (w, r, b, p) = (t(&[12, 4]), t(&[12, 3]), t(&[12]), t(&[9]));
        let inputs = [&x, &s, &s, &w, &r, &b, &p, &w, &r, &b, &p];
        let out = attrs.infer(&inputs).unwrap();
        assert_eq!(out, vec![t(&[5, 2, 6]), t(&[2, 6]), t(&[2, 6])]);
        // A missing backward peephole is an arity error, a wrong weight a shape error.
        assert!(attrs.infer(&inputs[..10]).is_err());
        let bad = t(&[12, 5]);
        let inputs = [&x, &s, &s, &bad, &r, &b, &p, &w, &r, &b, &p];
        assert!(attrs.infer(&inputs).unwrap_err().0.contains("must be f32[12,4]"));
    }

    #[test]
    fn gru_last_state_only() {
        let attrs = GruAttrs {
            hidden: 2,
            direction: Direction::Reverse,
            output_sequence: false,
            recurrent_activation: Activation::Sigmoid,
            activation: Activation::Tanh,
        };
        let (x, s, w, r, b) = (t(&[7, 1, 3]), t(&[1, 2]), t(&[6, 3]), t(&[6, 2]), t(&[6]));
        let out = attrs.infer(&[&x, &s, &w, &r, &b]).unwrap();
        assert_eq!(out, vec![t(&[1, 1, 2]), t(&[1, 2])]);
        let bidirectional = GruAttrs {
            direction: Direction::Bidirectional,
            ..attrs
        };
        assert!(bidirectional.infer(&[&x, &s, &w, &r, &b]).is_err());
    }
}
