//! Moving data between channels and space: DepthToSpace, SpaceToDepth.
//!
//! Both orders of DepthToSpace are one IR op (MIL `depth_to_space` for DCR, `pixel_shuffle`
//! for CRD). MIL's `space_to_depth` has DCR order only, so a CRD SpaceToDepth (opset 28)
//! regroups its channels afterwards with a rank-4 reshape, transpose and reshape.

use super::{Importer, NodeCx};
use edgec_passes::ir::ValueId;
use edgec_passes::op::{BlockOrder, Op};

pub const OPS: &[(&str, Importer)] = &[("DepthToSpace", depth_to_space), ("SpaceToDepth", space_to_depth)];

/// The `blocksize` and `mode` attributes, checked against a rank-4 input.
fn block_and_order(cx: &NodeCx, x: ValueId) -> Result<(usize, BlockOrder), String> {
    let x_ty = cx.ty(x);
    if x_ty.rank() != 4 {
        return Err(format!("input {x_ty} must have rank 4"));
    }
    let block = cx.attr_int("blocksize", 0)?;
    let block = usize::try_from(block)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("blocksize must be positive, got {block}"))?;
    let order = match cx.attr_string("mode", "DCR")?.as_str() {
        "DCR" => BlockOrder::Dcr,
        "CRD" => BlockOrder::Crd,
        other => return Err(format!("mode {other:?} is not DCR or CRD")),
    };
    Ok((block, order))
}

fn depth_to_space(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let (block, order) = block_and_order(cx, x)?;
    if block == 1 {
        return cx.add(Op::Identity, vec![x]);
    }
    cx.add(Op::DepthToSpace { block, order }, vec![x])
}

fn space_to_depth(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let (block, order) = block_and_order(cx, x)?;
    if block == 1 {
        return cx.add(Op::Identity, vec![x]);
    }
    if order == BlockOrder::Dcr {
        return cx.add(Op::SpaceToDepth { block }, vec![x]);
    }
    // DCR puts the block offset in the high channel bits (`j·C + k`), CRD in the low ones
    // (`k·b² + j`): swap the two channel factors.
    let dcr = cx.add_step(Op::SpaceToDepth { block }, vec![x], "dcr")?;
    let shape = cx.ty(dcr).shape.clone();
    let (n, c, hw) = (shape[0], shape[1] / (block * block), shape[2] * shape[3]);
    let grouped = cx.add_step(
        Op::Reshape {
            shape: vec![n, block * block, c, hw],
        },
        vec![dcr],
        "grouped",
    )?;
    let swapped = cx.add_step(Op::Transpose { perm: vec![0, 2, 1, 3] }, vec![grouped], "swapped")?;
    cx.add(Op::Reshape { shape }, vec![swapped])
}
