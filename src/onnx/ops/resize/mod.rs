//! Resampling: Resize (opsets 10 to 19) and the deprecated Upsample (7, 9).
//!
//! Shapes are static and scales or sizes constant, so where ONNX would sample each output
//! element is known at compile time. The importer computes it per axis, with ONNX's own
//! formulas (the reference implementation's, in f64), and picks the MIL ops that read exactly
//! the same input elements:
//!
//! * nearest: whole upscale factors of the last two axes are `upsample_nearest_neighbor`
//!   (which reads `x[i / s]`); an axis read at a regular stride is a slice; any other pattern
//!   is a gather of constant indices. So every nearest case is exact.
//! * linear: bilinear on the last two axes, with the MIL sampling mode whose documented grid
//!   equals ONNX's sample positions (clamped to the input, as ONNX's edge padding does) on
//!   both axes.
//! * everything else that blends (linear that no MIL mode reproduces or on other axes, cubic,
//!   antialias, `exclude_outside`, `tf_crop_and_resize`): a separable resize is linear along
//!   each axis, so each resized axis becomes one matmul with a constant `[output, input]`
//!   matrix holding ONNX's own tap weights (`interpolation_matrix`); outside the region of
//!   interest, `extrapolation_value` is added as a constant. Exact, at the cost of
//!   `output × input` weights per axis.
//!
//! `resize_nearest_neighbor` is not used: coremltools does not document which pixel it reads
//! (its frontends use it for TensorFlow's half-pixel nearest, its NeuralNetwork backend as an
//! integer upsample), so no ONNX mode can be matched to it with confidence.
//!
//! Resize-10 and Upsample use asymmetric coordinates and, for nearest, onnxruntime's rule
//! (floor when upsampling an axis, ceil when downsampling), the ONNX specs giving none.

mod blend;

use super::{Importer, NodeCx};
use blend::{by_matrices, Filter, Kernel};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{Op, Sampling, SliceAxis};

pub const OPS: &[(&str, Importer)] = &[("Resize", resize), ("Upsample", upsample)];

/// ONNX `coordinate_transformation_mode`: the input position sampled for output index `i`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coords {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
    /// Each axis's region of interest is in its [`Axis::roi`].
    TfCropAndResize,
}

/// How nearest mode turns a position into an index.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rounding {
    PreferFloor,
    PreferCeil,
    Floor,
    Ceil,
    /// Resize-10 and Upsample (onnxruntime): truncate when upsampling, ceil when downsampling.
    Simple,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Nearest(Rounding),
    Blend(Filter),
}

impl Mode {
    const LINEAR: Mode = Mode::Blend(Filter {
        kernel: Kernel::Linear,
        antialias: false,
        exclude_outside: false,
    });
}

/// One axis: its sizes, the scale ONNX uses for coordinates and, for `tf_crop_and_resize`,
/// its region of interest (normalised start and end).
#[derive(Clone, Copy, Debug)]
struct Axis {
    input: usize,
    output: usize,
    scale: f64,
    roi: (f64, f64),
}

impl Axis {
    /// An axis of size `d` that is not resized.
    fn unchanged(d: usize) -> Axis {
        Axis {
            input: d,
            output: d,
            scale: 1.0,
            roi: (0.0, 1.0),
        }
    }

    /// ONNX skips an axis whose scale is 1, size unchanged and region whole, whatever the
    /// coordinate mode.
    fn is_identity(&self) -> bool {
        self.output == self.input && (self.scale - 1.0).abs() <= 1e-9 && self.roi == (0.0, 1.0)
    }

