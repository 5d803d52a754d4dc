//! A LayerNorm written out by an older exporter becomes one `layer_norm`:
//!
//! ```text
//! mean = reduce_mean(x, axes)           d = x - mean
//! var  = reduce_mean(d², axes)          (d² as pow(d, 2) or d·d)
//! y    = d / sqrt(var + ε)              (or d · reciprocal(sqrt(var + ε)))
//! ```
//!
//! over the last axes of `x`, then a following `· γ` and `+ β` with constants shaped like
//! those axes are absorbed into the op's gamma and beta (also for a `layer_norm` imported as
//! such). Every intermediate must be read only by the pattern; otherwise the primitives stay.

use crate::ir::{Graph, Node, Tensor, ValueId};
use crate::op::{BinaryOp, Op, ReduceKind, UnaryOp};
use crate::pass::{Pass, PassError, PassOptions};
use crate::pattern::Matcher;

pub struct FuseLayerNorm;

impl Pass for FuseLayerNorm {
    fn name(&self) -> &'static str {
        "fuse_layer_norm"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        let mut rewritten = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Some((x, axes, epsilon)) = match_normalisation(&Matcher::new(graph, &uses), node) else {
                return Ok(None);
            };
            let (name, origin) = (graph.value(node.outputs[0]).name.clone(), node.origin.clone());
            // No gamma and beta yet (MIL's default 1 and 0): `absorb_affine` may bring them.
            let out = graph
                .add_node(Op::LayerNorm { axes, epsilon }, vec![x], &[name], origin.clone())
                .map_err(|e| PassError {
                    pass: "fuse_layer_norm",
                    origin,
                    message: e.0,
                })?;
            rewritten += 1;
            Ok(Some(out))
        })?;
        graph.count_rewrites("layer_norm from primitives", rewritten);
        absorb_affine(graph);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}

/// If `node` is the division ending a written-out normalisation: `x`, the axes and ε.
fn match_normalisation(m: &Matcher, node: &Node) -> Option<(ValueId, Vec<usize>, f32)> {
    // d / s, or d · reciprocal(s) in either order.
    let (d, s) = match node.op {
        Op::Binary(BinaryOp::Div) => (node.inputs[0], node.inputs[1]),
        Op::Binary(BinaryOp::Mul) => {
            let reciprocal = |v: ValueId| {
                m.private_producer(v)
                    .filter(|n| n.op == Op::Unary(UnaryOp::Reciprocal))
                    .map(|n| n.inputs[0])
            };
            let (a, b) = (node.inputs[0], node.inputs[1]);
            match (reciprocal(b), reciprocal(a)) {
                (Some(s), _) => (a, s),
                (None, Some(s)) => (b, s),
                _ => return None,
            }
        }
        _ => return None,
    };
    let sqrt = m.private_producer(s).filter(|n| n.op == Op::Unary(UnaryOp::Sqrt))?;
    let (var, epsilon) = m.binary_with_scalar(m.private_producer(sqrt.inputs[0])?, BinaryOp::Add)?;
    let var_node = m.private_producer(var)?;
    let (square, axes) = mean_over_last_axes(m, var_node)?;
    let square_node = m.private_producer(square)?;
    let squares_d = match square_node.op {
        Op::Binary(BinaryOp::Pow) => m
            .binary_with_scalar(square_node, BinaryOp::Pow)
            .is_some_and(|(base, e)| base == d && e == 2.0),
        Op::Binary(BinaryOp::Mul) => square_node.inputs[0] == d && square_node.inputs[1] == d,
        _ => false,
    };
    // d is read by the square (once or twice) and by the division, nothing else.
    let d_reads = if square_node.op == Op::Binary(BinaryOp::Pow) {
        2
    } else {
        3
    };
    if !squares_d || !m.private(d, d_reads) || epsilon < 0.0 {
        return None;
    }
    let centre = m.producer(d).filter(|n| n.op == Op::Binary(BinaryOp::Sub))?;
    let (x, mean) = (centre.inputs[0], centre.inputs[1]);
    let (mean_input, mean_axes) = mean_over_last_axes(m, m.private_producer(mean)?)?;
    let float = m.graph.ty(x).dtype.is_float();
    (mean_input == x && mean_axes == axes && float && m.graph.ty(d) == m.graph.ty(x)).then_some((x, axes, epsilon))
}

