//! Per-op precision in an fp16 program: which ops compute in fp32 (an [`Fp32Reason`] on the
//! node, read by `cast_to_fp16` and by anything after it), and the log of every decision taken
//! to keep fp16 from silently changing what the model computes ([`PrecisionDecision`] in
//! [`crate::Graph::precision_log`]).
//!
//! Deciding is the job of `guard_fp16_range` (static: constants that fp16 cannot hold) and of the
//! driver's calibration (dynamic: activations that overflow, underflow or lose their signal);
//! this module only holds the vocabulary.

use half::f16;
use std::fmt;

/// The largest finite fp16 magnitude.
pub const FP16_MAX: f32 = 65504.0;
/// The smallest positive fp16 (a subnormal, 2⁻²⁴).
pub const FP16_MIN_POSITIVE: f32 = 5.960_464_5e-8;
/// fp32 magnitudes from here on are deliberate "infinities" (attention-mask sentinels such as
/// `torch.finfo(float32).min`), as coremltools also treats them.
pub const SENTINEL_MAGNITUDE: f32 = 1e38;

/// How storing `v` as fp16 changes its class, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fp16Class {
    /// Survives as a finite value of the same sign (zero stays zero).
    Kept,
    /// A finite value beyond ±65,504: becomes ±inf.
    Overflows,
    /// A nonzero value that rounds to zero.
    FlushesToZero,
    /// A sentinel (|v| ≥ 1e38) standing for infinity.
    Sentinel,
}

pub fn fp16_class(v: f32) -> Fp16Class {
    if !v.is_finite() || v == 0.0 {
        return Fp16Class::Kept;
    }
    if v.abs() >= SENTINEL_MAGNITUDE {
        return Fp16Class::Sentinel;
    }
    let h = f16::from_f32(v);
    if h.is_infinite() {
        Fp16Class::Overflows
    } else if h.to_f32() == 0.0 {
        Fp16Class::FlushesToZero
    } else {
        Fp16Class::Kept
    }
}

/// Whether every element of `values` keeps its class in fp16.
pub fn fits_fp16(values: &[f32]) -> bool {
    values.iter().all(|&v| fp16_class(v) == Fp16Class::Kept)
}

/// How fp16 went wrong for an op, as found by running the program (calibration or the
/// divergence locator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Divergence {
    /// fp16 gives ±inf where fp32 is finite.
    Overflow,
    /// fp16 gives NaN where fp32 does not.
    Nan,
    /// A large share of the nonzero fp32 values become zero.
    Underflow,
    /// The op's result loses far more accuracy than its inputs had (subtracting nearly equal
    /// values, a variance of a large offset, ...).
    Cancellation,
}

impl Divergence {
    pub fn name(self) -> &'static str {
        match self {
            Divergence::Overflow => "overflow",
            Divergence::Nan => "NaN",
            Divergence::Underflow => "underflow",
            Divergence::Cancellation => "cancellation",
        }
    }
}

/// Why an op of an fp16 program computes in fp32.
#[derive(Clone, Debug, PartialEq)]
pub enum Fp32Reason {
    /// A constant operand has finite values fp16 cannot hold and no exact rewrite applies
    /// (coremltools' rule).
    ConstantOverflow { max_abs: f32 },
    /// A scalar multiplier or divisor that fp16 would round to 0.
    ConstantUnderflow { value: f32 },
    /// Running the program on calibration inputs showed fp16 failing here.
    Calibration { kind: Divergence, detail: String },
    /// The target has this op in fp32 only (MIL's recurrent layers take fp16 from iOS 17).
    Fp32OnlyOp,
}

impl fmt::Display for Fp32Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fp32Reason::ConstantOverflow { max_abs } => {
                write!(f, "constant overflow: |value| up to {max_abs:e} > {FP16_MAX}")
            }
            Fp32Reason::ConstantUnderflow { value } => {
                write!(f, "constant underflow: scalar {value:e} rounds to 0 in fp16")
            }
            Fp32Reason::Calibration { kind, detail } => write!(f, "calibration: {}: {detail}", kind.name()),
            Fp32Reason::Fp32OnlyOp => f.write_str("the deployment target has this op in fp32 only"),
        }
    }
}

/// What a pass did so that fp16 keeps the model's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecisionAction {
    /// The op stays in fp32 (with casts around it).
    KeptFp32,
    /// BatchNormalization's statistics folded, in fp32, into a per-channel scale and shift.
    FoldedBatchNorm,
    /// `x / c` became `x * (1/c)`.
    DivisorToMultiplier,
    /// `x * c` became `x / (1/c)`.
    MultiplierToDivisor,
    /// A small nonzero constant (an epsilon) is stored as the smallest fp16 of its sign, not 0.
    RaisedToFp16Minimum,
    /// A sentinel is stored as ±65,504 rather than ±inf (so `0 · sentinel` stays 0, not NaN).
    SaturatedSentinel,
}

impl PrecisionAction {
    pub fn name(self) -> &'static str {
        match self {
            PrecisionAction::KeptFp32 => "kept fp32",
            PrecisionAction::FoldedBatchNorm => "folded batch_norm",
            PrecisionAction::DivisorToMultiplier => "divisor -> multiplier",
            PrecisionAction::MultiplierToDivisor => "multiplier -> divisor",
            PrecisionAction::RaisedToFp16Minimum => "raised to fp16 minimum",
            PrecisionAction::SaturatedSentinel => "saturated sentinel",
        }
    }
}

/// One decision, for `-v`, the compile summary and the package metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionDecision {
    /// The ONNX node concerned.
    pub origin: String,
    /// The IR op name (`batch_norm`, `real_div`, ...).
    pub op: &'static str,
    pub action: PrecisionAction,
    /// What was found, with the values at fault.
    pub detail: String,
}

impl fmt::Display for PrecisionDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} ({}): {}",
            self.action.name(),
            self.origin,
            self.op,
            self.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(fp16_class(1.0), Fp16Class::Kept);
        assert_eq!(fp16_class(65504.0), Fp16Class::Kept);
        assert_eq!(fp16_class(497_160.0), Fp16Class::Overflows);
        assert_eq!(fp16_class(-1e9), Fp16Class::Overflows);
        assert_eq!(fp16_class(f32::MIN), Fp16Class::Sentinel);
        assert_eq!(fp16_class(1e-12), Fp16Class::FlushesToZero);
        assert_eq!(fp16_class(FP16_MIN_POSITIVE), Fp16Class::Kept);
        assert_eq!(fp16_class(0.0), Fp16Class::Kept);
        assert_eq!(fp16_class(f32::INFINITY), Fp16Class::Kept);
    }
}

/// A node as it was before `guard_fp16_range` changed it for fp16 storage (a folded BatchNorm,
/// a raised epsilon, a saturated sentinel). If the node is later kept in fp32, this is restored:
/// an fp32 op computes exactly what the model says.
#[derive(Clone, Debug)]
pub struct Fp16Rewrite {
    pub node: crate::ir::NodeId,
    pub op: crate::op::Op,
    pub inputs: Vec<crate::ir::ValueId>,
}
