//! Weight compression (`--weights`): palettize or linearly quantize the weight operands the
//! rules select, after `cast_to_fp16`. A weight is a float constant of rank ≥ 2 with more than
//! `weights_min_elements` elements read as the weight of a conv, conv_transpose, linear or
//! matmul, or as a gather table (an embedding). Its constant is replaced by the dense values
//! the device reconstructs, and `Graph::compressed` records the stored form for the back end.
//! Every float constant stored in the weight file gets a row in `Graph::weight_report`: what
//! was done and its error, or why it was left alone.
//!
//! A weight the model stores quantized (`Graph::prequantized`: QDQ) keeps the model's codes,
//! scales and zero points whatever the rules say, as long as the constant still holds exactly
//! the values they give (a BatchNorm folded into the conv changes them) in their layout or
//! transposed; otherwise the rules apply, and the report says why.

use crate::compress::{self, CompressError};
use crate::compressed::{pack_bits, CompressedForm, Family, Prequantized, Scheme, WeightReport};
use crate::ir::{DType, Graph, TensorType, ValueId};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};
use half::f16;
use std::collections::BTreeMap;

pub struct CompressWeights;

/// Constants at least this large live in the weight file (and so are reported).
const REPORTED_MIN_ELEMENTS: usize = 10;

/// How one op reads a weight.
#[derive(Clone, Debug)]
struct Use {
    family: Family,
    op: &'static str,
    origin: String,
    output_axis: usize,
    input_axis: usize,
}

/// The weight operands of `op` among its `inputs`: (slot, family, output axis, input axis).
fn weight_slots(op: &Op, input_types: &[&TensorType]) -> Vec<(usize, Family, usize, usize)> {
    let rank = |slot: usize| input_types.get(slot).map_or(0, |t| t.rank());
    match op {
        Op::Conv(_) => vec![(1, Family::Conv, 0, 1)],
        Op::ConvTranspose(_) => vec![(1, Family::Conv, 1, 0)],
        Op::Linear => vec![(1, Family::Linear, 0, 1)],
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let (ra, rb) = (rank(0), rank(1));
            let mut slots = Vec::new();
            if rb >= 2 {
                let (out, inp) = if *transpose_b {
                    (rb - 2, rb - 1)
                } else {
                    (rb - 1, rb - 2)
                };
                slots.push((1, Family::Matmul, out, inp));
            }
            if ra >= 2 {
                let (out, inp) = if *transpose_a {
                    (ra - 1, ra - 2)
                } else {
                    (ra - 2, ra - 1)
                };
                slots.push((0, Family::Matmul, out, inp));
            }
            slots
        }
        Op::Gather { axis: 0 } => vec![(0, Family::Embedding, 0, 1)],
        _ => Vec::new(),
    }
}

fn fail(name: &str, origin: &str, message: String) -> PassError {
    PassError {
        pass: "compress_weights",
        origin: origin.to_string(),
        message: format!("weight {name:?}: {message}"),
    }
}

