//! The recurrent layers `lstm`, `gru` and `rnn` (coremltools iOS15 `recurrent.py`; fp16 from
//! iOS17), computed as Core ML does according to coremltools' own op tests (`ops/tests/iOS14/
//! test_recurrent.py`, which run against Core ML):
//!
//! - `x` is `[seq, batch, input]`, states `[batch, directions·H]`; LSTM gates are stacked input,
//!   forget, output, cell (`ifoz`), peepholes input, forget, output; GRU gates reset, output,
//!   update (`roz`); `bias` is the sum of the input and recurrent biases.
//! - GRU: `o = act(W_o x + R_o(r⊙h) + b_o)`, `h' = (1 − z)⊙o + z⊙h`.
//! - LSTM `clip` bounds the new cell state `c'`, before the output gate's peephole reads it.
//! - `reverse` reads the sequence from its end and lists the states in that processing order;
//!   a bidirectional LSTM lists both directions aligned with time, `y[t] = [fwd_t, bwd_t]`.
//!   Without `output_sequence`, `y` holds each direction's final state.
//! - Activations take their standard parameters: `scaled_tanh` is `tanh`, `hard_sigmoid`
//!   (`sigmoid_hard` in `rnn`'s list) is `min(max(0.2x + 0.5, 0), 1)`, `linear` the identity.

use super::super::eval::OpCtx;
use super::super::tensor::{OpResult, Tensor};
use super::linalg::{gemm, Mat};
use super::OpFn;

pub(super) const OPS: &[(&str, OpFn)] = &[("lstm", lstm), ("gru", gru), ("rnn", rnn)];

type Activation = fn(f32) -> f32;

fn activation(ctx: &OpCtx, name: &str, default: &str) -> OpResult<Activation> {
    let which = ctx.string_or(name, default)?;
    Ok(match which.as_str() {
        "sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
        "tanh" | "scaled_tanh" => f32::tanh,
        "relu" => |x| x.max(0.0),
        "hard_sigmoid" | "sigmoid_hard" => |x| (0.2 * x + 0.5).clamp(0.0, 1.0),
        "linear" => |x| x,
        other => return Err(format!("{name} {other:?} is not a MIL activation")),
    })
}

/// The sequence and its sizes.
struct Input {
    data: Vec<f32>,
    seq: usize,
    batch: usize,
    size: usize,
}

impl Input {
    fn read(ctx: &OpCtx) -> OpResult<(Input, Tensor)> {
        let x = ctx.get("x")?;
        let [seq, batch, size] = <[usize; 3]>::try_from(x.shape.as_slice())
            .map_err(|_| format!("x must be [seq, batch, input], got {}", x.type_string()))?;
        let data = x.floats()?.to_vec();
        Ok((Input { data, seq, batch, size }, x))
    }

    /// The steps in the order a direction reads them.
    fn times(&self, reverse: bool) -> Vec<usize> {
        match reverse {
            false => (0..self.seq).collect(),
            true => (0..self.seq).rev().collect(),
        }
    }
}

/// One direction's weights: `[gates·H, I]`, `[gates·H, H]`, `[gates·H]`.
struct Weights {
    ih: Vec<f32>,
    hh: Vec<f32>,
    bias: Vec<f32>,
}

impl Weights {
    fn read(ctx: &OpCtx, suffix: &str, gates: usize, hidden: usize, input: usize) -> OpResult<Weights> {
        let tensor = |name: &str, shape: &[usize]| -> OpResult<Option<Vec<f32>>> {
            let key = format!("{name}{suffix}");
            match ctx.opt(&key)? {
                Some(t) if t.shape == shape => Ok(Some(t.floats()?.to_vec())),
                Some(t) => Err(format!("{key} is {}, expected {shape:?}", t.type_string())),
                None => Ok(None),
            }
        };
        let gh = gates * hidden;
        let missing = |name: &str| format!("required parameter {name}{suffix} is missing");
        Ok(Weights {
            ih: tensor("weight_ih", &[gh, input])?.ok_or_else(|| missing("weight_ih"))?,
            hh: tensor("weight_hh", &[gh, hidden])?.ok_or_else(|| missing("weight_hh"))?,
            bias: tensor("bias", &[gh])?.unwrap_or_else(|| vec![0.0; gh]),
        })
    }