    /// The (unclamped) input position of output index `i`, as ONNX's reference computes it.
    fn position(&self, coords: Coords, i: usize) -> f64 {
        let (x, input, scale) = (i as f64, self.input as f64, self.scale);
        let output = scale * input;
        match coords {
            Coords::HalfPixel => (x + 0.5) / scale - 0.5,
            Coords::HalfPixelSymmetric => {
                let adjustment = self.output as f64 / output;
                let offset = input / 2.0 * (1.0 - adjustment);
                offset + (x + 0.5) / scale - 0.5
            }
            Coords::PytorchHalfPixel if output == 1.0 => -0.5,
            Coords::PytorchHalfPixel => (x + 0.5) / scale - 0.5,
            Coords::AlignCorners if output == 1.0 => 0.0,
            Coords::AlignCorners => x * (input - 1.0) / (output - 1.0),
            Coords::Asymmetric => x / scale,
            Coords::TfHalfPixelForNn => (x + 0.5) / scale,
            Coords::TfCropAndResize => {
                let (start, end) = self.roi;
                let span = (end - start) * (input - 1.0);
                let offset = if output == 1.0 {
                    span / 2.0
                } else {
                    x * span / (output - 1.0)
                };
                offset + start * (input - 1.0)
            }
        }
    }

    /// Nearest mode's input index for each output index.
    fn nearest(&self, coords: Coords, rounding: Rounding) -> Vec<usize> {
        (0..self.output)
            .map(|i| {
                let p = self.position(coords, i);
                let (lo, frac) = (p.floor(), p - p.floor());
                let index = if frac == 0.0 {
                    p
                } else {
                    match rounding {
                        Rounding::PreferFloor if frac <= 0.5 => lo,
                        Rounding::PreferCeil if frac < 0.5 => lo,
                        Rounding::PreferFloor | Rounding::PreferCeil | Rounding::Ceil => lo + 1.0,
                        Rounding::Floor => lo,
                        Rounding::Simple if self.scale < 1.0 => lo + 1.0,
                        Rounding::Simple => p.trunc(),
                    }
                };
                index.clamp(0.0, (self.input - 1) as f64) as usize
            })
            .collect()
    }

    /// Linear mode's sample positions, clamped to the input (ONNX pads the edges).
    fn linear(&self, coords: Coords) -> Vec<f64> {
        let last = (self.input - 1) as f64;
        (0..self.output)
            .map(|i| self.position(coords, i).clamp(0.0, last))
            .collect()
    }
}

/// Sample positions agree when they differ by less than this (in input pixels).
const POSITION_TOLERANCE: f64 = 1e-5;

fn same_positions(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= POSITION_TOLERANCE)
}

/// Input `i` as constant floats, or `None` when absent or empty (Resize-11 passes an empty
/// `scales` next to `sizes`).
fn const_floats(cx: &NodeCx, i: usize, what: &str) -> Result<Option<Vec<f32>>, String> {
    if cx.input(i).is_none() {
        return Ok(None);
    }
    let t = cx
        .const_input(i)
        .ok_or_else(|| format!("{what} (input {i}) must be a constant"))?;
    Ok(Some(t.to_f32_vec()).filter(|v| !v.is_empty()))
}

