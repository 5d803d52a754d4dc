//! Layers MIL cannot express, unrolled: the input projection `X·Wᵀ + b` of every time step is
//! one matmul, then each step is a handful of primitive ops (a matmul with `R`, gate slices,
//! the activations, the state update), with ONNX's exact semantics as onnxruntime computes
//! them:
//!
//! - `clip` bounds every activation's input (peepholes and biases included);
//! - LSTM peepholes add `P_i⊙c_{t-1}`, `P_f⊙c_{t-1}` and `P_o⊙c_t`; `input_forget` makes the
//!   forget gate `1 - i`;
//! - GRU `linear_before_reset` computes `r⊙(R_h·h + Rb_h)`, otherwise `R_h·(r⊙h)`;
//! - with `sequence_lens`, a sequence whose length is over keeps its state and outputs zeros
//!   (a reverse direction starts at its own last element).
//!
//! The program grows with the sequence, so at most [`MAX_UNROLLED_STEPS`] steps are unrolled.

use super::{combine, Activation, Cell, Direction, DirectionOutputs, Layer, Outputs, Sweep};
use crate::onnx::ops::NodeCx;
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{BinaryOp, CompareOp, Op, SliceAxis, UnaryOp};

/// The most time steps (summed over directions) one node may unroll into.
pub const MAX_UNROLLED_STEPS: usize = 4096;

pub(super) fn build(cx: &mut NodeCx, layer: &Layer) -> Result<Outputs, String> {
    let steps = layer.seq * layer.directions.len();
    if steps > MAX_UNROLLED_STEPS {
        let why = super::native::obstacle(cx, layer).unwrap_or_default();
        return Err(format!(
            "this layer needs unrolling ({why}), and its {steps} steps exceed the limit of {MAX_UNROLLED_STEPS}"
        ));
    }
    let results = layer
        .directions
        .iter()
        .map(|direction| Unroller::new(cx, layer, direction)?.run())
        .collect::<Result<Vec<_>, _>>()?;
    combine(cx, layer, results)
}

/// The ops of one direction, named `<node>_<direction>_...`.
struct Unroller<'c, 'a, 'l> {
    cx: &'c mut NodeCx<'a>,
    layer: &'l Layer,
    direction: &'l Direction,
    tag: &'static str,
    /// `X·Wᵀ + b`, `[seq, batch, gates·H]`.
    projected: ValueId,
    /// The recurrent weight as the matmul reads it, `[gates·H, H]` (GRU without
    /// `linear_before_reset`: the update and reset gates only).
    recurrent: ValueId,
    /// GRU without `linear_before_reset`: `R_h` `[H, H]`. With it: `Rb_h` `[H]`, if any.
    gru_extra: Option<ValueId>,
    /// LSTM peepholes `[H]` each: input, output, forget.
    peepholes: Option<[ValueId; 3]>,
    one: ValueId,
}

impl<'c, 'a, 'l> Unroller<'c, 'a, 'l> {
    fn new(cx: &'c mut NodeCx<'a>, layer: &'l Layer, direction: &'l Direction) -> Result<Self, String> {
        let tag = direction.sweep.tag();
        let (hidden, gates) = (layer.hidden, layer.cell.gates());
        let lbr = matches!(
            layer.cell,
            Cell::Gru {
                linear_before_reset: true
            }
        );
        let one = cx.add_const_step(layer.splat(Vec::new(), 1.0), &format!("{tag}_one"));
        let mut u = Unroller {
            cx,
            layer,
            direction,
            tag,
            projected: layer.x,
            recurrent: direction.r,
            gru_extra: None,
            peepholes: None,
            one,
        };
        // The input projection carries both biases, except that GRU's `Rb_h` stays inside the
        // reset product when `linear_before_reset` is set.
        let bias = match (direction.wb, direction.rb) {
            (Some(wb), Some(rb)) if lbr => {
                let rb_zr = u.slice(rb, 0, 0, 2 * hidden, "rb_zr")?;
                let zeros =
                    u.cx.add_const_step(layer.splat(vec![hidden], 0.0), &format!("{tag}_rb_h_zero"));
                let rb_input = u.op(Op::Concat { axis: 0 }, vec![rb_zr, zeros], "rb_input")?;
                u.gru_extra = Some(u.slice(rb, 0, 2 * hidden, 3 * hidden, "rb_h")?);
                Some(u.binary(BinaryOp::Add, wb, rb_input, "bias")?)
            }
            (Some(wb), Some(rb)) => Some(u.binary(BinaryOp::Add, wb, rb, "bias")?),
            _ => None,
        };
        let product = u.matmul(layer.x, direction.w, "projected_x")?;
        u.projected = match bias {
            Some(b) => u.binary(BinaryOp::Add, product, b, "projected")?,
            None => product,
        };
        if matches!(layer.cell, Cell::Gru { .. }) && !lbr {
            u.gru_extra = Some(u.slice(direction.r, 0, 2 * hidden, 3 * hidden, "r_h")?);
            u.recurrent = u.slice(direction.r, 0, 0, 2 * hidden, "r_zr")?;
        }
        if let Some(p) = direction.p {
            let mut gate = |k: usize, name: &str| u.slice(p, 0, k * hidden, (k + 1) * hidden, name);
            let peepholes = [gate(0, "p_i")?, gate(1, "p_o")?, gate(2, "p_f")?];
            u.peepholes = Some(peepholes);
        }
        debug_assert_eq!(u.cx.ty(u.projected).shape.last(), Some(&(gates * hidden)));
        Ok(u)
    }