/// If `node` is a `reduce_mean` keeping dims over the trailing axes of its input: the input
/// and the axes.
fn mean_over_last_axes(m: &Matcher, node: &Node) -> Option<(ValueId, Vec<usize>)> {
    let Op::Reduce {
        kind: ReduceKind::Mean,
        axes,
        keep_dims: true,
    } = &node.op
    else {
        return None;
    };
    let rank = m.graph.ty(node.inputs[0]).rank();
    let mut sorted = axes.clone();
    sorted.sort_unstable();
    let trailing = !sorted.is_empty() && sorted.iter().enumerate().all(|(i, &a)| a == rank - sorted.len() + i);
    trailing.then(|| (node.inputs[0], sorted))
}

/// `layer_norm(..) · γ` and `layer_norm(..) + β` with constant γ/β shaped like the normalised
/// axes (or one element) fold into the op's gamma and beta.
fn absorb_affine(graph: &mut Graph) {
    let mut uses = graph.use_counts();
    let _ = graph.rewrite_nodes(|graph, id| {
        let node = graph.node(id).clone();
        let Op::Binary(kind @ (BinaryOp::Mul | BinaryOp::Add)) = node.op else {
            return Ok::<_, std::convert::Infallible>(None);
        };
        for (ln_side, const_side) in [(0, 1), (1, 0)] {
            let (ln_out, operand) = (node.inputs[ln_side], node.inputs[const_side]);
            let Some(ln_id) = graph.producer(ln_out) else {
                continue;
            };
            let ln = graph.node(ln_id);
            let (Op::LayerNorm { axes, .. }, Some(c)) = (&ln.op, graph.constant(operand)) else {
                continue;
            };
            let private = uses.get(ln_out.index()) == Some(&1) && !graph.is_graph_output(ln_out);
            let ty = graph.ty(ln_out);
            if !private || graph.ty(node.outputs[0]) != ty || c.ty.dtype != ty.dtype {
                continue;
            }
            let norm_shape: Vec<usize> = axes.iter().map(|&a| ty.shape[a]).collect();
            let Some(values) = per_normalised_element(c, &norm_shape, ty.rank()) else {
                continue;
            };
            let count = values.len();
            let (mut gamma, mut beta) = match ln.inputs[..] {
                [_] => (vec![1.0; count], vec![0.0; count]),
                [_, gamma, beta] => match (graph.constant(gamma), graph.constant(beta)) {
                    (Some(gamma), Some(beta)) => (gamma.to_f32_vec(), beta.to_f32_vec()),
                    _ => continue,
                },
                _ => continue,
            };
            match kind {
                BinaryOp::Mul => {
                    gamma.iter_mut().zip(&values).for_each(|(g, c)| *g *= c);
                    beta.iter_mut().zip(&values).for_each(|(b, c)| *b *= c);
                }
                _ => beta.iter_mut().zip(&values).for_each(|(b, c)| *b += c),
            }
            let dtype = ty.dtype;
            let name = graph.value(node.outputs[0]).name.clone();
            let gamma = graph.add_const(
                format!("{name}_gamma"),
                Tensor::from_f32(norm_shape.clone(), &gamma).cast(dtype),
            );
            let beta = graph.add_const(format!("{name}_beta"), Tensor::from_f32(norm_shape, &beta).cast(dtype));
            uses.resize(graph.values.len(), 0);
            uses[ln_out.index()] = uses[node.outputs[0].index()];
            let ln = graph.node_mut(ln_id);
            ln.inputs.truncate(1);
            ln.inputs.extend([gamma, beta]);
            graph.value_mut(ln_out).name = name;
            return Ok(Some(vec![ln_out]));
        }
        Ok(None)
    });
}

/// `c`'s values, one per element of the normalised axes, when `c` broadcasts along them only
/// (shape `norm_shape` after leading ones, or a single element).
fn per_normalised_element(c: &Tensor, norm_shape: &[usize], rank: usize) -> Option<Vec<f32>> {
    let count: usize = norm_shape.iter().product();
    let values = c.to_f32_vec();
    if values.len() == 1 {
        return Some(vec![values[0]; count]);
    }
    let shape = &c.ty.shape;
    let lead = shape.len().checked_sub(norm_shape.len())?;
    let fits = shape.len() <= rank && shape[..lead].iter().all(|&d| d == 1) && shape[lead..] == *norm_shape;
    fits.then_some(values)
}