    fn gates(&self) -> usize {
        self.bias.len()
    }

    /// `x_t·W_ihᵀ + bias` for every step: `[seq·batch, gates·H]`.
    fn project(&self, x: &Input) -> OpResult<Vec<f32>> {
        let (rows, n) = (x.seq * x.batch, self.gates());
        let mut out = vec![0.0; rows * n];
        gemm(
            rows,
            x.size,
            n,
            Mat::rows(&x.data, x.size),
            Mat::transposed(&self.ih, x.size),
            &mut out,
        )?;
        for row in out.chunks_mut(n.max(1)) {
            row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
        }
        Ok(out)
    }
}

/// `h·W_hhᵀ` restricted to the gate rows `rows` of `W_hh` (`[batch, rows.len()]`).
fn recurrent(hh: &[f32], h: &[f32], batch: usize, hidden: usize, rows: std::ops::Range<usize>) -> OpResult<Vec<f32>> {
    let n = rows.len();
    let mut out = vec![0.0; batch * n];
    let w = &hh[rows.start * hidden..rows.end * hidden];
    gemm(
        batch,
        hidden,
        n,
        Mat::rows(h, hidden),
        Mat::transposed(w, hidden),
        &mut out,
    )?;
    Ok(out)
}

/// The hidden size: `weight_hh` is `[gates·H, H]`.
fn hidden_size(ctx: &OpCtx) -> OpResult<usize> {
    let hh = ctx.get("weight_hh")?;
    match hh.shape.as_slice() {
        [_, h] if *h > 0 => Ok(*h),
        _ => Err(format!("weight_hh must be [gates·H, H], got {}", hh.type_string())),
    }
}

/// An initial state `[batch, directions·H]`, split per direction.
fn initial_state(ctx: &OpCtx, name: &str, batch: usize, hidden: usize, directions: usize) -> OpResult<Vec<Vec<f32>>> {
    let t = ctx.get(name)?;
    if t.shape != [batch, directions * hidden] {
        return Err(format!(
            "{name} is {}, expected [{batch}, {}]",
            t.type_string(),
            directions * hidden
        ));
    }
    let values = t.floats()?;
    Ok((0..directions)
        .map(|d| {
            values
                .chunks(directions * hidden)
                .flat_map(|row| &row[d * hidden..(d + 1) * hidden])
                .copied()
                .collect()
        })
        .collect())
}

/// What one direction produced: its states in processing order, and its final states.
struct Run {
    states: Vec<Vec<f32>>,
    h: Vec<f32>,
    c: Vec<f32>,
}

/// Assemble MIL's outputs from each direction's run: `y`, then the final states.
fn outputs(x: &Tensor, input: &Input, hidden: usize, output_sequence: bool, runs: &[Run], with_c: bool) -> Vec<Tensor> {
    let (seq, batch, d) = (input.seq, input.batch, runs.len());
    let width = d * hidden;
    // Row `b` of direction `k`'s state `s` goes to columns `k·H..` of row `b`.
    let interleave = |parts: &[&Vec<f32>]| -> Vec<f32> {
        let mut out = vec![0.0; batch * width];
        for (k, part) in parts.iter().enumerate() {
            for b in 0..batch {
                out[b * width + k * hidden..][..hidden].copy_from_slice(&part[b * hidden..][..hidden]);
            }
        }
        out
    };
    let y = if output_sequence {
        let mut y = Vec::with_capacity(seq * batch * width);
        for step in 0..seq {
            let parts: Vec<&Vec<f32>> = match runs {
                // A bidirectional layer aligns the backward states with time.
                [fwd, bwd] => vec![&fwd.states[step], &bwd.states[seq - 1 - step]],
                _ => runs.iter().map(|r| &r.states[step]).collect(),
            };
            y.extend(interleave(&parts));
        }
        Tensor::float(x.dtype, vec![seq, batch, width], y)
    } else {
        let finals: Vec<&Vec<f32>> = runs.iter().map(|r| &r.h).collect();
        Tensor::float(x.dtype, vec![1, batch, width], interleave(&finals))
    };
    let h: Vec<&Vec<f32>> = runs.iter().map(|r| &r.h).collect();
    let mut out = vec![y, Tensor::float(x.dtype, vec![batch, width], interleave(&h))];
    if with_c {
        let c: Vec<&Vec<f32>> = runs.iter().map(|r| &r.c).collect();
        out.push(Tensor::float(x.dtype, vec![batch, width], interleave(&c)));
    }
    out
}

