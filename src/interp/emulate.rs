//! fp16 emulation beside an fp32 reference, op by op: the engine behind `--precision auto`
//! (calibrated mixed precision) and `edgec verify`'s divergence locator.
//!
//! Two lanes advance together over two programs with the same ops: the reference lane runs the
//! fp32 program, and the emulated lane runs the fp16 program as a device would, with some ops
//! kept in fp32. The fp16 program is given as its fp32-typed "probe" (the IR after the fp16
//! range guard, before casts), so its constants are the ones fp16 stores. In the emulated lane
//! an fp16 op rounds its float operands (constants too: that is how they are stored) and its
//! float results through IEEE half; an fp32 op runs as the fp32 program holds it, on what it is
//! given, so a value crosses into fp16 only where an fp16 op reads it, as the casts of a mixed
//! program do. After each op the two results are compared, and only the comparison is kept, so
//! memory stays at twice the live set.

use super::eval::{self, Env};
use super::tensor::{Buf, Tensor};
use super::{input_env, load, weights, InterpOptions, NdArray};
use crate::error::{Error, Result};
use edgec_passes::precision::{FP16_MAX, FP16_MIN_POSITIVE};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// How one op's emulated result compares with the reference.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// Position in `main`'s block.
    pub index: usize,
    /// The MIL op's name (its first output).
    pub op: String,
    pub op_type: String,
    /// Whether the emulated lane ran it in fp16.
    pub fp16: bool,
    /// The non-const values it reads, by name.
    pub inputs: Vec<String>,
    pub elements: usize,
    /// Finite reference values beyond fp16's largest, and nonzero ones below its smallest.
    pub ref_above_fp16: usize,
    pub ref_below_fp16: usize,
    /// Nonzero finite reference values that are 0 in the emulated lane.
    pub flushed: usize,
    pub ref_nonzero: usize,
    /// ±inf / NaN in the emulated lane where the reference is finite / not NaN.
    pub new_inf: usize,
    pub new_nan: usize,
    /// ‖emulated − reference‖ / ‖reference‖ over the elements where the reference is finite
    /// (inf when the emulated lane is not finite there).
    pub rel_error: f64,
    /// The largest `rel_error` of the op outputs it reads (0 for inputs and constants).
    pub input_rel_error: f64,
    /// Smallest and largest finite reference and emulated values.
    pub ref_range: (f32, f32),
    pub emu_range: (f32, f32),
}

impl OpStats {
    /// Share of the nonzero reference values the emulated lane flushed to 0.
    pub fn flushed_share(&self) -> f64 {
        if self.ref_nonzero == 0 {
            0.0
        } else {
            self.flushed as f64 / self.ref_nonzero as f64
        }
    }
}

/// One model output, emulated against reference.
#[derive(Clone, Debug)]
pub struct OutputAgreement {
    pub name: String,
    pub cosine: f64,
    pub rel_error: f64,
    /// The reference lane's value.
    pub reference: NdArray,
}

#[derive(Clone, Debug)]
pub struct Trace {
    /// Every non-const op with a float result, in program order.
    pub ops: Vec<OpStats>,
    pub outputs: Vec<OutputAgreement>,
}

/// One program being walked op by op: its constants are materialised just before the op that
/// first reads them and dropped after the last.
struct Walk<'a> {
    loaded: &'a super::Loaded,
    store: weights::WeightStore,
    dead_after: Vec<Vec<&'a str>>,
    next: usize,
    consts: Env,
}

impl<'a> Walk<'a> {
    fn new(loaded: &'a super::Loaded) -> Self {
        Walk {
            loaded,
            store: weights::WeightStore::new(loaded.model_dir.clone()),
            dead_after: eval::dead_after(&loaded.block),
            next: 0,
            consts: Env::new(),
        }
    }

    /// Run the consts up to the next non-const op and return that op's index.
    fn advance(&mut self) -> std::result::Result<Option<usize>, String> {
        let ops = &self.loaded.block.operations;
        while let Some(op) = ops.get(self.next) {
            if op.r#type != "const" {
                self.next += 1;
                return Ok(Some(self.next - 1));
            }
            let mut out = eval::execute(op, &self.consts, &self.store)?;
            if let (Some(t), Some(o)) = (out.pop(), op.outputs.first()) {
                self.consts.insert(o.name.clone(), t);
            }
            self.next += 1;
        }
        Ok(None)
    }
}

/// The values `op` reads, from `values` (op results) or the program's constants.
fn operands(op: &crate::proto::coreml::mil_spec::Operation, values: &Env, consts: &Env) -> Env {
    eval::input_names(op)
        .filter_map(|n| {
            values
                .get(n)
                .or_else(|| consts.get(n))
                .map(|t| (n.to_string(), t.clone()))
        })
        .collect()
}

