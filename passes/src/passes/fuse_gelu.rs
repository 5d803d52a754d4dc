//! Recognise GELU written out in primitives and replace it with one `gelu` op:
//!
//! - exact: `x · 0.5 · (1 + erf(x / √2))`, the three factors in any order and grouping, the
//!   argument as `x / √2` or `x · (1/√2)`;
//! - tanh (GPT-2's `gelu_new`): `x · 0.5 · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`, with
//!   `x³` as `pow(x, 3)` or `x · x · x`;
//! - sigmoid: `x · sigmoid(1.702 · x)`.
//!
//! Every intermediate must be read only by the pattern (a second use keeps the primitives) and
//! every constant must be the formula's within [`close_to`](crate::pattern::close_to)'s tolerance; anything else stays.

use crate::ir::{Graph, ValueId};
use crate::op::{BinaryOp, GeluMode, Op, UnaryOp};
use crate::pass::{Pass, PassError, PassOptions};
use crate::pattern::Matcher;

pub struct FuseGelu;

const SQRT_2: f64 = std::f64::consts::SQRT_2;
/// √(2/π), the tanh form's inner scale.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const CUBIC: f64 = 0.044_715;
const SIGMOID_SCALE: f64 = 1.702;

impl Pass for FuseGelu {
    fn name(&self) -> &'static str {
        "fuse_gelu"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        let mut counts = [0usize; 3];
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            if node.op != Op::Binary(BinaryOp::Mul) {
                return Ok(None);
            }
            let Some((x, mode)) = match_gelu(&Matcher::new(graph, &uses), node.outputs[0]) else {
                return Ok(None);
            };
            let (name, origin) = (graph.value(node.outputs[0]).name.clone(), node.origin.clone());
            let out = graph
                .add_node(Op::Unary(UnaryOp::Gelu { mode }), vec![x], &[name], origin.clone())
                .map_err(|e| PassError {
                    pass: "fuse_gelu",
                    origin,
                    message: e.0,
                })?;
            counts[mode as usize] += 1;
            Ok(Some(out))
        })?;
        for (mode, count) in [GeluMode::Exact, GeluMode::Tanh, GeluMode::Sigmoid]
            .into_iter()
            .zip(counts)
        {
            graph.count_rewrites(format!("gelu ({}) from primitives", mode.name()), count);
        }
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}

/// The input and formula of the GELU whose last product is `out`.
fn match_gelu(m: &Matcher, out: ValueId) -> Option<(ValueId, GeluMode)> {
    let factors = m.mul_factors(out, 3)?;
    match factors[..] {
        [a, b] => sigmoid_form(m, a, b).or_else(|| sigmoid_form(m, b, a)),
        [_, _, _] => {
            let half = factors.iter().position(|&f| m.scalar_is(f, 0.5))?;
            let rest: Vec<ValueId> = (0..3).filter(|&i| i != half).map(|i| factors[i]).collect();
            one_plus_form(m, rest[0], rest[1]).or_else(|| one_plus_form(m, rest[1], rest[0]))
        }
        _ => None,
    }
}

/// `x · sigmoid(1.702 · x)`, with `gate` the sigmoid.
fn sigmoid_form(m: &Matcher, x: ValueId, gate: ValueId) -> Option<(ValueId, GeluMode)> {
    let sigmoid = m.private_producer(gate).filter(|n| n.op == Op::Sigmoid)?;
    let scaled = m.private_producer(sigmoid.inputs[0])?;
    let (input, c) = m.binary_with_scalar(scaled, BinaryOp::Mul)?;
    let scale_ok = crate::pattern::close_to(c, SIGMOID_SCALE, m.graph.ty(scaled.inputs[0]).dtype);
    (input == x && scale_ok).then_some((x, GeluMode::Sigmoid))
}

/// `x · 0.5 · (1 + f(..x..))` with `sum` the `1 + f` and `f` erf or tanh of the right argument.
fn one_plus_form(m: &Matcher, x: ValueId, sum: ValueId) -> Option<(ValueId, GeluMode)> {
    let add = m.private_producer(sum)?;
    let (f_out, one) = m.binary_with_scalar(add, BinaryOp::Add)?;
    if !crate::pattern::close_to(one, 1.0, m.graph.ty(sum).dtype) {
        return None;
    }
    let f = m.private_producer(f_out)?;
    match f.op {
        Op::Unary(UnaryOp::Erf) if erf_argument_is(m, f.inputs[0], x) => Some((x, GeluMode::Exact)),
        Op::Unary(UnaryOp::Tanh) if tanh_argument_is(m, f.inputs[0], x) => Some((x, GeluMode::Tanh)),
        _ => None,
    }
}

/// `arg` is `x / √2` or `x · (1/√2)`.
fn erf_argument_is(m: &Matcher, arg: ValueId, x: ValueId) -> bool {
    let Some(node) = m.private_producer(arg) else {
        return false;
    };
    let dtype = m.graph.ty(arg).dtype;
    if let Some((input, c)) = m.binary_with_scalar(node, BinaryOp::Div) {
        return input == x && crate::pattern::close_to(c, SQRT_2, dtype);
    }
    m.binary_with_scalar(node, BinaryOp::Mul)
        .is_some_and(|(input, c)| input == x && crate::pattern::close_to(c, 1.0 / SQRT_2, dtype))
}

/// `arg` is `√(2/π) · (x + 0.044715 · x³)`.
fn tanh_argument_is(m: &Matcher, arg: ValueId, x: ValueId) -> bool {
    let dtype = m.graph.ty(arg).dtype;
    let close = |c: f32, expected: f64| crate::pattern::close_to(c, expected, dtype);
    let Some((sum, scale)) = m
        .private_producer(arg)
        .and_then(|n| m.binary_with_scalar(n, BinaryOp::Mul))
    else {
        return false;
    };
    let Some(add) = m.private_producer(sum).filter(|n| n.op == Op::Binary(BinaryOp::Add)) else {
        return false;
    };
    let cubic_term = match add.inputs[..] {
        [a, b] if a == x => b,
        [a, b] if b == x => a,
        _ => return false,
    };
    if !close(scale, SQRT_2_OVER_PI) || !m.private(cubic_term, 1) {
        return false;
    }
    // 0.044715 · x³ as a product: [c, pow(x, 3)] or [c, x, x, x] in any grouping.
    let Some(factors) = m.mul_factors(cubic_term, 4) else {
        return false;
    };
    let Some(at) = factors.iter().position(|&f| m.scalar_is(f, CUBIC)) else {
        return false;
    };
    let rest: Vec<ValueId> = factors
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != at)
        .map(|(_, &f)| f)
        .collect();
    match rest[..] {
        [x1, x2, x3] => [x1, x2, x3].iter().all(|&f| f == x),
        [cube] => m
            .private_producer(cube)
            .and_then(|n| m.binary_with_scalar(n, BinaryOp::Pow))
            .is_some_and(|(base, e)| base == x && e == 3.0),
        _ => false,
    }
}
