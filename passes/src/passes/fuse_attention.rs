//! Attention written as `softmax(q·kᵀ·scale + mask) · v` (the eager exports of BERT, ViT,
//! GPT-2, Whisper) becomes one `scaled_dot_product_attention`, on targets that have it
//! ([`PassOptions::fused_attention`]).
//!
//! The fused op scales by `1/√E` itself (E = the query's last axis), so a model whose scale
//! differs gets the ratio folded into `q` (one `mul`). `kᵀ` is usually a transpose of the
//! keys: its permutation is composed back to `[.., S, E]` (often the identity). The scale may be
//! a division or a product with a scalar constant, the mask any additive operand that does not
//! widen the scores. Intermediates read elsewhere (attention probabilities returned as an
//! output, say) keep the primitives.

use crate::ir::{Graph, Tensor, ValueId};
use crate::op::{BinaryOp, InferError, Op};
use crate::pass::{Pass, PassError, PassOptions};
use crate::pattern::Matcher;

pub struct FuseAttention;

/// The pieces of one matched attention block.
struct Attention {
    query: ValueId,
    /// What `kᵀ` is: the key already as `[.., S, E]`, or a value to permute.
    key: KeySource,
    value: ValueId,
    mask: Option<ValueId>,
    /// The model's scale of `q·kᵀ`.
    scale: f64,
}

enum KeySource {
    Ready(ValueId),
    Permute(ValueId, Vec<usize>),
}

impl Pass for FuseAttention {
    fn name(&self) -> &'static str {
        "fuse_attention"
    }

    fn enabled(&self, options: &PassOptions) -> bool {
        options.fused_attention
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let uses = graph.use_counts();
        let mut rewritten = 0;
        graph.rewrite_nodes(|graph, id| {
            let Some(found) = match_attention(&Matcher::new(graph, &uses), id) else {
                return Ok(None);
            };
            let node = graph.node(id);
            let (name, origin) = (graph.value(node.outputs[0]).name.clone(), node.origin.clone());
            let err = |e: InferError| PassError {
                pass: "fuse_attention",
                origin: origin.clone(),
                message: e.0,
            };
            let key = match found.key {
                KeySource::Ready(k) => k,
                KeySource::Permute(source, perm) => graph
                    .add_node(
                        Op::Transpose { perm },
                        vec![source],
                        &[format!("{name}_key")],
                        origin.clone(),
                    )
                    .map_err(err)?[0],
            };
            let q_ty = graph.ty(found.query).clone();
            let head_dim = q_ty.shape[q_ty.rank() - 1] as f64;
            // The fused op divides by √E; fold what remains of the model's scale into q.
            let ratio = found.scale * head_dim.sqrt();
            let query = if (ratio - 1.0).abs() > 1e-6 {
                let r = graph.add_const(
                    format!("{name}_query_scale"),
                    Tensor::scalar_f32(ratio as f32).cast(q_ty.dtype),
                );
                graph
                    .add_node(
                        Op::Binary(BinaryOp::Mul),
                        vec![found.query, r],
                        &[format!("{name}_query")],
                        origin.clone(),
                    )
                    .map_err(err)?[0]
            } else {
                found.query
            };
            let mut inputs = vec![query, key, found.value];
            inputs.extend(found.mask);
            let out = graph
                .add_node(Op::ScaledDotProductAttention, inputs, &[name], origin.clone())
                .map_err(err)?;
            rewritten += 1;
            Ok(Some(out))
        })?;
        graph.count_rewrites("scaled_dot_product_attention from matmul/softmax/matmul", rewritten);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}

/// The attention block whose last product is node `root` (`probabilities · v`).
fn match_attention(m: &Matcher, root: crate::ir::NodeId) -> Option<Attention> {
    let node = m.graph.node(root);
    let plain = Op::MatMul {
        transpose_a: false,
        transpose_b: false,
    };
    if node.op != plain {
        return None;
    }
    let (probabilities, value) = (node.inputs[0], node.inputs[1]);
    let softmax = m.private_producer(probabilities)?;
    let scores_ty = m.graph.ty(probabilities);
    let rank = scores_ty.rank();
    if softmax.op
        != (Op::Softmax {
            axis: rank.checked_sub(1)?,
        })
        || rank < 3
    {
        return None;
    }
    // softmax input: scaled [+ mask].
    let mut scaled = softmax.inputs[0];
    let mut mask = None;
    if let Some(add) = m.private_producer(scaled).filter(|n| n.op == Op::Binary(BinaryOp::Add)) {
        let scaled_side = |v: ValueId| m.private_producer(v).is_some_and(|n| scaled_product(m, n).is_some());
        let (a, b) = (add.inputs[0], add.inputs[1]);
        let (s, mk) = if scaled_side(a) { (a, b) } else { (b, a) };
        if m.graph.ty(s) != scores_ty {
            return None;
        }
        scaled = s;
        mask = Some(mk);
    }
    let (matmul_out, scale) = scaled_product(m, m.private_producer(scaled)?)?;
    let Op::MatMul {
        transpose_a: false,
        transpose_b,
    } = m.private_producer(matmul_out)?.op
    else {
        return None;
    };
    let scores = m.private_producer(matmul_out)?;
    let (query, key_t) = (scores.inputs[0], scores.inputs[1]);
    let (q, k, v) = (m.graph.ty(query), m.graph.ty(key_t), m.graph.ty(value));
    let same_rank = q.rank() == rank && k.rank() == rank && v.rank() == rank;
    if !same_rank || q.dtype != scores_ty.dtype || !q.dtype.is_float() {
        return None;
    }
    let batch = &q.shape[..rank - 2];
    if &k.shape[..rank - 2] != batch || &v.shape[..rank - 2] != batch {
        return None;
    }
    if let Some(mk) = mask {
        let mask_ty = m.graph.ty(mk);
        if mask_ty.dtype != q.dtype || mask_ty.shape.last() != scores_ty.shape.last() {
            return None;
        }
    }
    let swap_last = |mut perm: Vec<usize>| {
        perm.swap(rank - 2, rank - 1);
        perm
    };
    let key = if transpose_b {
        KeySource::Ready(key_t)
    } else {
        match m.private_producer(key_t) {
            Some(n) if matches!(n.op, Op::Transpose { .. }) => {
                let Op::Transpose { perm } = &n.op else { return None };
                let perm = swap_last(perm.clone());
                if perm.iter().enumerate().all(|(i, &p)| i == p) {
                    KeySource::Ready(n.inputs[0])
                } else {
                    KeySource::Permute(n.inputs[0], perm)
                }
            }
            _ => KeySource::Permute(key_t, swap_last((0..rank).collect())),
        }
    };
    Some(Attention {
        query,
        key,
        value,
        mask,
        scale,
    })
}

/// `t / c`, `t · c` or `c · t` with a scalar constant `c`: `t` and the scale. A node that is
/// itself the `q·kᵀ` product counts as scale 1.
fn scaled_product(m: &Matcher, node: &crate::ir::Node) -> Option<(ValueId, f64)> {
    if matches!(node.op, Op::MatMul { .. }) {
        return Some((node.outputs[0], 1.0));
    }
    let is_scores = |v: ValueId| m.private_producer(v).is_some_and(|n| matches!(n.op, Op::MatMul { .. }));
    if let Some((t, c)) = m.binary_with_scalar(node, BinaryOp::Div) {
        return (is_scores(t) && c != 0.0).then_some((t, 1.0 / f64::from(c)));
    }
    let (t, c) = m.binary_with_scalar(node, BinaryOp::Mul)?;
    is_scores(t).then_some((t, f64::from(c)))
}
