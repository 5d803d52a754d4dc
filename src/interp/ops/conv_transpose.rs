//! `conv_transpose` (coremltools iOS15/iOS17 `conv.py`): 1-3 spatial dims, groups, dilations,
//! `valid` and `custom` padding.
//!
//! Computed as the definition reads: every input element scatters `x · w` onto the output
//! positions `p·stride + t·dilation - pad_begin` of its kernel taps `t`. Each output plane is
//! accumulated on its own (in f64), so planes run in parallel without sharing writes.
//! `pad_type = "same"` and an `output_shape` that differs from the computed one are refused:
//! coremltools does not say where such outputs sit relative to the full result.

use super::super::eval::OpCtx;
use super::super::tensor::{numel, OpResult, Tensor};
use super::conv::{conv_params, ConvParams};
use super::{to_usizes, OpFn};
use rayon::prelude::*;

pub(super) const OPS: &[(&str, OpFn)] = &[("conv_transpose", conv_transpose)];

fn conv_transpose(ctx: &OpCtx) -> OpResult<Vec<Tensor>> {
    let x = ctx.get("x")?;
    let w = ctx.get("weight")?;
    let ConvParams {
        spatial: sd,
        strides,
        dilations,
        pad_type,
        pad,
        groups,
    } = conv_params(ctx, &x, &w)?;
    let pad = match pad_type.as_str() {
        "valid" => vec![0; 2 * sd],
        "custom" => pad,
        other => return Err(format!("pad_type {other:?} is not supported (valid and custom are)")),
    };
    if strides.len() != sd || dilations.len() != sd || pad.len() != 2 * sd {
        return Err(format!(
            "strides {strides:?}, dilations {dilations:?} and pad {pad:?} do not fit {sd} spatial dims"
        ));
    }
    if strides.contains(&0) || dilations.contains(&0) {
        return Err("strides and dilations must be positive".into());
    }
    let (n, cin) = (x.shape[0], x.shape[1]);
    let cout_g = w.shape[1];
    let cout = cout_g * groups;
    if w.shape[0] != cin || cin % groups != 0 {
        return Err(format!(
            "x {:?}, weight {:?} (expected [C_in, C_out/groups, *K]) and groups {groups} do not agree",
            x.shape, w.shape
        ));
    }
    let cin_g = cin / groups;

    // Normalise to three spatial dims (leading 1s), as conv does.
    let mut input = [1usize; 3];
    let mut kernel = [1usize; 3];
    let mut stride = [1usize; 3];
    let mut dilation = [1usize; 3];
    let mut before = [0usize; 3];
    let mut output = [1usize; 3];
    let off = 3 - sd;
    let mut out_dims = Vec::with_capacity(sd);
    for i in 0..sd {
        let full = (x.shape[2 + i] - 1) * strides[i] + (w.shape[2 + i] - 1) * dilations[i] + 1;
        let cropped = pad[2 * i] + pad[2 * i + 1];
        if cropped >= full {
            return Err(format!("pad {pad:?} leaves nothing of {full} on spatial axis {i}"));
        }
        input[off + i] = x.shape[2 + i];
        kernel[off + i] = w.shape[2 + i];
        stride[off + i] = strides[i];
        dilation[off + i] = dilations[i];
        before[off + i] = pad[2 * i];
        output[off + i] = full - cropped;
        out_dims.push(full - cropped);
    }
    let mut shape = vec![n, cout];
    shape.extend(&out_dims);
    if let Some(requested) = ctx.opt("output_shape")? {
        let requested = to_usizes(requested.ints()?, "output_shape")?;
        if requested != shape && requested != out_dims {
            return Err(format!(
                "output_shape {requested:?} differs from the computed {shape:?} (not supported)"
            ));
        }
    }
    let bias = match ctx.opt("bias")? {
        Some(b) if b.len() == cout => Some(b.floats()?.to_vec()),
        Some(b) => {
            return Err(format!(
                "bias {} does not match {cout} output channels",
                b.type_string()
            ))
        }
        None => None,
    };

    let xs = x.floats()?;
    let ws = w.floats()?;
    let (isz, ksz, osz) = (numel(&input), numel(&kernel), numel(&output));
    let mut out = vec![0f32; n * cout * osz];
    out.par_chunks_mut(osz).enumerate().for_each(|(plane, o)| {
        let (b, co) = (plane / cout, plane % cout);
        let (g, col) = (co / cout_g, co % cout_g);
        let mut acc = vec![0f64; osz];
        for ci in g * cin_g..(g + 1) * cin_g {
            let xin = &xs[(b * cin + ci) * isz..][..isz];
            let wk = &ws[(ci * cout_g + col) * ksz..][..ksz];
            for (p, &xv) in xin.iter().enumerate() {
                let pos = [p / (input[1] * input[2]), p / input[2] % input[1], p % input[2]];
                for (t, &wv) in wk.iter().enumerate() {
                    let tap = [t / (kernel[1] * kernel[2]), t / kernel[2] % kernel[1], t % kernel[2]];
                    let mut flat = 0usize;
                    let mut inside = true;
                    for d in 0..3 {
                        let at = (pos[d] * stride[d] + tap[d] * dilation[d]) as isize - before[d] as isize;
                        if at < 0 || at >= output[d] as isize {
                            inside = false;
                            break;
                        }
                        flat = flat * output[d] + at as usize;
                    }
                    if inside {
                        acc[flat] += f64::from(xv) * f64::from(wv);
                    }
                }
            }
        }
        let bias = bias.as_ref().map_or(0.0, |bv| f64::from(bv[co]));
        for (dst, a) in o.iter_mut().zip(acc) {
            *dst = (a + bias) as f32;
        }
    });
    Ok(vec![Tensor::float(x.dtype, shape, out)])
}

#[cfg(test)]
mod tests {
    use super::super::super::eval::test_support::{floats, ints, run_op, string};

    #[test]
    fn scatter_with_stride_and_crop() {
        // 1-D: x = [1, 2], w = [1, 10, 100], stride 2 → full = [1, 10, 102, 20, 200].
        let x = floats(&[1, 1, 2], &[1.0, 2.0]);
        let w = floats(&[1, 1, 3], &[1.0, 10.0, 100.0]);
        let y = run_op(
            "conv_transpose",
            vec![("x", x.clone()), ("weight", w.clone()), ("strides", ints(&[2]))],
        )
        .unwrap();
        assert_eq!(y.shape, vec![1, 1, 5]);
        assert_eq!(y.floats().unwrap(), &[1.0, 10.0, 102.0, 20.0, 200.0]);
        let y = run_op(
            "conv_transpose",
            vec![
                ("x", x),
                ("weight", w),
                ("strides", ints(&[2])),
                ("pad_type", string("custom")),
                ("pad", ints(&[1, 2])),
                ("bias", floats(&[1], &[0.5])),
            ],
        )
        .unwrap();
        assert_eq!(y.floats().unwrap(), &[10.5, 102.5]);
    }

    #[test]
    fn groups_pick_their_channels() {
        // Two groups of one input and one output channel each; 1x1 kernels scale by 2 and 3.
        let x = floats(&[1, 2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
        let w = floats(&[2, 1, 1, 1], &[2.0, 3.0]);
        let y = run_op("conv_transpose", vec![("x", x), ("weight", w), ("groups", ints(&[2]))]).unwrap();
        assert_eq!(y.shape, vec![1, 2, 1, 2]);
        assert_eq!(y.floats().unwrap(), &[2.0, 4.0, 9.0, 12.0]);
    }
}