fn resize(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let rank = shape.len();
    let mode_name = cx.attr_string("mode", "nearest")?;
    if cx.opset < 11 {
        let mode = match mode_name.as_str() {
            "nearest" => Mode::Nearest(Rounding::Simple),
            "linear" => Mode::LINEAR,
            other => return Err(format!("mode {other:?} is not supported")),
        };
        let scales = const_floats(cx, 1, "scales")?.ok_or("scales (input 1) are required")?;
        let axes = from_scales(&shape, &(0..rank).collect::<Vec<_>>(), &scales)?;
        return resample(cx, x, &axes, mode, Coords::Asymmetric, 0.0);
    }

    let coords_name = cx.attr_string("coordinate_transformation_mode", "half_pixel")?;
    let coords = match coords_name.as_str() {
        "half_pixel" => Coords::HalfPixel,
        "half_pixel_symmetric" => Coords::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coords::PytorchHalfPixel,
        "align_corners" => Coords::AlignCorners,
        "asymmetric" => Coords::Asymmetric,
        "tf_half_pixel_for_nn" if cx.opset < 13 => Coords::TfHalfPixelForNn,
        "tf_crop_and_resize" => Coords::TfCropAndResize,
        other => return Err(format!("coordinate_transformation_mode {other:?} is not supported")),
    };
    let mode = match mode_name.as_str() {
        "nearest" => Mode::Nearest(match cx.attr_string("nearest_mode", "round_prefer_floor")?.as_str() {
            "round_prefer_floor" => Rounding::PreferFloor,
            "round_prefer_ceil" => Rounding::PreferCeil,
            "floor" => Rounding::Floor,
            "ceil" => Rounding::Ceil,
            other => return Err(format!("nearest_mode {other:?} is not supported")),
        }),
        "linear" => Mode::Blend(Filter {
            kernel: Kernel::Linear,
            antialias: false,
            exclude_outside: false,
        }),
        "cubic" => Mode::Blend(Filter {
            kernel: Kernel::Cubic(f64::from(cx.attr_float("cubic_coeff_a", -0.75)?)),
            antialias: false,
            exclude_outside: false,
        }),
        other => return Err(format!("mode {other:?} is not supported")),
    };
    let antialias = cx.attr_int("antialias", 0)? != 0;
    let exclude_outside = cx.attr_int("exclude_outside", 0)? != 0;
    let mode = match mode {
        Mode::Blend(filter) => Mode::Blend(Filter {
            antialias,
            exclude_outside,
            ..filter
        }),
        Mode::Nearest(_) if antialias => return Err("antialias=1 applies to linear and cubic modes only".into()),
        Mode::Nearest(_) if exclude_outside => {
            return Err("exclude_outside=1 is not supported with nearest mode".into())
        }
        Mode::Nearest(_) if coords == Coords::TfCropAndResize => {
            return Err("tf_crop_and_resize is not supported with nearest mode".into())
        }
        nearest => nearest,
    };
    let resized: Vec<usize> = match cx.attr_ints("axes")? {
        Some(a) if cx.opset >= 18 => super::axes(&a, rank)?,
        _ => (0..rank).collect(),
    };
    let mut axes = match (const_floats(cx, 2, "scales")?, cx.input(3)) {
        (Some(scales), _) => from_scales(&shape, &resized, &scales)?,
        (None, Some(_)) => {
            let sizes = cx.const_ints(3, "sizes")?;
            let policy = cx.attr_string("keep_aspect_ratio_policy", "stretch")?;
            from_sizes(&shape, &resized, &sizes, &policy)?
        }
        (None, None) => return Err("one of scales (input 2) and sizes (input 3) is required".into()),
    };
    let mut extrapolation = 0.0;
    if coords == Coords::TfCropAndResize {
        let roi = const_floats(cx, 1, "roi")?.ok_or("tf_crop_and_resize needs a region of interest (input 1)")?;
        if roi.len() != 2 * resized.len() {
            return Err(format!(
                "roi {roi:?} must have {} values (starts, then ends)",
                2 * resized.len()
            ));
        }
        for (k, &a) in resized.iter().enumerate() {
            axes[a].roi = (f64::from(roi[k]), f64::from(roi[resized.len() + k]));
        }
        extrapolation = cx.attr_float("extrapolation_value", 0.0)?;
    }
    resample(cx, x, &axes, mode, coords, extrapolation)
}

fn upsample(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    let shape = cx.ty(x).shape.clone();
    let mode = match cx.attr_string("mode", "nearest")?.as_str() {
        "nearest" => Mode::Nearest(Rounding::Simple),
        "linear" | "bilinear" => Mode::LINEAR,
        other => return Err(format!("mode {other:?} is not supported")),
    };
    let scales = if cx.opset < 9 {
        cx.attr_floats("scales")?.ok_or("attribute \"scales\" is required")?
    } else {
        const_floats(cx, 1, "scales")?.ok_or("scales (input 1) are required")?
    };
    let axes = from_scales(&shape, &(0..shape.len()).collect::<Vec<_>>(), &scales)?;
    resample(cx, x, &axes, mode, Coords::Asymmetric, 0.0)
}