fn direction(ctx: &OpCtx, allowed: &[&str]) -> OpResult<String> {
    let d = ctx.string_or("direction", "forward")?;
    if allowed.contains(&d.as_str()) {
        Ok(d)
    } else {
        Err(format!("direction {d:?} is not one of {allowed:?}"))
    }
}

fn lstm(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (input, x) = Input::read(ctx)?;
    let hidden = hidden_size(ctx)?;
    let bidirectional = direction(ctx, &["forward", "reverse", "bidirectional"])? == "bidirectional";
    let reverse = ctx.string_or("direction", "forward")? == "reverse";
    let d = if bidirectional { 2 } else { 1 };
    let recurrent_act = activation(ctx, "recurrent_activation", "sigmoid")?;
    let cell_act = activation(ctx, "cell_activation", "tanh")?;
    let output_act = activation(ctx, "activation", "tanh")?;
    let clip = match ctx.opt("clip")? {
        Some(_) => Some(ctx.float("clip")?),
        None => None,
    };
    let h0 = initial_state(ctx, "initial_h", input.batch, hidden, d)?;
    let c0 = initial_state(ctx, "initial_c", input.batch, hidden, d)?;
    let mut runs = Vec::with_capacity(d);
    for k in 0..d {
        let suffix = if k == 1 { "_back" } else { "" };
        let weights = Weights::read(ctx, suffix, 4, hidden, input.size)?;
        let peephole = match ctx.opt(&format!("peephole{suffix}"))? {
            Some(p) if p.shape == [3 * hidden] => p.floats()?.to_vec(),
            Some(p) => {
                return Err(format!(
                    "peephole{suffix} is {}, expected [{}]",
                    p.type_string(),
                    3 * hidden
                ))
            }
            None => vec![0.0; 3 * hidden],
        };
        let projected = weights.project(&input)?;
        let (batch, gh) = (input.batch, 4 * hidden);
        let (mut h, mut c) = (h0[k].clone(), c0[k].clone());
        let mut states = Vec::with_capacity(input.seq);
        for t in input.times(reverse || k == 1) {
            let rec = recurrent(&weights.hh, &h, batch, hidden, 0..gh)?;
            for b in 0..batch {
                let pre = |gate: usize, j: usize| {
                    projected[(t * batch + b) * gh + gate * hidden + j] + rec[b * gh + gate * hidden + j]
                };
                for j in 0..hidden {
                    let c_prev = c[b * hidden + j];
                    let i = recurrent_act(pre(0, j) + peephole[j] * c_prev);
                    let f = recurrent_act(pre(1, j) + peephole[hidden + j] * c_prev);
                    let z = cell_act(pre(3, j));
                    let mut c_new = f * c_prev + i * z;
                    if let Some(bound) = clip {
                        c_new = c_new.clamp(-bound, bound);
                    }
                    let o = recurrent_act(pre(2, j) + peephole[2 * hidden + j] * c_new);
                    c[b * hidden + j] = c_new;
                    h[b * hidden + j] = o * output_act(c_new);
                }
            }
            states.push(h.clone());
        }
        runs.push(Run { states, h, c });
    }
    let output_sequence = ctx.bool_or("output_sequence", false)?;
    Ok(outputs(&x, &input, hidden, output_sequence, &runs, true))
}

