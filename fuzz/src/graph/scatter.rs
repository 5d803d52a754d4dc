//! Scatters whose indices are graph inputs (computed at run time): ScatterElements along an axis
//! and ScatterND of leading coordinates, with a reduction sometimes (opset 16+). The interpreter
//! then runs them on generated indices, which must stay inside the data.

use super::{attr_int, attr_string, Elem, Gen};
use arbitrary::Result;

fn reduction(g: &mut Gen) -> Result<Vec<edgec::proto::onnx::AttributeProto>> {
    if g.opset < 16 || !g.u.arbitrary()? {
        return Ok(Vec::new());
    }
    Ok(vec![attr_string("reduction", g.u.choose(&["none", "add", "mul", "max", "min"])?)])
}

pub(super) fn scatter(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(1..=4)? else { return Ok(()) };
    if g.u.arbitrary()? {
        // ScatterElements: indices and updates of the data's shape but along the axis.
        let axis = g.u.int_in_range(0..=x.rank() - 1)?;
        let mut shape = x.shape.clone();
        shape[axis] = g.u.int_in_range(1..=x.shape[axis])?;
        let indices = g.runtime_input(Elem::I64, shape.clone());
        let updates = g.init_f32(&shape)?;
        let mut attrs = reduction(g)?;
        attrs.push(attr_int("axis", axis as i64));
        if g.opset >= 11 {
            g.node1("ScatterElements", vec![x.name, indices, updates], attrs, Elem::F32, x.shape);
        }
    } else if g.opset >= 11 {
        // ScatterND: tuples of `depth` leading coordinates, each writing a slice.
        let depth = g.u.int_in_range(1..=x.rank())?;
        let tuples = g.u.int_in_range(1..=3)?;
        let indices = g.runtime_input(Elem::I64, vec![tuples, depth as i64]);
        let mut update_shape = vec![tuples];
        update_shape.extend(&x.shape[depth..]);
        let updates = g.init_f32(&update_shape)?;
        let attrs = reduction(g)?;
        g.node1("ScatterND", vec![x.name, indices, updates], attrs, Elem::F32, x.shape);
    }
    Ok(())
}