/// Run two programs with the same ops (they differ only in constants) on `inputs`:
/// `reference`, the fp32 program, in the reference lane; and in the emulated lane, each op that
/// `keep_fp32(op_name)` leaves in fp32 as `reference` holds it, every other op as `fp16_probe`
/// (the fp16 program before its casts: fp16-safe constants, fp32 types) holds it, in fp16.
pub fn trace_fp16(
    reference: &Path,
    fp16_probe: &Path,
    inputs: &[(String, NdArray)],
    keep_fp32: &dyn Fn(&str) -> bool,
) -> Result<Trace> {
    let ref_loaded = load(reference)?;
    let probe_loaded = load(fp16_probe)?;
    let options = InterpOptions::default();
    let mut ref_values = input_env(&ref_loaded, reference, inputs, &options)?;
    let mut emu_values = ref_values.clone();
    let fail = |m: String| Error::Package {
        path: fp16_probe.to_path_buf(),
        message: m,
    };
    let mut ref_walk = Walk::new(&ref_loaded);
    let mut probe_walk = Walk::new(&probe_loaded);

    // Emulated values already exact in fp16, and fp16 copies of the others made for fp16 readers.
    let mut rounded: HashSet<String> = HashSet::new();
    let mut fp16_copies: HashMap<String, Tensor> = HashMap::new();
    let mut errors: HashMap<String, f64> = HashMap::new();
    let mut ops = Vec::new();
    loop {
        let (r, p) = (ref_walk.advance().map_err(fail)?, probe_walk.advance().map_err(fail)?);
        let (ri, pi) = match (r, p) {
            (None, None) => break,
            (Some(ri), Some(pi)) => (ri, pi),
            _ => return Err(fail("the fp32 and fp16 programs have different ops".into())),
        };
        let ref_op = &ref_loaded.block.operations[ri];
        let probe_op = &probe_loaded.block.operations[pi];
        let names = |op: &crate::proto::coreml::mil_spec::Operation| -> Vec<String> {
            op.outputs.iter().map(|o| o.name.clone()).collect()
        };
        if ref_op.r#type != probe_op.r#type || names(ref_op) != names(probe_op) {
            return Err(fail(format!(
                "the fp32 and fp16 programs differ at {} / {}",
                eval::op_label(ref_op),
                eval::op_label(probe_op)
            )));
        }
        let name = ref_op.outputs.first().map_or("", |o| o.name.as_str());
        let fp16 = !keep_fp32(name);
        let ref_out = eval::execute(
            ref_op,
            &operands(ref_op, &ref_values, &ref_walk.consts),
            &ref_walk.store,
        )
        .map_err(fail)?;
        let emu_out = if fp16 {
            let mut local = Env::new();
            for input in eval::input_names(probe_op) {
                let Some(t) = emu_values.get(input).or_else(|| probe_walk.consts.get(input)) else {
                    continue;
                };
                let t = if rounded.contains(input) {
                    t.clone()
                } else {
                    fp16_copies
                        .entry(input.to_string())
                        .or_insert_with(|| {
                            let mut t = t.clone();
                            eval::round_tensor_to_fp16(&mut t);
                            t
                        })
                        .clone()
                };
                local.insert(input.to_string(), t);
            }
            let mut out = eval::execute(probe_op, &local, &probe_walk.store).map_err(fail)?;
            out.iter_mut().for_each(eval::round_tensor_to_fp16);
            out
        } else {
            eval::execute(
                ref_op,
                &operands(ref_op, &emu_values, &ref_walk.consts),
                &ref_walk.store,
            )
            .map_err(fail)?
        };
        if let (Some(Buf::F(r)), Some(Buf::F(e))) = (ref_out.first().map(|t| &t.buf), emu_out.first().map(|t| &t.buf)) {
            let inputs: Vec<String> = eval::input_names(ref_op)
                .filter(|n| errors.contains_key(*n) || ref_loaded.function_inputs.contains_key(*n))
                .map(str::to_string)
                .collect();
            let input_rel_error = inputs
                .iter()
                .filter_map(|n| errors.get(n))
                .fold(0.0f64, |m, &e| m.max(e));
            let stats = compare(ri, ref_op, fp16, inputs, input_rel_error, r, e);
            errors.insert(name.to_string(), stats.rel_error);
            ops.push(stats);
        }
        for (t, out) in ref_out.into_iter().zip(&ref_op.outputs) {
            ref_values.insert(out.name.clone(), t);
        }
        for (t, out) in emu_out.into_iter().zip(&ref_op.outputs) {
            if fp16 {
                rounded.insert(out.name.clone());
            }
            emu_values.insert(out.name.clone(), t);
        }
        for dead in &ref_walk.dead_after[ri] {
            ref_values.remove(*dead);
            emu_values.remove(*dead);
            ref_walk.consts.remove(*dead);
            fp16_copies.remove(*dead);
        }
        for dead in &probe_walk.dead_after[pi] {
            probe_walk.consts.remove(*dead);
            fp16_copies.remove(*dead);
        }
    }
    let block = &ref_loaded.block;
    let mut outputs = Vec::new();
    for (f, name) in ref_loaded.outputs.iter().zip(&block.outputs) {
        let missing = || fail(format!("block output {name:?} is never defined"));
        let r = ref_values
            .get(name)
            .or_else(|| ref_walk.consts.get(name))
            .ok_or_else(missing)?;
        let e = emu_values
            .get(name)
            .or_else(|| ref_walk.consts.get(name))
            .ok_or_else(missing)?;
        let (cosine, rel_error) = match (&r.buf, &e.buf) {
            (Buf::F(r), Buf::F(e)) => agreement(r, e),
            (Buf::I(r), Buf::I(e)) => {
                let same = r == e;
                (if same { 1.0 } else { 0.0 }, if same { 0.0 } else { 1.0 })
            }
            _ => (1.0, 0.0),
        };
        let reference = super::output_array(f, r).map_err(fail)?;
        outputs.push(OutputAgreement {
            name: f.name.clone(),
            cosine,
            rel_error,
            reference,
        });
    }
    Ok(Trace { ops, outputs })
}