impl Pass for CompressWeights {
    fn name(&self) -> &'static str {
        "compress_weights"
    }

    fn run(&self, graph: &mut Graph, options: &PassOptions) -> Result<(), PassError> {
        // Who reads each constant as a weight, and which constants anything else reads.
        let mut uses: BTreeMap<ValueId, Vec<Use>> = BTreeMap::new();
        let mut other_reader: BTreeMap<ValueId, &'static str> = BTreeMap::new();
        let mut order: Vec<ValueId> = Vec::new();
        for &id in &graph.order {
            let node = graph.node(id);
            let types: Vec<&TensorType> = node.inputs.iter().map(|&v| graph.ty(v)).collect();
            let slots = weight_slots(&node.op, &types);
            for (slot, &v) in node.inputs.iter().enumerate() {
                if graph.constant(v).is_none() {
                    continue;
                }
                if !order.contains(&v) {
                    order.push(v);
                }
                match slots.iter().find(|s| s.0 == slot) {
                    Some(&(_, family, output_axis, input_axis)) => uses.entry(v).or_default().push(Use {
                        family,
                        op: node.op.name(),
                        origin: node.origin.clone(),
                        output_axis,
                        input_axis,
                    }),
                    None => {
                        other_reader.entry(v).or_insert(node.op.name());
                    }
                }
            }
        }

        let mut report = Vec::new();
        for v in order {
            let Some(tensor) = graph.constant(v) else {
                continue;
            };
            let ty = tensor.ty.clone();
            if !ty.dtype.is_float() || ty.num_elements() < REPORTED_MIN_ELEMENTS {
                continue;
            }
            let name = graph.initializer_name(v).to_string();
            let weight_uses = uses.get(&v).cloned().unwrap_or_default();
            let first = weight_uses.first();
            let bytes = ty.num_elements() * ty.dtype.size_in_bytes();
            let mut row = WeightReport {
                name: name.clone(),
                consumer: first.map_or_else(
                    || other_reader.get(&v).copied().unwrap_or("").to_string(),
                    |u| u.op.to_string(),
                ),
                origin: first.map_or_else(String::new, |u| u.origin.clone()),
                shape: ty.shape.clone(),
                scheme: Scheme::Dense,
                layout: String::new(),
                bytes_before: bytes,
                bytes_after: bytes,
                mse: 0.0,
                max_abs: 0.0,
                snr_db: f64::INFINITY,
                note: String::new(),
            };
            let mut kept_codes_failed = None;
            let model_codes = graph.prequantized.get(&name).cloned();
            if let Some(model) =
                model_codes.filter(|_| first.is_some() && ty.rank() >= 2 && !other_reader.contains_key(&v))
            {
                match store_prequantized(graph, v, &ty, &model, options, &mut row) {
                    Ok(()) => {
                        report.push(row);
                        continue;
                    }
                    Err(why) => kept_codes_failed = Some(why),
                }
            }
            let scheme = first.map_or(Scheme::Dense, |u| {
                options
                    .weights
                    .iter()
                    .rev()
                    .find(|r| r.selector.matches(u.family, &name))
                    .map_or(Scheme::Dense, |r| r.scheme)
            });
            row.note = if first.is_none() {
                format!("not a weight operand (read by {})", row.consumer)
            } else if ty.rank() < 2 {
                "rank 1: never compressed".into()
            } else if other_reader.contains_key(&v) {
                format!("also read by {} as a plain operand", other_reader[&v])
            } else if weight_uses
                .iter()
                .any(|u| (u.output_axis, u.input_axis) != (weight_uses[0].output_axis, weight_uses[0].input_axis))
            {
                "its consumers disagree on the channel axes".into()
            } else if ty.num_elements() <= options.weights_min_elements {
                format!(
                    "{} elements, at most --weights-min-elements {}",
                    ty.num_elements(),
                    options.weights_min_elements
                )
            } else if scheme == Scheme::Dense {
                "no --weights rule compresses it".into()
            } else {
                String::new()
            };
            if row.note.is_empty() {
                let u = &weight_uses[0];
                compress_one(graph, v, &ty, scheme, u, &mut row)?;
            }
            if let Some(why) = kept_codes_failed {
                let rest = if row.note.is_empty() {
                    String::new()
                } else {
                    format!("; {}", row.note)
                };
                row.note = format!("the model's quantized codes were not kept: {why}{rest}");
            }
            report.push(row);
        }
        graph.weight_report = report;
        Ok(())
    }
}

/// Compress constant `v` with `scheme`, record its stored form, and fill in the report row.
fn compress_one(
    graph: &mut Graph,
    v: ValueId,
    ty: &TensorType,
    scheme: Scheme,
    u: &Use,
    row: &mut WeightReport,
) -> Result<(), PassError> {
    let name = row.name.clone();
    let err = |e: CompressError| fail(&name, &u.origin, e.to_string());
    let original: Vec<f16> = match graph.constant(v) {
        Some(t) => t.cast(DType::F16).to_f32_vec().into_iter().map(f16::from_f32).collect(),
        None => return Ok(()),
    };
    let shape = &ty.shape;
    let elements = ty.num_elements();
    let elem = ty.dtype.size_in_bytes();
    let (form, dense, stored) = match scheme {
        // Rules never ask for the model's codes: those are kept before the rules apply.
        Scheme::Dense | Scheme::FromModel { .. } => return Ok(()),
        Scheme::Palettize { bits, group } => {
            let channels = shape[u.output_axis];
            let group = group.map(|g| {
                let fitted = (1..=g.min(channels)).rev().find(|d| channels % d == 0).unwrap_or(1);
                if fitted != g {
                    row.note = format!("groups of {fitted} channels: {channels} is not a multiple of {g}");
                }
                fitted
            });
            let (luts, indices, dense) = match group {
                None => {
                    let p = compress::palettize(&original, bits).map_err(err)?;
                    let dense = p.dequantize();
                    (vec![p.lut], p.indices, dense)
                }
                Some(g) => {
                    let p = compress::palettize_grouped(&original, shape, u.output_axis, g, bits).map_err(err)?;
                    let dense = p.dequantize(shape, u.output_axis);
                    (p.luts, p.indices, dense)
                }
            };
            row.layout = match group {
                None => "1 LUT".into(),
                Some(g) => format!("{} LUTs of {g} channels", luts.len()),
            };
            let form = CompressedForm::Palette {
                bits,
                axis: u.output_axis,
                luts,
                indices: pack_bits(indices, elements, bits),
            };
            let stored = (elements * bits as usize).div_ceil(8) + lut_entries(&form) * elem;
            (form, dense, stored)
        }
        Scheme::Linear { bits, block } => {
            let mut blocks = vec![0; shape.len()];
            blocks[u.output_axis] = 1;
            if let Some(b) = block {
                if shape[u.input_axis] % b != 0 {
                    row.note = format!(
                        "left dense: its input axis ({}) is not a multiple of the block size {b}",
                        shape[u.input_axis]
                    );
                    return Ok(());
                }
                blocks[u.input_axis] = b;
            }
            let q = compress::quantize(&original, shape, &blocks, bits).map_err(err)?;
            row.layout = match block {
                None => format!("{} channel scales", q.scales.len()),
                Some(b) => format!("blocks of {b}, {} scales", q.scales.len()),
            };
            let stored = (elements * bits as usize).div_ceil(8) + q.scales.len() * elem;
            let dense = q.dequantize(shape);
            let data = match bits {
                8 => q.data.iter().map(|&c| c as u8).collect(),
                _ => pack_bits(q.data.iter().map(|&c| c as u8), elements, bits),
            };
            let form = CompressedForm::Linear {
                bits,
                axis: u.output_axis,
                data,
                scales: q.scales,
                scale_shape: q.scale_shape,
            };
            (form, dense, stored)
        }
    };
    if stored >= row.bytes_before {
        row.note = format!("left dense: stored {scheme} it would take {stored} bytes, no fewer than dense");
        return Ok(());
    }
    let stats = compress::error_stats(&original, &dense);
    row.scheme = scheme;
    row.bytes_after = stored;
    row.mse = stats.mse;
    row.max_abs = stats.max_abs;
    row.snr_db = stats.snr_db;
    // The constant keeps its dense values (the guard may leave it dense after all);
    // `CompressedForm::reconstruct` gives what the device computes with.
    drop((original, dense));
    graph.compressed.insert(v, form);
    Ok(())
}