fn gru(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    if ctx.bool_or("reset_after", false)? || ctx.opt("input_bias")?.is_some() {
        return Err("iOS18 gru's reset_after and input_bias are not implemented".into());
    }
    let (input, x) = Input::read(ctx)?;
    let hidden = hidden_size(ctx)?;
    let reverse = direction(ctx, &["forward", "reverse"])? == "reverse";
    let recurrent_act = activation(ctx, "recurrent_activation", "sigmoid")?;
    let output_act = activation(ctx, "activation", "tanh")?;
    let weights = Weights::read(ctx, "", 3, hidden, input.size)?;
    let projected = weights.project(&input)?;
    let (batch, gh) = (input.batch, 3 * hidden);
    let mut h = initial_state(ctx, "initial_h", batch, hidden, 1)?.remove(0);
    let mut states = Vec::with_capacity(input.seq);
    for t in input.times(reverse) {
        // Gates: reset, output, update.
        let reset_update = recurrent(&weights.hh, &h, batch, hidden, 0..gh)?;
        let pre = |b: usize, gate: usize, j: usize| projected[(t * batch + b) * gh + gate * hidden + j];
        let mut r = vec![0.0; batch * hidden];
        for b in 0..batch {
            for j in 0..hidden {
                let rec = reset_update[b * gh + j];
                r[b * hidden + j] = recurrent_act(pre(b, 0, j) + rec) * h[b * hidden + j];
            }
        }
        let candidate = recurrent(&weights.hh, &r, batch, hidden, hidden..2 * hidden)?;
        for b in 0..batch {
            for j in 0..hidden {
                let z = recurrent_act(pre(b, 2, j) + reset_update[b * gh + 2 * hidden + j]);
                let o = output_act(pre(b, 1, j) + candidate[b * hidden + j]);
                let prev = h[b * hidden + j];
                h[b * hidden + j] = (1.0 - z) * o + z * prev;
            }
        }
        states.push(h.clone());
    }
    let output_sequence = ctx.bool_or("output_sequence", false)?;
    let run = Run {
        states,
        h,
        c: Vec::new(),
    };
    Ok(outputs(&x, &input, hidden, output_sequence, &[run], false))
}

