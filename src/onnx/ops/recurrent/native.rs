//! Layers MIL computes as one op: `lstm` (one op for both directions when they share their
//! activations), `gru` and `rnn` (one op per direction).
//!
//! The weights are rearranged at compile time: ONNX stacks LSTM gates as input, output, forget,
//! cell (`iofc`) and MIL as input, forget, output, cell (`ifoz`); peepholes `iof` → `ifo`; GRU
//! gates `zrh` → `roz`. MIL takes one bias per gate, so ONNX's `Wb + Rb` is added up front. The
//! outputs are put back in ONNX's form: a single-direction `reverse` op lists its states in
//! processing order, so its sequence is flipped back into time order; a bidirectional `lstm`
//! concatenates the directions along the hidden axis (`[seq, batch, 2H]`), which becomes
//! `[seq, 2, batch, H]`.

use super::{combine, Activation, Cell, Direction, DirectionOutputs, Layer, Outputs, Sweep};
use crate::onnx::ops::NodeCx;
use edgec_passes::ir::{DType, ValueId};
use edgec_passes::op::recurrent::{self as mil, GruAttrs, LstmAttrs, RnnAttrs};
use edgec_passes::op::{BinaryOp, Op, SliceAxis};

/// Why `layer` must be unrolled, or `None` when MIL's op computes it exactly.
pub(super) fn obstacle(cx: &NodeCx, layer: &Layer) -> Option<String> {
    if layer.dtype != DType::F32 {
        return Some(format!(
            "{} input (MIL's recurrent ops are fp32 before iOS 17)",
            layer.dtype
        ));
    }
    match layer.cell {
        Cell::Lstm { input_forget: true } => return Some("input_forget (MIL has no coupled gates)".into()),
        Cell::Gru {
            linear_before_reset: true,
        } => {
            return Some("linear_before_reset (MIL's gru resets the state before the recurrent product)".into());
        }
        _ => {}
    }
    if layer.clip.is_some() {
        return Some("clip (ONNX bounds the gate inputs, MIL's lstm the cell state)".into());
    }
    if layer.lengths.is_some() {
        return Some("sequence_lens shorter than the sequence".into());
    }
    for direction in &layer.directions {
        if let Some(a) = direction.activations.iter().find(|a| mil_activation(**a).is_none()) {
            return Some(format!(
                "activation {a:?} (MIL has sigmoid, tanh and relu without parameters)"
            ));
        }
        let weights = [
            Some(direction.w),
            Some(direction.r),
            direction.wb,
            direction.rb,
            direction.p,
        ];
        if weights.into_iter().flatten().any(|v| cx.graph.constant(v).is_none()) {
            return Some("weights computed at run time (MIL takes constant weights)".into());
        }
    }
    None
}

fn mil_activation(a: Activation) -> Option<mil::Activation> {
    match a {
        Activation::Sigmoid => Some(mil::Activation::Sigmoid),
        Activation::Tanh => Some(mil::Activation::Tanh),
        Activation::Relu => Some(mil::Activation::Relu),
        _ => None,
    }
}

/// The activations of a direction [`obstacle`] accepted.
fn activations(direction: &Direction) -> Vec<mil::Activation> {
    direction
        .activations
        .iter()
        .filter_map(|&a| mil_activation(a))
        .collect()
}

pub(super) fn build(cx: &mut NodeCx, layer: &Layer) -> Result<Outputs, String> {
    let shared = layer.directions.len() == 2 && layer.directions[0].activations == layer.directions[1].activations;
    if matches!(layer.cell, Cell::Lstm { .. }) && shared {
        return bidirectional_lstm(cx, layer);
    }
    let results = layer
        .directions
        .iter()
        .map(|direction| one_direction(cx, layer, direction))
        .collect::<Result<Vec<_>, _>>()?;
    combine(cx, layer, results)
}

/// MIL's gate order as ONNX gate indices: MIL gate `k` is ONNX gate `order[k]`.
fn gate_order(cell: Cell) -> &'static [usize] {
    match cell {
        // i, o, f, c → i, f, o, z
        Cell::Lstm { .. } => &[0, 2, 1, 3],
        // z, r, h → r, o, z
        Cell::Gru { .. } => &[1, 2, 0],
        Cell::Rnn => &[0],
    }
}