/// Cosine similarity and relative L2 error of `e` against `r` (non-finite values count as
/// total disagreement unless both sides hold the same one).
fn agreement(r: &[f32], e: &[f32]) -> (f64, f64) {
    let (mut dot, mut rr, mut ee, mut diff) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in r.iter().zip(e) {
        if a.is_finite() != b.is_finite() || (a.is_nan() || b.is_nan()) {
            return (0.0, f64::INFINITY);
        }
        if !a.is_finite() {
            if a != b {
                return (0.0, f64::INFINITY);
            }
            continue;
        }
        let (a, b) = (f64::from(a), f64::from(b));
        dot += a * b;
        rr += a * a;
        ee += b * b;
        diff += (a - b) * (a - b);
    }
    let cosine = if rr > 0.0 && ee > 0.0 {
        dot / (rr.sqrt() * ee.sqrt())
    } else if diff == 0.0 {
        1.0
    } else {
        0.0
    };
    let rel_error = if rr > 0.0 {
        (diff / rr).sqrt()
    } else if diff == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    (cosine, rel_error)
}

fn compare(
    index: usize,
    op: &crate::proto::coreml::mil_spec::Operation,
    fp16: bool,
    inputs: Vec<String>,
    input_rel_error: f64,
    r: &[f32],
    e: &[f32],
) -> OpStats {
    let mut s = OpStats {
        index,
        op: op.outputs.first().map_or(String::new(), |o| o.name.clone()),
        op_type: op.r#type.clone(),
        fp16,
        inputs,
        elements: r.len(),
        ref_above_fp16: 0,
        ref_below_fp16: 0,
        flushed: 0,
        ref_nonzero: 0,
        new_inf: 0,
        new_nan: 0,
        rel_error: 0.0,
        input_rel_error,
        ref_range: (f32::INFINITY, f32::NEG_INFINITY),
        emu_range: (f32::INFINITY, f32::NEG_INFINITY),
    };
    let (mut rr, mut diff) = (0.0f64, 0.0f64);
    let mut broken = false;
    for (&a, &b) in r.iter().zip(e) {
        if b.is_nan() && !a.is_nan() {
            s.new_nan += 1;
            broken = true;
        } else if b.is_infinite() && a.is_finite() {
            s.new_inf += 1;
            broken = true;
        }
        if a.is_finite() {
            s.ref_range = (s.ref_range.0.min(a), s.ref_range.1.max(a));
            if a.abs() > FP16_MAX {
                s.ref_above_fp16 += 1;
            }
            if a != 0.0 {
                s.ref_nonzero += 1;
                if a.abs() < FP16_MIN_POSITIVE / 2.0 {
                    s.ref_below_fp16 += 1;
                }
                if b == 0.0 {
                    s.flushed += 1;
                }
            }
            if b.is_finite() {
                let (a, b) = (f64::from(a), f64::from(b));
                rr += a * a;
                diff += (a - b) * (a - b);
            }
        }
        if b.is_finite() {
            s.emu_range = (s.emu_range.0.min(b), s.emu_range.1.max(b));
        }
    }
    s.rel_error = if broken {
        f64::INFINITY
    } else if rr > 0.0 {
        (diff / rr).sqrt()
    } else if diff == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    s
}