/// Per-axis sizes from `scales` over the `resized` axes: `floor(in · scale)`.
fn from_scales(shape: &[usize], resized: &[usize], scales: &[f32]) -> Result<Vec<Axis>, String> {
    if scales.len() != resized.len() {
        return Err(format!("scales {scales:?} must have {} values", resized.len()));
    }
    let mut axes: Vec<Axis> = shape.iter().map(|&d| Axis::unchanged(d)).collect();
    for (&a, &s) in resized.iter().zip(scales) {
        let scale = f64::from(s);
        let output = (scale * shape[a] as f64).floor();
        if scale.is_nan() || scale <= 0.0 || output < 1.0 {
            return Err(format!(
                "scale {s} on axis {a} (size {}) gives an empty output (zero-sized tensors are not supported)",
                shape[a]
            ));
        }
        axes[a] = Axis {
            input: shape[a],
            output: output as usize,
            scale,
            roi: (0.0, 1.0),
        };
    }
    Ok(axes)
}

/// Per-axis sizes from `sizes` over the `resized` axes; a `keep_aspect_ratio_policy` other
/// than stretch scales every resized axis by the smallest (`not_larger`) or largest
/// (`not_smaller`) ratio and rounds the sizes half up.
fn from_sizes(shape: &[usize], resized: &[usize], sizes: &[i64], policy: &str) -> Result<Vec<Axis>, String> {
    if sizes.len() != resized.len() {
        return Err(format!("sizes {sizes:?} must have {} values", resized.len()));
    }
    let sizes = super::positive(sizes, "sizes").map_err(|e| format!("{e} (zero-sized tensors are not supported)"))?;
    let ratios: Vec<f64> = resized
        .iter()
        .zip(&sizes)
        .map(|(&a, &s)| s as f64 / shape[a] as f64)
        .collect();
    let common = match policy {
        "stretch" => None,
        "not_larger" => ratios.iter().copied().reduce(f64::min),
        "not_smaller" => ratios.iter().copied().reduce(f64::max),
        other => return Err(format!("keep_aspect_ratio_policy {other:?} is not supported")),
    };
    let mut axes: Vec<Axis> = shape.iter().map(|&d| Axis::unchanged(d)).collect();
    for (k, &a) in resized.iter().enumerate() {
        axes[a] = match common {
            None => Axis {
                input: shape[a],
                output: sizes[k],
                scale: ratios[k],
                roi: (0.0, 1.0),
            },
            Some(scale) => Axis {
                input: shape[a],
                output: (scale * shape[a] as f64 + 0.5) as usize,
                scale,
                roi: (0.0, 1.0),
            },
        };
        if axes[a].output == 0 {
            return Err(format!(
                "axis {a} would become empty (zero-sized tensors are not supported)"
            ));
        }
    }
    Ok(axes)
}

fn resample(
    cx: &mut NodeCx,
    x: ValueId,
    axes: &[Axis],
    mode: Mode,
    coords: Coords,
    extrapolation: f32,
) -> Result<Vec<ValueId>, String> {
    if axes.iter().all(Axis::is_identity) {
        return cx.add(Op::Identity, vec![x]);
    }
    // Sample tables are built per output index: check the output's size first.
    let out_shape: Vec<usize> = axes.iter().map(|a| a.output).collect();
    crate::onnx::limits::check_computed_shape(&out_shape).map_err(|e| format!("output: {e}"))?;
    let filter = match mode {
        Mode::Nearest(rounding) => return nearest(cx, x, axes, coords, rounding),
        Mode::Blend(filter) => filter,
    };
    // Antialiasing changes nothing unless an axis shrinks; excluding outside taps changes
    // nothing for two-tap linear, whose outside tap only ever duplicates the edge it
    // renormalises onto.
    let plain_linear = filter.kernel == Kernel::Linear
        && (!filter.antialias || axes.iter().all(|a| a.is_identity() || a.scale >= 1.0))
        && coords != Coords::TfCropAndResize;
    if plain_linear {
        if let Some(outputs) = linear(cx, x, axes, coords)? {
            return Ok(outputs);
        }
    }
    by_matrices(cx, x, axes, coords, filter, extrapolation)
}

/// One step of a multi-op lowering: an intermediate value, or the node's output if `last`.
fn step(cx: &mut NodeCx, last: bool, op: Op, inputs: Vec<ValueId>, suffix: &str) -> Result<ValueId, String> {
    if last {
        Ok(cx.add(op, inputs)?[0])
    } else {
        cx.add_step(op, inputs, suffix)
    }
}

