//! Small helpers the pattern-rewriting passes share: who produces a value, whether a value may
//! be folded into a fused op (read once, not published), and scalar constants compared with a
//! tolerance that fits their element type.

use crate::ir::{DType, Graph, Node, ValueId};
use crate::op::{BinaryOp, Op};

/// A read-only view of a graph with its use counts, for matching patterns.
///
/// Passes match inside [`Graph::rewrite_nodes`], so they compute the use counts once before
/// the sweep; a value created during the sweep counts as unused, so it is never swallowed.
pub struct Matcher<'g> {
    pub graph: &'g Graph,
    uses: &'g [usize],
}

impl<'g> Matcher<'g> {
    /// `uses` from [`Graph::use_counts`].
    pub fn new(graph: &'g Graph, uses: &'g [usize]) -> Self {
        Matcher { graph, uses }
    }

    /// How many live node inputs and graph outputs read `v` (an operand read twice by one node
    /// counts twice).
    pub fn uses(&self, v: ValueId) -> usize {
        self.uses.get(v.index()).copied().unwrap_or(0)
    }

    /// Whether `v` is an intermediate a fused op may swallow: read by exactly `expected` node
    /// inputs and not a graph output.
    pub fn private(&self, v: ValueId, expected: usize) -> bool {
        self.uses(v) == expected && !self.graph.is_graph_output(v)
    }

    /// The node producing `v`, if any.
    pub fn producer(&self, v: ValueId) -> Option<&'g Node> {
        self.graph.producer(v).map(|n| self.graph.node(n))
    }

    /// The node producing `v` when it is a private intermediate (read once).
    pub fn private_producer(&self, v: ValueId) -> Option<&'g Node> {
        if self.private(v, 1) {
            self.producer(v)
        } else {
            None
        }
    }

    /// The value of a constant holding a single element (any shape of one element).
    pub fn scalar(&self, v: ValueId) -> Option<f32> {
        let t = self.graph.constant(v)?;
        if t.ty.num_elements() != 1 || !t.ty.dtype.is_float() {
            return None;
        }
        t.to_f32_vec().first().copied()
    }

    /// Whether `v` is a one-element float constant close to `expected` (see [`close_to`]).
    pub fn scalar_is(&self, v: ValueId, expected: f64) -> bool {
        self.scalar(v)
            .is_some_and(|c| close_to(c, expected, self.graph.ty(v).dtype))
    }

    /// For `node = op(a, b)` with one operand a scalar constant: the other operand and the
    /// constant. `Add` and `Mul` accept the constant on either side; other ops on the right.
    pub fn binary_with_scalar(&self, node: &Node, op: BinaryOp) -> Option<(ValueId, f32)> {
        if node.op != Op::Binary(op) {
            return None;
        }
        let (a, b) = (node.inputs[0], node.inputs[1]);
        if let Some(c) = self.scalar(b) {
            return Some((a, c));
        }
        let commutes = matches!(op, BinaryOp::Add | BinaryOp::Mul);
        match self.scalar(a) {
            Some(c) if commutes => Some((b, c)),
            _ => None,
        }
    }

    /// The leaves of the product `v`: `v` itself unless it is a `Mul`, else the factors of its
    /// operands, following private `Mul`s only (at most `limit` leaves; `None` beyond).
    pub fn mul_factors(&self, v: ValueId, limit: usize) -> Option<Vec<ValueId>> {
        let mut leaves = Vec::new();
        self.collect_factors(v, true, &mut leaves, limit)?;
        Some(leaves)
    }

    fn collect_factors(&self, v: ValueId, root: bool, leaves: &mut Vec<ValueId>, limit: usize) -> Option<()> {
        let inner = if root {
            self.producer(v)
        } else {
            self.private_producer(v)
        };
        match inner {
            Some(node) if node.op == Op::Binary(BinaryOp::Mul) => {
                for &operand in &node.inputs {
                    self.collect_factors(operand, false, leaves, limit)?;
                }
            }
            _ => leaves.push(v),
        }
        (leaves.len() <= limit).then_some(())
    }
}

/// Whether `value` (a constant stored as `dtype`) is `expected` as the exporter meant it:
/// within a relative 1e-5 for fp32 (exporters write √2 and friends rounded to fp32) and
/// 1e-3 for fp16 (the type's own rounding step is 2⁻¹¹ relative).
pub fn close_to(value: f32, expected: f64, dtype: DType) -> bool {
    let tolerance = if dtype == DType::F16 { 1e-3 } else { 1e-5 };
    let value = f64::from(value);
    (value - expected).abs() <= tolerance * expected.abs().max(f64::MIN_POSITIVE)
}

/// Whether the unordered pair `(a, b)` is `(x, y)` in either order.
pub fn same_pair(a: ValueId, b: ValueId, x: ValueId, y: ValueId) -> bool {
    (a == x && b == y) || (a == y && b == x)
}
