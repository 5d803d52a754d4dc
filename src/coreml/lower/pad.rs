//! MIL `pad` (coremltools iOS15 `tensor_operation.pad`): it pads the last N axes, and its
//! `replicate` mode pads at most the axis' size on each side. The IR's `Edge` pads any width,
//! so a wider one becomes a chain of `replicate` pads, each at most the size its input has by
//! then: repeating the edge of an edge-padded tensor repeats the same edge value.

use super::Lowerer;
use crate::coreml::mil::{arg, Immediate};
use crate::proto::coreml::mil_spec::Argument;
use edgec_passes::ir::{DType, TensorType};
use edgec_passes::op::PadMode;

use super::{flat_pads, LowerError};

impl Lowerer<'_> {
    /// The inputs of the `pad` op that produces `n` from `x` (of type `ty`). An edge pad wider
    /// than its axis first emits the `replicate` steps it needs; the returned inputs then read
    /// the last step.
    pub(super) fn pad_inputs(
        &mut self,
        n: &str,
        x: &str,
        ty: &TensorType,
        pads: &[[usize; 2]],
        mode: PadMode,
        value: f32,
    ) -> Result<Vec<(String, Argument)>, LowerError> {
        let mut source = x.to_string();
        let mut remaining = pads.to_vec();
        if mode == PadMode::Edge {
            let (steps, rest) = replicate_steps(&ty.shape, pads);
            for (step, shape) in steps {
                let name = self.step_name(n, "replicate");
                let inputs = self.pad_params(&name, &source, &step, mode, value, ty.dtype);
                self.emit("pad", &name, inputs, &TensorType::new(ty.dtype, shape))?;
                source = name;
            }
            remaining = rest;
        }
        Ok(self.pad_params(n, &source, &remaining, mode, value, ty.dtype))
    }

    fn pad_params(
        &mut self,
        n: &str,
        x: &str,
        pads: &[[usize; 2]],
        mode: PadMode,
        value: f32,
        dtype: DType,
    ) -> Vec<(String, Argument)> {
        // MIL pads the last N axes; start at the first padded one.
        let first = pads
            .iter()
            .position(|p| p[0] + p[1] > 0)
            .unwrap_or(pads.len().saturating_sub(1));
        let mode = match mode {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "replicate",
        };
        vec![
            ("x".into(), arg(x)),
            self.param(n, "pad", flat_pads(&pads[first..])),
            self.param(n, "mode", Immediate::Str(mode.into())),
            self.param(n, "constant_val", Immediate::Float(value, dtype)),
        ]
    }
}

/// One `replicate` pad of a chain: its pads per axis and the shape after it.
type ReplicateStep = (Vec<[usize; 2]>, Vec<usize>);

/// The `replicate` steps an edge pad of `pads` on `shape` needs before one MIL `pad` can do the
/// rest: each step pads every side as far as MIL allows (at most the axis' size by then), with
/// the shape after it. Returns the steps and what is left for the last `pad`. Each step at least
/// doubles a non-empty axis that is still short, so there are about log2(pad) of them; empty
/// axes are skipped (the importer refuses edge pads of them).
fn replicate_steps(shape: &[usize], pads: &[[usize; 2]]) -> (Vec<ReplicateStep>, Vec<[usize; 2]>) {
    let (mut shape, mut remaining) = (shape.to_vec(), pads.to_vec());
    let mut steps = Vec::new();
    while shape.iter().zip(&remaining).any(|(&d, &[b, a])| d > 0 && b.max(a) > d) {
        let step: Vec<[usize; 2]> = shape
            .iter()
            .zip(&remaining)
            .map(|(&d, &[b, a])| [b.min(d), a.min(d)])
            .collect();
        for (d, &[before, after]) in step.iter().enumerate() {
            shape[d] += before + after;
            remaining[d] = [remaining[d][0] - before, remaining[d][1] - after];
        }
        steps.push((step, shape.clone()));
    }
    (steps, remaining)
}

#[cfg(test)]
mod tests {
    use super::replicate_steps;

    /// 7 before and 2 after on an axis of 1: steps of 1 and 1, then 3 and 1, then the `pad` of the
    /// last 3 on an axis of 7.
    #[test]
    fn wide_edge_pads_grow_the_axis_step_by_step() {
        let (steps, remaining) = replicate_steps(&[3, 1], &[[0, 0], [7, 2]]);
        assert_eq!(
            steps,
            vec![(vec![[0, 0], [1, 1]], vec![3, 3]), (vec![[0, 0], [3, 1]], vec![3, 7])]
        );
        assert_eq!(remaining, vec![[0, 0], [3, 0]]);
    }

    #[test]
    fn pads_within_the_axis_need_no_step() {
        let (steps, remaining) = replicate_steps(&[2, 4], &[[2, 0], [4, 4]]);
        assert!(steps.is_empty());
        assert_eq!(remaining, vec![[2, 0], [4, 4]]);
    }
}