/// `v` (`[gates·H, ..]`) with its gate blocks in `order`.
fn regroup(cx: &mut NodeCx, v: ValueId, hidden: usize, order: &[usize], suffix: &str) -> Result<ValueId, String> {
    if order.iter().enumerate().all(|(k, &g)| k == g) {
        return Ok(v);
    }
    let shape = cx.ty(v).shape.clone();
    let blocks = order
        .iter()
        .map(|&g| {
            let mut axes: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
            axes[0] = SliceAxis {
                begin: g * hidden,
                end: Some((g + 1) * hidden),
                stride: 1,
            };
            cx.add_step(Op::Slice { axes }, vec![v], &format!("{suffix}_gate{g}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    cx.add_step(Op::Concat { axis: 0 }, blocks, suffix)
}

/// A direction's MIL weights: `weight_ih`, `weight_hh`, `bias` (and the LSTM `peephole`).
fn weights(cx: &mut NodeCx, layer: &Layer, direction: &Direction, tag: &str) -> Result<Vec<ValueId>, String> {
    let (order, hidden) = (gate_order(layer.cell), layer.hidden);
    let gh = layer.cell.gates() * hidden;
    let w_ih = regroup(cx, direction.w, hidden, order, &format!("weight_ih_{tag}"))?;
    let w_hh = regroup(cx, direction.r, hidden, order, &format!("weight_hh_{tag}"))?;
    let bias = match (direction.wb, direction.rb) {
        (Some(wb), Some(rb)) => {
            let sum = cx.add_step(Op::Binary(BinaryOp::Add), vec![wb, rb], &format!("bias_sum_{tag}"))?;
            regroup(cx, sum, hidden, order, &format!("bias_{tag}"))?
        }
        _ => cx.add_const_step(layer.splat(vec![gh], 0.0), &format!("bias_{tag}")),
    };
    let mut operands = vec![w_ih, w_hh, bias];
    if let Some(p) = direction.p {
        // i, o, f → i, f, o
        operands.push(regroup(cx, p, hidden, &[0, 2, 1], &format!("peephole_{tag}"))?);
    }
    Ok(operands)
}

/// An initial state `[1, b, H]` as MIL's `[b, H]`, zero when absent.
fn mil_state(cx: &mut NodeCx, layer: &Layer, state: Option<ValueId>, suffix: &str) -> Result<ValueId, String> {
    let shape = vec![layer.batch, layer.hidden];
    match state {
        Some(v) => cx.add_step(Op::Reshape { shape }, vec![v], suffix),
        None => Ok(cx.add_const_step(layer.splat(shape, 0.0), suffix)),
    }
}

/// One single-direction MIL op.
fn one_direction(cx: &mut NodeCx, layer: &Layer, direction: &Direction) -> Result<DirectionOutputs, String> {
    let tag = direction.sweep.tag();
    let (hidden, output_sequence) = (layer.hidden, layer.wants_y);
    let mil_direction = match direction.sweep {
        Sweep::Forward => mil::Direction::Forward,
        Sweep::Reverse => mil::Direction::Reverse,
    };
    let acts = activations(direction);
    let mut inputs = vec![
        layer.x,
        mil_state(cx, layer, direction.initial_h, &format!("h0_{tag}"))?,
    ];
    let op = match layer.cell {
        Cell::Lstm { .. } => {
            inputs.push(mil_state(cx, layer, direction.initial_c, &format!("c0_{tag}"))?);
            Op::Lstm(LstmAttrs {
                hidden,
                direction: mil_direction,
                output_sequence,
                recurrent_activation: acts[0],
                cell_activation: acts[1],
                activation: acts[2],
                peephole: direction.p.is_some(),
            })
        }
        Cell::Gru { .. } => Op::Gru(GruAttrs {
            hidden,
            direction: mil_direction,
            output_sequence,
            recurrent_activation: acts[0],
            activation: acts[1],
        }),
        Cell::Rnn => Op::Rnn(RnnAttrs {
            hidden,
            direction: mil_direction,
            output_sequence,
            activation: acts[0],
        }),
    };
    inputs.extend(weights(cx, layer, direction, tag)?);
    let suffixes = [format!("y_{tag}_mil"), format!("h_{tag}_mil"), format!("c_{tag}_mil")];
    let count = if matches!(layer.cell, Cell::Lstm { .. }) { 3 } else { 2 };
    let names: Vec<&str> = suffixes[..count].iter().map(String::as_str).collect();
    let results = cx.add_steps(op, inputs, &names)?;

    let y = if output_sequence && direction.sweep == Sweep::Reverse {
        Some(flip_time(cx, results[0], &format!("y_{tag}"))?)
    } else {
        output_sequence.then_some(results[0])
    };
    let state = vec![1, layer.batch, hidden];
    let h = cx.add_step(
        Op::Reshape { shape: state.clone() },
        vec![results[1]],
        &format!("h_{tag}"),
    )?;
    let c = match results.get(2) {
        Some(&c) => Some(cx.add_step(Op::Reshape { shape: state }, vec![c], &format!("c_{tag}"))?),
        None => None,
    };
    Ok(DirectionOutputs { y, h, c })
}

/// `y` (`[seq, ..]`) with its first axis reversed.
fn flip_time(cx: &mut NodeCx, y: ValueId, suffix: &str) -> Result<ValueId, String> {
    let shape = cx.ty(y).shape.clone();
    let mut axes: Vec<SliceAxis> = shape.iter().map(|&d| SliceAxis::full(d)).collect();
    axes[0] = SliceAxis {
        begin: shape[0] - 1,
        end: None,
        stride: -1,
    };
    cx.add_step(Op::Slice { axes }, vec![y], suffix)
}

/// Both directions in one MIL `lstm`.
fn bidirectional_lstm(cx: &mut NodeCx, layer: &Layer) -> Result<Outputs, String> {
    let (seq, batch, hidden) = (layer.seq, layer.batch, layer.hidden);
    let [forward, backward] = &layer.directions[..] else {
        return Err("a bidirectional layer needs two directions".into());
    };
    let acts = activations(forward);
    let mut inputs = vec![layer.x];
    // `[2, b, H]` → `[b, 2H]`: the forward state, then the backward one, per batch row.
    for (state, which) in layer.initial_states.into_iter().zip(["h0", "c0"]) {
        let shape = vec![batch, 2 * hidden];
        inputs.push(match state {
            Some(v) => {
                let rows = cx.add_step(Op::Transpose { perm: vec![1, 0, 2] }, vec![v], &format!("{which}_rows"))?;
                cx.add_step(Op::Reshape { shape }, vec![rows], which)?
            }
            None => cx.add_const_step(layer.splat(shape, 0.0), which),
        });
    }
    inputs.extend(weights(cx, layer, forward, "fwd")?);
    inputs.extend(weights(cx, layer, backward, "bwd")?);
    let op = Op::Lstm(LstmAttrs {
        hidden,
        direction: mil::Direction::Bidirectional,
        output_sequence: layer.wants_y,
        recurrent_activation: acts[0],
        cell_activation: acts[1],
        activation: acts[2],
        peephole: forward.p.is_some(),
    });
    let results = cx.add_steps(op, inputs, &["y_mil", "h_mil", "c_mil"])?;

    // [.., 2H] → [.., 2, H], the direction axis then moved in front of the batch.
    let mut split = |v: ValueId, shape: Vec<usize>, perm: Vec<usize>, suffix: &str| -> Result<ValueId, String> {
        let split = cx.add_step(Op::Reshape { shape }, vec![v], &format!("{suffix}_split"))?;
        cx.add_step(Op::Transpose { perm }, vec![split], suffix)
    };
    let y = match layer.wants_y {
        true => Some(split(results[0], vec![seq, batch, 2, hidden], vec![0, 2, 1, 3], "y")?),
        false => None,
    };
    let h = match layer.wants_h {
        true => Some(split(results[1], vec![batch, 2, hidden], vec![1, 0, 2], "h")?),
        false => None,
    };
    let c = match layer.wants_c {
        true => Some(split(results[2], vec![batch, 2, hidden], vec![1, 0, 2], "c")?),
        false => None,
    };
    Ok(Outputs { y, h, c })
}