    fn run(mut self) -> Result<DirectionOutputs, String> {
        let (seq, batch, hidden) = (self.layer.seq, self.layer.batch, self.layer.hidden);
        let state_shape = vec![1, batch, hidden];
        let zero_state = self.layer.splat(state_shape.clone(), 0.0);
        let mut h = match self.direction.initial_h {
            Some(v) => v,
            None => self.cx.add_const_step(zero_state.clone(), &format!("{}_h0", self.tag)),
        };
        let is_lstm = matches!(self.layer.cell, Cell::Lstm { .. });
        let mut c = match (is_lstm, self.direction.initial_c) {
            (false, _) => None,
            (true, Some(v)) => Some(v),
            (true, None) => Some(self.cx.add_const_step(zero_state.clone(), &format!("{}_c0", self.tag))),
        };
        let zeros = self.cx.add_const_step(zero_state, &format!("{}_zeros", self.tag));
        let times: Vec<usize> = match self.direction.sweep {
            Sweep::Forward => (0..seq).collect(),
            Sweep::Reverse => (0..seq).rev().collect(),
        };
        let mut ys = vec![None; seq];
        for t in times {
            let x_t = self.slice(self.projected, 0, t, t + 1, &format!("t{t}_x"))?;
            let (h_new, c_new) = match self.layer.cell {
                Cell::Lstm { input_forget } => {
                    let (h_new, c_new) = self.lstm_step(t, x_t, h, c.unwrap_or(zeros), input_forget)?;
                    (h_new, Some(c_new))
                }
                Cell::Gru { linear_before_reset } => (self.gru_step(t, x_t, h, linear_before_reset)?, None),
                Cell::Rnn => (self.rnn_step(t, x_t, h)?, None),
            };
            match self.mask(t)? {
                // Lengths over: keep the state, output zeros.
                Some(live) => {
                    h = self.op(Op::Select, vec![live, h_new, h], &format!("t{t}_h_kept"))?;
                    if let (Some(new), Some(old)) = (c_new, c) {
                        c = Some(self.op(Op::Select, vec![live, new, old], &format!("t{t}_c_kept"))?);
                    }
                    if self.layer.wants_y {
                        ys[t] = Some(self.op(Op::Select, vec![live, h_new, zeros], &format!("t{t}_y"))?);
                    }
                }
                None => {
                    h = h_new;
                    c = c_new;
                    ys[t] = Some(h_new);
                }
            }
        }
        let y = match self.layer.wants_y {
            true => {
                let steps: Vec<ValueId> = ys.into_iter().flatten().collect();
                Some(self.op(Op::Concat { axis: 0 }, steps, "y")?)
            }
            false => None,
        };
        debug_assert!(y.is_none_or(|y| self.cx.ty(y).shape == [seq, batch, hidden]));
        Ok(DirectionOutputs { y, h, c })
    }

    /// `[1, b, 1]`: whether each sequence is still running at time `t`, when lengths vary.
    fn mask(&mut self, t: usize) -> Result<Option<ValueId>, String> {
        let Some(lengths) = self.layer.lengths else {
            return Ok(None);
        };
        let dtype = self.cx.ty(lengths).dtype;
        let time = Tensor::from_i64(Vec::<usize>::new(), &[t as i64]).cast(dtype);
        let time = self.cx.add_const_step(time, &format!("{}_t{t}_time", self.tag));
        let live = self.op(
            Op::Compare(CompareOp::Greater),
            vec![lengths, time],
            &format!("t{t}_live"),
        )?;
        let shape = vec![1, self.layer.batch, 1];
        Ok(Some(self.op(
            Op::Reshape { shape },
            vec![live],
            &format!("t{t}_mask"),
        )?))
    }

