//! `--gelu fast` (and `auto` in fp16): exact GELU becomes the tanh approximation, which the
//! Neural Engine runs without `erf`. The two differ by at most 4.8e-4 absolute (near x = ±2),
//! about fp16's rounding step at those values.

use crate::ir::Graph;
use crate::op::{GeluMode, Op, UnaryOp};
use crate::pass::{GeluChoice, Pass, PassError, PassOptions};

pub struct FastGelu;

impl Pass for FastGelu {
    fn name(&self) -> &'static str {
        "fast_gelu"
    }

    fn enabled(&self, options: &PassOptions) -> bool {
        options.gelu.resolve(options.precision) == GeluChoice::Fast
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut rewritten = 0;
        for &id in &graph.order {
            let op = &mut graph.nodes[id.index()].op;
            if *op == Op::Unary(UnaryOp::Gelu { mode: GeluMode::Exact }) {
                *op = Op::Unary(UnaryOp::Gelu { mode: GeluMode::Tanh });
                rewritten += 1;
            }
        }
        graph.count_rewrites("gelu exact -> tanh approximation (--gelu fast)", rewritten);
        Ok(())
    }
}
