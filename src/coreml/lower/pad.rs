//! MIL `pad` (coremltools iOS15 `tensor_operation.pad`): it pads the last N axes, and its
//! `replicate` mode pads at most the axis' size on each side. The IR's `Edge` pads any width,
//! so a wider one becomes a chain of `replicate` pads, each at most the size its input has by
//! then: repeating the edge of an edge-padded tensor repeats the same edge value.

use super::Lowerer;
use crate::coreml::mil::{arg, Immediate};
use crate::proto::coreml::mil_spec::Argument;
use edgec_passes::ir::{DType, TensorType};
use edgec_passes::op::PadMode;

use super::LowerError;

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
            let mut shape = ty.shape.clone();
            // Each step at least doubles a non-empty axis that is still short, so this ends
            // after log2(pad) steps; the importer refuses edge pads of empty axes.
            while let Some(step) = replicate_step(&shape, &remaining) {
                for (d, [before, after]) in step.iter().enumerate() {
                    shape[d] += before + after;
                    remaining[d][0] -= before;
                    remaining[d][1] -= after;
                }
                let name = self.step_name(n, "replicate");
                let inputs = self.pad_params(&name, &source, &step, mode, value, ty.dtype);
                self.emit("pad", &name, inputs, &TensorType::new(ty.dtype, shape.clone()))?;
                source = name;
            }
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
        let flat = pads[first..].iter().flat_map(|&[b, e]| [b as i32, e as i32]).collect();
        let mode = match mode {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "replicate",
        };
        vec![
            ("x".into(), arg(x)),
            self.param(n, "pad", Immediate::Ints(flat)),
            self.param(n, "mode", Immediate::Str(mode.into())),
            self.param(n, "constant_val", Immediate::Float(value, dtype)),
        ]
    }
}

/// The next `replicate` step while some side of `remaining` is wider than its axis in `shape`:
/// every side padded as far as MIL allows. `None` when one `pad` can do the rest.
fn replicate_step(shape: &[usize], remaining: &[[usize; 2]]) -> Option<Vec<[usize; 2]>> {
    let too_wide = shape.iter().zip(remaining).any(|(&d, &[b, a])| d > 0 && b.max(a) > d);
    too_wide.then(|| {
        shape
            .iter()
            .zip(remaining)
            .map(|(&d, &[b, a])| [b.min(d), a.min(d)])
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::replicate_step;

    /// 7 before and 2 after on an axis of 1: steps of 1 and 1, then 3 and 1, then the `pad` of the
    /// last 3 on an axis of 7.
    #[test]
    fn wide_edge_pads_grow_the_axis_step_by_step() {
        let mut shape = vec![3, 1];
        let mut remaining = vec![[0, 0], [7, 2]];
        let mut steps = Vec::new();
        while let Some(step) = replicate_step(&shape, &remaining) {
            for (d, [b, a]) in step.iter().enumerate() {
                shape[d] += b + a;
                remaining[d] = [remaining[d][0] - b, remaining[d][1] - a];
            }
            steps.push(step);
        }
        assert_eq!(steps, vec![vec![[0, 0], [1, 1]], vec![[0, 0], [3, 1]]]);
        assert_eq!(shape, vec![3, 7]);
        assert_eq!(remaining, vec![[0, 0], [3, 0]]);
        assert!(remaining.iter().zip(&shape).all(|(&[b, a], &d)| b.max(a) <= d));
    }

    #[test]
    fn pads_within_the_axis_need_no_step() {
        assert_eq!(replicate_step(&[2, 4], &[[2, 0], [4, 4]]), None);
    }
}
