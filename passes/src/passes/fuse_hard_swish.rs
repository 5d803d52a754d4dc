//! Hard swish written out, `x · relu6(x + 3) / 6` (the `/ 6` as a division or a product with
//! 1/6, the factors in any order), becomes `x · hard_sigmoid(x, 1/6, 1/2)`: MIL has no
//! hard-swish op, and this is the form ONNX `HardSwish` lowers to (two ops instead of four).
//! Only HardSwish's own constants match; `x · hard_sigmoid(x)` with other constants (ONNX
//! HardSigmoid defaults to alpha 0.2) is a different function and stays.

use crate::ir::{Graph, ValueId};
use crate::op::{BinaryOp, Op};
use crate::pass::{Pass, PassError, PassOptions};
use crate::pattern::{close_to, Matcher};

pub struct FuseHardSwish;

impl Pass for FuseHardSwish {
    fn name(&self) -> &'static str {
        "fuse_hard_swish"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        let mut rewritten = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Some(x) = match_hard_swish(&Matcher::new(graph, &uses), id) else {
                return Ok(None);
            };
            let (name, origin) = (graph.value(node.outputs[0]).name.clone(), node.origin.clone());
            let err = |e: crate::op::InferError| PassError {
                pass: "fuse_hard_swish",
                origin: origin.clone(),
                message: e.0,
            };
            let gate = graph
                .add_node(
                    Op::HardSigmoid {
                        alpha: 1.0 / 6.0,
                        beta: 0.5,
                    },
                    vec![x],
                    &[format!("{name}_gate")],
                    origin.clone(),
                )
                .map_err(err)?[0];
            let out = graph
                .add_node(Op::Binary(BinaryOp::Mul), vec![x, gate], &[name], origin.clone())
                .map_err(err)?;
            rewritten += 1;
            Ok(Some(out))
        })?;
        graph.count_rewrites("hard swish from x*relu6(x+3)/6", rewritten);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}

/// The `x` of a hard swish ending at node `root`.
fn match_hard_swish(m: &Matcher, root: crate::ir::NodeId) -> Option<ValueId> {
    let node = m.graph.node(root);
    let out = node.outputs[0];
    let dtype = m.graph.ty(out).dtype;
    // The product's factors and the constant scale they are multiplied by.
    let (mut scale, factors) = match m.binary_with_scalar(node, BinaryOp::Div) {
        Some((product, divisor)) => {
            m.private_producer(product)?;
            (1.0 / f64::from(divisor), m.mul_factors(product, 3)?)
        }
        None if node.op == Op::Binary(BinaryOp::Mul) => (1.0, m.mul_factors(out, 3)?),
        None => return None,
    };
    let mut operands = Vec::new();
    for f in factors {
        if let Some(c) = m.scalar(f) {
            scale *= f64::from(c);
        } else if let Some((r, divisor)) = m
            .private_producer(f)
            .and_then(|n| m.binary_with_scalar(n, BinaryOp::Div))
        {
            scale /= f64::from(divisor);
            operands.push(r);
        } else {
            operands.push(f);
        }
    }
    if !close_to(scale as f32, 1.0 / 6.0, dtype) {
        return None;
    }
    let [a, b] = operands[..] else {
        return None;
    };
    let shifted_relu6 = |x: ValueId, r: ValueId| {
        let relu6 = m.private_producer(r).filter(|n| n.op == Op::Relu6)?;
        let add = m.private_producer(relu6.inputs[0])?;
        let (input, c) = m.binary_with_scalar(add, BinaryOp::Add)?;
        (input == x && close_to(c, 3.0, dtype)).then_some(x)
    };
    shifted_relu6(a, b).or_else(|| shifted_relu6(b, a))
}