/// How an axis is resampled when every output reads one input element.
enum Pick {
    Unchanged,
    /// `x[i / k]`.
    Repeat(usize),
    /// `x[begin + i·stride]` for `i < len`.
    Strided {
        begin: usize,
        stride: usize,
        len: usize,
    },
    Gather(Vec<usize>),
}

fn classify(input: usize, table: Vec<usize>) -> Pick {
    let n = table.len();
    if n == input && table.iter().enumerate().all(|(i, &t)| t == i) {
        return Pick::Unchanged;
    }
    if n % input == 0 {
        let k = n / input;
        if table.iter().enumerate().all(|(i, &t)| t == i / k) {
            return Pick::Repeat(k);
        }
    }
    let stride = if n > 1 { table[1].saturating_sub(table[0]) } else { 1 };
    if stride > 0 && table.iter().enumerate().all(|(i, &t)| t == table[0] + i * stride) {
        return Pick::Strided {
            begin: table[0],
            stride,
            len: n,
        };
    }
    Pick::Gather(table)
}

/// Apply the per-axis `picks` to `x`: whole factors on the last two axes of a float tensor
/// as `upsample_nearest_neighbor`, strided axes as one slice, the rest as gathers of constant
/// indices. The last op becomes the node's output unless `more` ops follow.
fn pick(cx: &mut NodeCx, x: ValueId, mut picks: Vec<Pick>, more: bool) -> Result<ValueId, String> {
    let x_ty = cx.ty(x).clone();
    let rank = picks.len();
    let mut scales = [1, 1];
    if rank >= 3 && x_ty.dtype.is_float() {
        for (k, a) in (rank - 2..rank).enumerate() {
            if let Pick::Repeat(f) = picks[a] {
                scales[k] = f;
                picks[a] = Pick::Unchanged;
            }
        }
    }
    let strided = picks.iter().any(|p| matches!(p, Pick::Strided { .. }));
    let gathers: Vec<usize> = (0..rank)
        .filter(|&a| matches!(picks[a], Pick::Repeat(_) | Pick::Gather(_)))
        .collect();
    if !gathers.is_empty() && x_ty.dtype == DType::Bool {
        return Err("nearest resize of a bool tensor is not supported".into());
    }
    let mut remaining = usize::from(scales != [1, 1]) + usize::from(strided) + gathers.len();
    if remaining == 0 {
        return if more {
            Ok(x)
        } else {
            Ok(cx.add(Op::Identity, vec![x])?[0])
        };
    }
    let mut y = x;
    let mut next = |cx: &mut NodeCx, op: Op, inputs: Vec<ValueId>, suffix: &str| {
        remaining -= 1;
        step(cx, remaining == 0 && !more, op, inputs, suffix)
    };
    if scales != [1, 1] {
        y = next(cx, Op::UpsampleNearest { scales }, vec![y], "upsampled")?;
    }
    if strided {
        let current = cx.ty(y).shape.clone();
        let axes = current
            .iter()
            .zip(&picks)
            .map(|(&d, p)| match *p {
                Pick::Strided { begin, stride, len } => SliceAxis {
                    begin,
                    end: Some(begin + (len - 1) * stride + 1),
                    stride: stride as i64,
                },
                _ => SliceAxis::full(d),
            })
            .collect();
        y = next(cx, Op::Slice { axes }, vec![y], "strided")?;
    }
    for a in gathers {
        let table: Vec<i32> = match &picks[a] {
            Pick::Repeat(k) => (0..cx.ty(y).shape[a] * k).map(|i| (i / k) as i32).collect(),
            Pick::Gather(t) => t.iter().map(|&i| i as i32).collect(),
            _ => continue,
        };
        let indices = cx.add_const_step(Tensor::from_i32(vec![table.len()], &table), &format!("indices{a}"));
        y = next(cx, Op::Gather { axis: a }, vec![y, indices], &format!("gathered{a}"))?;
    }
    Ok(y)
}