fn rnn(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (input, x) = Input::read(ctx)?;
    let hidden = hidden_size(ctx)?;
    let reverse = direction(ctx, &["forward", "reverse"])? == "reverse";
    let act = activation(ctx, "activation", "tanh")?;
    let weights = Weights::read(ctx, "", 1, hidden, input.size)?;
    let projected = weights.project(&input)?;
    let batch = input.batch;
    let mut h = initial_state(ctx, "initial_h", batch, hidden, 1)?.remove(0);
    let mut states = Vec::with_capacity(input.seq);
    for t in input.times(reverse) {
        let rec = recurrent(&weights.hh, &h, batch, hidden, 0..hidden)?;
        for (k, v) in h.iter_mut().enumerate() {
            *v = act(projected[t * batch * hidden + k] + rec[k]);
        }
        states.push(h.clone());
    }
    let output_sequence = ctx.bool_or("output_sequence", false)?;
    let run = Run {
        states,
        h,
        c: Vec::new(),
    };
    Ok(outputs(&x, &input, hidden, output_sequence, &[run], false))
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{bool_scalar, floats, run_op_all, string};

    /// A hand-computed single step of each cell, batch 1, hidden 1, input 1.
    #[test]
    fn one_step_by_hand() {
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let (x, h0, c0) = (0.5f32, 0.25f32, -0.75f32);
        // lstm gates i, f, o, z with weights ih = [1, 2, 3, 4], hh = [0.5; 4], bias 0.1 each,
        // peepholes [0.3, 0.2, 0.1].
        let lstm = run_op_all(
            "lstm",
            vec![
                ("x", floats(&[1, 1, 1], &[x])),
                ("initial_h", floats(&[1, 1], &[h0])),
                ("initial_c", floats(&[1, 1], &[c0])),
                ("weight_ih", floats(&[4, 1], &[1.0, 2.0, 3.0, 4.0])),
                ("weight_hh", floats(&[4, 1], &[0.5; 4])),
                ("bias", floats(&[4], &[0.1; 4])),
                ("peephole", floats(&[3], &[0.3, 0.2, 0.1])),
                ("output_sequence", bool_scalar(true)),
            ],
        )
        .unwrap();
        let pre = |w: f32| w * x + 0.5 * h0 + 0.1;
        let i = sigmoid(pre(1.0) + 0.3 * c0);
        let f = sigmoid(pre(2.0) + 0.2 * c0);
        let z = pre(4.0).tanh();
        let c = f * c0 + i * z;
        let o = sigmoid(pre(3.0) + 0.1 * c);
        let h = o * c.tanh();
        assert!((lstm[0].floats().unwrap()[0] - h).abs() < 1e-6);
        assert!((lstm[2].floats().unwrap()[0] - c).abs() < 1e-6);

        // gru gates r, o, z: ih = [1, 2, 3], hh = [0.5, -1, 0.25], no bias.
        let gru = run_op_all(
            "gru",
            vec![
                ("x", floats(&[1, 1, 1], &[x])),
                ("initial_h", floats(&[1, 1], &[h0])),
                ("weight_ih", floats(&[3, 1], &[1.0, 2.0, 3.0])),
                ("weight_hh", floats(&[3, 1], &[0.5, -1.0, 0.25])),
            ],
        )
        .unwrap();
        let r = sigmoid(x + 0.5 * h0);
        let zg = sigmoid(3.0 * x + 0.25 * h0);
        let o = (2.0 * x - r * h0).tanh();
        let expected = (1.0 - zg) * o + zg * h0;
        assert!((gru[1].floats().unwrap()[0] - expected).abs() < 1e-6);
    }

    /// Reverse layers list states in processing order; bidirectional LSTMs align them with time.
    #[test]
    fn output_order() {
        // rnn with a linear activation sums its inputs: h_t = x_t + h_{t-1}.
        let xs = [1.0, 10.0, 100.0];
        let run = |direction: &str| {
            run_op_all(
                "rnn",
                vec![
                    ("x", floats(&[3, 1, 1], &xs)),
                    ("initial_h", floats(&[1, 1], &[0.0])),
                    ("weight_ih", floats(&[1, 1], &[1.0])),
                    ("weight_hh", floats(&[1, 1], &[1.0])),
                    ("direction", string(direction)),
                    ("output_sequence", bool_scalar(true)),
                    ("activation", string("linear")),
                ],
            )
            .unwrap()
        };
        assert_eq!(run("forward")[0].floats().unwrap(), [1.0, 11.0, 111.0]);
        assert_eq!(run("reverse")[0].floats().unwrap(), [100.0, 110.0, 111.0]);

        // A bidirectional lstm whose gates are all open and linear: c_t = c_{t-1} + x_t, h = c.
        let ones = floats(&[4, 1], &[0.0, 0.0, 0.0, 1.0]);
        let lstm = run_op_all(
            "lstm",
            vec![
                ("x", floats(&[3, 1, 1], &xs)),
                ("initial_h", floats(&[1, 2], &[0.0, 0.0])),
                ("initial_c", floats(&[1, 2], &[0.0, 0.0])),
                ("weight_ih", ones.clone()),
                ("weight_hh", floats(&[4, 1], &[0.0; 4])),
                ("bias", floats(&[4], &[1e3, 1e3, 1e3, 0.0])),
                ("weight_ih_back", ones),
                ("weight_hh_back", floats(&[4, 1], &[0.0; 4])),
                ("bias_back", floats(&[4], &[1e3, 1e3, 1e3, 0.0])),
                ("direction", string("bidirectional")),
                ("output_sequence", bool_scalar(true)),
                ("cell_activation", string("linear")),
                ("activation", string("linear")),
            ],
        )
        .unwrap();
        assert_eq!(lstm[0].floats().unwrap(), [1.0, 111.0, 11.0, 110.0, 111.0, 100.0]);
        assert_eq!(lstm[1].floats().unwrap(), [111.0, 111.0]);
    }
}
