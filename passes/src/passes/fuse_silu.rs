//! `x · sigmoid(x)` (SiLU / Swish, as exporters write it) becomes one `silu` op. The sigmoid
//! must be read only by the product: a sigmoid also used elsewhere stays.

use crate::ir::Graph;
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::pass::{Pass, PassError, PassOptions};
use crate::pattern::Matcher;

pub struct FuseSilu;

impl Pass for FuseSilu {
    fn name(&self) -> &'static str {
        "fuse_silu"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        let mut rewritten = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            if node.op != Op::Binary(BinaryOp::Mul) {
                return Ok(None);
            }
            let m = Matcher::new(graph, &uses);
            let (a, b) = (node.inputs[0], node.inputs[1]);
            let gated = |x, gate| {
                m.private_producer(gate)
                    .is_some_and(|n| n.op == Op::Sigmoid && n.inputs[0] == x)
            };
            let x = match () {
                _ if gated(a, b) => a,
                _ if gated(b, a) => b,
                _ => return Ok(None),
            };
            let (name, origin) = (graph.value(node.outputs[0]).name.clone(), node.origin.clone());
            let out = graph
                .add_node(Op::Unary(UnaryOp::Silu), vec![x], &[name], origin.clone())
                .map_err(|e| PassError {
                    pass: "fuse_silu",
                    origin,
                    message: e.0,
                })?;
            rewritten += 1;
            Ok(Some(out))
        })?;
        graph.count_rewrites("silu from x*sigmoid(x)", rewritten);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}