fn nearest(
    cx: &mut NodeCx,
    x: ValueId,
    axes: &[Axis],
    coords: Coords,
    rounding: Rounding,
) -> Result<Vec<ValueId>, String> {
    let picks = axes
        .iter()
        .map(|a| {
            if a.is_identity() {
                Pick::Unchanged
            } else {
                classify(a.input, a.nearest(coords, rounding))
            }
        })
        .collect();
    Ok(vec![pick(cx, x, picks, false)?])
}

/// Linear resize with Core ML's own ops. An axis whose every sample falls on a whole input
/// position is a pick (as in nearest mode, exact and cheaper); the others, if among the last
/// two, are one bilinear op with the MIL sampling mode that reproduces ONNX's positions.
/// `None`, having added nothing, when they are not or no mode does.
fn linear(cx: &mut NodeCx, x: ValueId, axes: &[Axis], coords: Coords) -> Result<Option<Vec<ValueId>>, String> {
    let x_ty = cx.ty(x).clone();
    if !x_ty.dtype.is_float() {
        return Err(format!("linear resize needs a float input, got {x_ty}"));
    }
    let rank = axes.len();
    let positions: Vec<Option<Vec<f64>>> = axes
        .iter()
        .map(|a| (!a.is_identity()).then(|| a.linear(coords)))
        .collect();
    let whole = |p: &[f64]| p.iter().all(|v| (v - v.round()).abs() <= POSITION_TOLERANCE);
    let mut picks = Vec::with_capacity(rank);
    let mut blended = Vec::new();
    for (a, p) in positions.iter().enumerate() {
        match p {
            Some(p) if whole(p) => picks.push(classify(axes[a].input, p.iter().map(|v| v.round() as usize).collect())),
            Some(_) => {
                picks.push(Pick::Unchanged);
                blended.push(a);
            }
            None => picks.push(Pick::Unchanged),
        }
    }
    if blended.iter().any(|&a| a + 2 < rank) {
        // Core ML interpolates the last two axes only.
        return Ok(None);
    }
    if blended.is_empty() {
        return Ok(Some(vec![pick(cx, x, picks, false)?]));
    }

    // The bilinear axes' sample positions on the last two axes (a one-element height for
    // rank 1); the other of the two, if not blended, is read unchanged.
    let last_two: Vec<usize> = (rank.saturating_sub(2)..rank).collect();
    let mut pair: Vec<(usize, usize, Vec<f64>)> = Vec::new();
    if rank == 1 {
        pair.push((1, 1, vec![0.0]));
    }
    for &a in &last_two {
        let (input, output) = (axes[a].input, axes[a].output);
        pair.push(match &positions[a] {
            Some(p) if blended.contains(&a) => (input, output, p.clone()),
            _ => (output, output, (0..output).map(|i| i as f64).collect()),
        });
    }
    let fits = |s: Sampling, (input, output, wanted): &(usize, usize, Vec<f64>)| {
        s.grid(*input, *output).is_some_and(|g| same_positions(&g, wanted))
    };
    let Some(sampling) = Sampling::ALL.into_iter().find(|&s| pair.iter().all(|p| fits(s, p))) else {
        return Ok(None);
    };

    let y = pick(cx, x, picks, true)?;
    let size = [pair[pair.len() - 2].1, pair[pair.len() - 1].1];
    if rank >= 3 {
        return cx.add(Op::ResizeBilinear { size, sampling }, vec![y]).map(Some);
    }
    // Core ML's resize ops want rank >= 3: add leading ones, resize, drop them.
    let mut lifted = vec![1; 3 - rank];
    lifted.extend_from_slice(&cx.ty(y).shape);
    let lifted = cx.add_step(Op::Reshape { shape: lifted }, vec![y], "lifted")?;
    let resized = cx.add_step(Op::ResizeBilinear { size, sampling }, vec![lifted], "resized")?;
    let out_shape: Vec<usize> = axes.iter().map(|a| a.output).collect();
    cx.add(Op::Reshape { shape: out_shape }, vec![resized]).map(Some)
}