    fn lstm_step(
        &mut self,
        t: usize,
        x_t: ValueId,
        h: ValueId,
        c: ValueId,
        input_forget: bool,
    ) -> Result<(ValueId, ValueId), String> {
        let hidden = self.layer.hidden;
        let recurrent = self.matmul(h, self.recurrent, &format!("t{t}_rh"))?;
        let gates = self.binary(BinaryOp::Add, x_t, recurrent, &format!("t{t}_gates"))?;
        let gate = |u: &mut Self, k: usize, name: &str| u.slice(gates, 2, k * hidden, (k + 1) * hidden, name);
        // ONNX order: input, output, forget, cell.
        let mut i = gate(self, 0, &format!("t{t}_i_in"))?;
        let mut o = gate(self, 1, &format!("t{t}_o_in"))?;
        let mut f = gate(self, 2, &format!("t{t}_f_in"))?;
        let z = gate(self, 3, &format!("t{t}_z_in"))?;
        let [f_act, g_act, h_act] = [0, 1, 2].map(|k| self.direction.activations[k]);
        if let Some([p_i, _, p_f]) = self.peepholes {
            i = self.peephole(i, p_i, c, &format!("t{t}_i_peep"))?;
            f = self.peephole(f, p_f, c, &format!("t{t}_f_peep"))?;
        }
        let i = self.activate(f_act, i, &format!("t{t}_i"))?;
        let f = match input_forget {
            true => self.binary(BinaryOp::Sub, self.one, i, &format!("t{t}_f"))?,
            false => self.activate(f_act, f, &format!("t{t}_f"))?,
        };
        let z = self.activate(g_act, z, &format!("t{t}_z"))?;
        let kept = self.binary(BinaryOp::Mul, f, c, &format!("t{t}_c_kept_part"))?;
        let added = self.binary(BinaryOp::Mul, i, z, &format!("t{t}_c_new_part"))?;
        let c_new = self.binary(BinaryOp::Add, kept, added, &format!("t{t}_c"))?;
        if let Some([_, p_o, _]) = self.peepholes {
            o = self.peephole(o, p_o, c_new, &format!("t{t}_o_peep"))?;
        }
        let o = self.activate(f_act, o, &format!("t{t}_o"))?;
        let squashed = self.activate(h_act, c_new, &format!("t{t}_c_act"))?;
        let h_new = self.binary(BinaryOp::Mul, o, squashed, &format!("t{t}_h"))?;
        Ok((h_new, c_new))
    }

    fn gru_step(&mut self, t: usize, x_t: ValueId, h: ValueId, linear_before_reset: bool) -> Result<ValueId, String> {
        let hidden = self.layer.hidden;
        let [f_act, g_act] = [0, 1].map(|k| self.direction.activations[k]);
        let recurrent = self.matmul(h, self.recurrent, &format!("t{t}_rh"))?;
        let x_zr = self.slice(x_t, 2, 0, 2 * hidden, &format!("t{t}_x_zr"))?;
        let x_h = self.slice(x_t, 2, 2 * hidden, 3 * hidden, &format!("t{t}_x_h"))?;
        let r_zr = self.slice(recurrent, 2, 0, 2 * hidden, &format!("t{t}_rh_zr"))?;
        let zr = self.binary(BinaryOp::Add, x_zr, r_zr, &format!("t{t}_zr_in"))?;
        // ONNX order: update, reset, hidden.
        let z = self.slice(zr, 2, 0, hidden, &format!("t{t}_z_in"))?;
        let r = self.slice(zr, 2, hidden, 2 * hidden, &format!("t{t}_r_in"))?;
        let z = self.activate(f_act, z, &format!("t{t}_z"))?;
        let r = self.activate(f_act, r, &format!("t{t}_r"))?;
        let reset = if linear_before_reset {
            let mut rh = self.slice(recurrent, 2, 2 * hidden, 3 * hidden, &format!("t{t}_rh_h"))?;
            if let Some(rb_h) = self.gru_extra {
                rh = self.binary(BinaryOp::Add, rh, rb_h, &format!("t{t}_rh_h_b"))?;
            }
            self.binary(BinaryOp::Mul, r, rh, &format!("t{t}_reset"))?
        } else {
            let r_h = self.gru_extra.ok_or("GRU recurrent weight R_h missing")?;
            let scaled = self.binary(BinaryOp::Mul, r, h, &format!("t{t}_rh_scaled"))?;
            self.matmul(scaled, r_h, &format!("t{t}_reset"))?
        };
        let candidate = self.binary(BinaryOp::Add, x_h, reset, &format!("t{t}_n_in"))?;
        let n = self.activate(g_act, candidate, &format!("t{t}_n"))?;
        // (1 - z)⊙n + z⊙h = n + z⊙(h - n)
        let delta = self.binary(BinaryOp::Sub, h, n, &format!("t{t}_delta"))?;
        let moved = self.binary(BinaryOp::Mul, z, delta, &format!("t{t}_moved"))?;
        self.binary(BinaryOp::Add, n, moved, &format!("t{t}_h"))
    }

