//! `scaled_dot_product_attention` (iOS18, coremltools `iOS18/transformers.py`):
//! `softmax(query · keyᵀ / √E + attn_mask) · value` over the last two axes, one batch entry at
//! a time; a bool mask keeps the positions where it is true.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, strides, DType, OpResult, Tensor};
use super::linalg::{gemm, Mat};
use super::OpFn;
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[("scaled_dot_product_attention", scaled_dot_product_attention)];

fn scaled_dot_product_attention(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let (q, k, v) = (ctx.get("query")?, ctx.get("key")?, ctx.get("value")?);
    let r = q.rank();
    if r < 3 || k.rank() != r || v.rank() != r {
        return Err(format!(
            "query, key and value need one rank of at least 3, got {}, {}, {}",
            q.type_string(),
            k.type_string(),
            v.type_string()
        ));
    }
    let batch = &q.shape[..r - 2];
    let (l, e) = (q.shape[r - 2], q.shape[r - 1]);
    let (s, ev) = (k.shape[r - 2], v.shape[r - 1]);
    if &k.shape[..r - 2] != batch || &v.shape[..r - 2] != batch || k.shape[r - 1] != e || v.shape[r - 2] != s {
        return Err(format!(
            "shapes do not agree: query {:?}, key {:?}, value {:?}",
            q.shape, k.shape, v.shape
        ));
    }
    let scores_shape: Vec<usize> = batch.iter().copied().chain([l, s]).collect();
    let mask = match ctx.opt("attn_mask")? {
        Some(m) => Some(broadcast_mask(&m, &scores_shape)?),
        None => None,
    };
    let (qs, ks, vs) = (q.floats()?, k.floats()?, v.floats()?);
    let scale = 1.0 / (e as f32).sqrt();
    let mut out = vec![0f32; numel(batch) * l * ev];
    out.par_chunks_mut((l * ev).max(1))
        .enumerate()
        .try_for_each(|(b, dst)| {
            let mut scores = vec![0f32; l * s];
            let qb = Mat::rows(&qs[b * l * e..], e);
            let kt = Mat::transposed(&ks[b * s * e..], e);
            gemm(l, e, s, qb, kt, &mut scores)?;
            for (i, row) in scores.chunks_mut(s.max(1)).enumerate() {
                let mask_row = mask.as_ref().map(|m| &m[(b * l + i) * s..(b * l + i + 1) * s]);
                for (j, x) in row.iter_mut().enumerate() {
                    *x = *x * scale + mask_row.map_or(0.0, |m| m[j]);
                }
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for x in row.iter_mut() {
                    *x = (*x - max).exp();
                    sum += *x;
                }
                row.iter_mut().for_each(|x| *x /= sum);
            }
            gemm(l, s, ev, Mat::rows(&scores, s), Mat::rows(&vs[b * s * ev..], ev), dst)
        })?;
    let shape = batch.iter().copied().chain([l, ev]).collect();
    Ok(vec![Tensor::float(q.dtype, shape, out)])
}

/// The mask as additive floats laid out like the scores (`-inf` where a bool mask is false).
fn broadcast_mask(mask: &Tensor, scores: &[usize]) -> OpResult<Vec<f32>> {
    let values: Vec<f32> = if mask.dtype == DType::Bool {
        mask.bool_values()?
            .iter()
            .map(|&keep| if keep { 0.0 } else { f32::NEG_INFINITY })
            .collect()
    } else {
        mask.floats()?.to_vec()
    };
    let (rank, mrank) = (scores.len(), mask.rank());
    if mrank > rank {
        return Err(format!(
            "attn_mask {:?} has more axes than the scores {scores:?}",
            mask.shape
        ));
    }
    let lead = rank - mrank;
    let own = strides(&mask.shape);
    let mut mask_strides = vec![0; rank];
    for (i, &d) in mask.shape.iter().enumerate() {
        if d == scores[lead + i] {
            mask_strides[lead + i] = own[i];
        } else if d != 1 {
            return Err(format!("attn_mask {:?} does not broadcast to {scores:?}", mask.shape));
        }
    }
    let out_strides = strides(scores);
    Ok((0..numel(scores))
        .map(|i| {
            let at: usize = (0..rank)
                .map(|d| (i / out_strides[d] % scores[d]) * mask_strides[d])
                .sum();
            values[at]
        })
        .collect())
}