fn lut_entries(form: &CompressedForm) -> usize {
    match form {
        CompressedForm::Palette { luts, .. } => luts.iter().map(Vec::len).sum(),
        CompressedForm::Linear { scales, .. } => scales.len(),
        CompressedForm::FromModel(model) => model.scales.len(),
    }
}

/// Store constant `v`, computed from a weight the model stores quantized, as the model's own
/// codes, scales and zero points. An `Err` says why it cannot be: a rewrite changed its values
/// (a BatchNorm folded into the conv) or its layout beyond a transpose, or the target lacks
/// block-wise weights.
fn store_prequantized(
    graph: &mut Graph,
    v: ValueId,
    ty: &TensorType,
    model: &Prequantized,
    options: &PassOptions,
    row: &mut WeightReport,
) -> Result<(), String> {
    if !options.quantized_weights {
        return Err("int8 weights need iOS 16".into());
    }
    let quantized = if model.shape == ty.shape {
        model.clone()
    } else {
        model
            .transposed()
            .filter(|t| t.shape == ty.shape)
            .ok_or_else(|| format!("a rewrite changed its layout ({:?} → {:?})", model.shape, ty.shape))?
    };
    let fp16 = ty.dtype == DType::F16;
    let exact = quantized
        .dequantize(false)
        .ok_or("its last block is short (the input axis is not a multiple of the block size)")?;
    let Some(tensor) = graph.constant(v) else {
        return Ok(());
    };
    // The constant must still hold the model's values (rounded to fp16 in an fp16 program).
    let current = tensor.to_f32_vec();
    let unchanged = current.iter().zip(&exact).all(|(&c, &e)| {
        if fp16 {
            c == f16::from_f32(e).to_f32()
        } else {
            c.to_bits() == e.to_bits()
        }
    });
    if !unchanged {
        return Err("a rewrite changed its values (a fusion folded something into it)".into());
    }
    let varying: Vec<usize> = (0..ty.rank()).filter(|&a| quantized.param_shape[a] > 1).collect();
    let per_axis = varying.len() <= 1 && varying.iter().all(|&a| quantized.param_shape[a] == ty.shape[a]);
    if !per_axis && !options.blockwise_weights {
        return Err("block-wise quantization needs iOS 18".into());
    }
    let params = quantized.scales.len();
    row.layout = match varying.as_slice() {
        [] => "1 scale".into(),
        [_] if per_axis => format!("{params} channel scales"),
        _ => format!("{params} block scales"),
    };
    let elem = ty.dtype.size_in_bytes();
    let stored = quantized.codes.len() + params * (elem + 1);
    if stored >= row.bytes_before {
        return Err(format!(
            "stored as int8 it would take {stored} bytes, no fewer than dense"
        ));
    }
    // What the device computes: the exact values in fp32, with fp16 scales in fp16.
    let device = if fp16 {
        quantized.dequantize(true).unwrap_or_default()
    } else {
        exact
    };
    let device: Vec<f16> = device.iter().map(|&d| f16::from_f32(d)).collect();
    let original: Vec<f16> = current.iter().map(|&c| f16::from_f32(c)).collect();
    let stats = compress::error_stats(&original, &device);
    row.scheme = Scheme::FromModel {
        unsigned: quantized.unsigned,
    };
    row.bytes_after = stored;
    row.mse = stats.mse;
    row.max_abs = stats.max_abs;
    row.snr_db = stats.snr_db;
    graph.compressed.insert(v, CompressedForm::FromModel(quantized));
    Ok(())
}
