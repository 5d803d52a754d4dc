//! Chains of clamps become one op: `min(max(x, lo), hi)` (either order), and any clamp
//! (`relu`, `relu6`, `clip`, or `maximum`/`minimum` with a scalar constant) applied to the
//! result of another. The bounds compose as `[max(lo₁, lo₂), min(hi₁, hi₂)]`; the result is
//! `relu6` for `[0, 6]`, `relu` for `[0, ∞)`, `clip` for other finite bounds, and `maximum` or
//! `minimum` for a one-sided bound. Disjoint bounds (a constant result) are left alone, and so
//! is a chain whose inner result has another use.

use crate::ir::{Graph, Node, Tensor, ValueId};
use crate::op::{BinaryOp, Op};
use crate::pass::{Pass, PassError, PassOptions};
use crate::pattern::Matcher;

pub struct FuseClip;

impl Pass for FuseClip {
    fn name(&self) -> &'static str {
        "fuse_clip"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut uses = graph.use_counts();
        let mut rewritten = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let found = {
                let m = Matcher::new(graph, &uses);
                clamp_of(&m, node).and_then(|(inner_out, outer)| {
                    let (x, inner) = clamp_of(&m, m.private_producer(inner_out)?)?;
                    Some((x, inner, outer))
                })
            };
            let Some((x, inner, outer)) = found else {
                return Ok(None);
            };
            let (lo, hi) = (inner.0.max(outer.0), inner.1.min(outer.1));
            let out_ty = graph.ty(node.outputs[0]);
            if lo > hi || graph.ty(x) != out_ty {
                return Ok(None);
            }
            let (name, origin) = (graph.value(node.outputs[0]).name.clone(), node.origin.clone());
            let dtype = out_ty.dtype;
            let bound = |graph: &mut Graph, v: f32, what: &str| {
                graph.add_const(format!("{name}_{what}"), Tensor::scalar_f32(v).cast(dtype))
            };
            let (op, inputs) = match (lo, hi) {
                (0.0, 6.0) => (Op::Relu6, vec![x]),
                (0.0, f32::INFINITY) => (Op::Relu, vec![x]),
                (f32::NEG_INFINITY, f32::INFINITY) => return Ok(Some(vec![x])),
                (lo, f32::INFINITY) => (Op::Binary(BinaryOp::Maximum), vec![x, bound(graph, lo, "min")]),
                (f32::NEG_INFINITY, hi) => (Op::Binary(BinaryOp::Minimum), vec![x, bound(graph, hi, "max")]),
                (lo, hi) => (
                    Op::Clip {
                        min: Some(lo),
                        max: Some(hi),
                    },
                    vec![x],
                ),
            };
            let out = graph
                .add_node(op, inputs, &[name], origin.clone())
                .map_err(|e| PassError {
                    pass: "fuse_clip",
                    origin,
                    message: e.0,
                })?;
            // A clamp of this result may merge with it in turn: give the new value its uses.
            uses.resize(graph.values.len(), 0);
            uses[out[0].index()] = uses[graph.node(id).outputs[0].index()];
            rewritten += 1;
            Ok(Some(out))
        })?;
        graph.count_rewrites("clamp chains merged into one op", rewritten);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}

/// If `node` clamps one value to constant bounds: that value and the bounds `(lo, hi)`.
fn clamp_of(m: &Matcher, node: &Node) -> Option<(ValueId, (f32, f32))> {
    let x = *node.inputs.first()?;
    let bounds = match node.op {
        Op::Relu => (0.0, f32::INFINITY),
        Op::Relu6 => (0.0, 6.0),
        Op::Clip {
            min: Some(lo),
            max: Some(hi),
        } if lo <= hi => (lo, hi),
        Op::Binary(op @ (BinaryOp::Maximum | BinaryOp::Minimum)) => {
            let (x, c) = m.binary_with_scalar(node, op)?;
            if c.is_nan() {
                return None;
            }
            let bounds = match op {
                BinaryOp::Maximum => (c, f32::INFINITY),
                _ => (f32::NEG_INFINITY, c),
            };
            return Some((x, bounds));
        }
        _ => return None,
    };
    Some((x, bounds))
}