    fn rnn_step(&mut self, t: usize, x_t: ValueId, h: ValueId) -> Result<ValueId, String> {
        let recurrent = self.matmul(h, self.recurrent, &format!("t{t}_rh"))?;
        let sum = self.binary(BinaryOp::Add, x_t, recurrent, &format!("t{t}_in"))?;
        self.activate(self.direction.activations[0], sum, &format!("t{t}_h"))
    }

    /// `gate + p⊙c`.
    fn peephole(&mut self, gate: ValueId, p: ValueId, c: ValueId, name: &str) -> Result<ValueId, String> {
        let product = self.binary(BinaryOp::Mul, p, c, &format!("{name}_p"))?;
        self.binary(BinaryOp::Add, gate, product, name)
    }

    /// `activation(clip(x))`.
    fn activate(&mut self, activation: Activation, x: ValueId, name: &str) -> Result<ValueId, String> {
        let x = match self.layer.clip {
            Some(bound) => {
                let clip = Op::Clip {
                    min: Some(-bound),
                    max: Some(bound),
                };
                self.op(clip, vec![x], &format!("{name}_clipped"))?
            }
            None => x,
        };
        let scalar = |u: &mut Self, v: f32, suffix: &str| {
            u.cx.add_const_step(u.layer.splat(Vec::new(), v), &format!("{}_{name}_{suffix}", u.tag))
        };
        Ok(match activation {
            Activation::Relu => self.op(Op::Relu, vec![x], name)?,
            Activation::Tanh => self.op(Op::Unary(UnaryOp::Tanh), vec![x], name)?,
            Activation::Sigmoid => self.op(Op::Sigmoid, vec![x], name)?,
            Activation::HardSigmoid { alpha, beta } => self.op(Op::HardSigmoid { alpha, beta }, vec![x], name)?,
            Activation::LeakyRelu { alpha } => self.op(Op::Unary(UnaryOp::LeakyRelu { alpha }), vec![x], name)?,
            Activation::Elu { alpha } => self.op(Op::Unary(UnaryOp::Elu { alpha }), vec![x], name)?,
            Activation::Softplus => self.op(Op::Unary(UnaryOp::Softplus), vec![x], name)?,
            Activation::Affine { alpha, beta } => {
                let a = scalar(self, alpha, "alpha");
                let b = scalar(self, beta, "beta");
                let scaled = self.binary(BinaryOp::Mul, x, a, &format!("{name}_scaled"))?;
                self.binary(BinaryOp::Add, scaled, b, name)?
            }
            Activation::ScaledTanh { alpha, beta } => {
                let a = scalar(self, alpha, "alpha");
                let b = scalar(self, beta, "beta");
                let inner = self.binary(BinaryOp::Mul, x, b, &format!("{name}_inner"))?;
                let tanh = self.op(Op::Unary(UnaryOp::Tanh), vec![inner], &format!("{name}_tanh"))?;
                self.binary(BinaryOp::Mul, tanh, a, name)?
            }
            Activation::ThresholdedRelu { alpha } => {
                let a = scalar(self, alpha, "alpha");
                let zero = scalar(self, 0.0, "zero");
                let above = self.op(Op::Compare(CompareOp::Greater), vec![x, a], &format!("{name}_above"))?;
                self.op(Op::Select, vec![above, x, zero], name)?
            }
            Activation::Softsign => {
                let magnitude = self.op(Op::Unary(UnaryOp::Abs), vec![x], &format!("{name}_abs"))?;
                let denominator = self.binary(BinaryOp::Add, magnitude, self.one, &format!("{name}_den"))?;
                self.binary(BinaryOp::Div, x, denominator, name)?
            }
        })
    }

    fn op(&mut self, op: Op, inputs: Vec<ValueId>, name: &str) -> Result<ValueId, String> {
        self.cx.add_step(op, inputs, &format!("{}_{name}", self.tag))
    }

    fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId, name: &str) -> Result<ValueId, String> {
        self.op(Op::Binary(op), vec![a, b], name)
    }

    /// `a · wᵀ` (`w` is `[N, K]`).
    fn matmul(&mut self, a: ValueId, w: ValueId, name: &str) -> Result<ValueId, String> {
        let op = Op::MatMul {
            transpose_a: false,
            transpose_b: true,
        };
        self.op(op, vec![a, w], name)
    }

    /// Elements `begin..end` of `v` along `axis`.
    fn slice(&mut self, v: ValueId, axis: usize, begin: usize, end: usize, name: &str) -> Result<ValueId, String> {
        let mut axes: Vec<SliceAxis> = self.cx.ty(v).shape.iter().map(|&d| SliceAxis::full(d)).collect();
        axes[axis] = SliceAxis {
            begin,
            end: Some(end),
            stride: 1,
        };
        self.op(Op::Slice { axes }, vec![v], name)
    }
}
