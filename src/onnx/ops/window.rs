//! Window reductions MIL's pools cannot express. Sums are a depthwise convolution with a kernel
//! of ones: LpPool (`(Σ|x|^p)^(1/p)` over each window) and AveragePool with dilations (the window
//! sum divided by a per-position count computed at compile time); zero padding adds nothing to a
//! sum, so ceil mode is only extra padding at the end. MaxPool with dilations is the maximum of
//! one strided slice per kernel tap, over the input padded with -inf.

use super::conv::{per_axis, pool_kernel, spatial_pads};
use super::{Importer, NodeCx};
use edgec_passes::ir::{DType, Tensor, ValueId};
use edgec_passes::op::{pool_output_size, BinaryOp, ConvAttrs, Op, PadMode, SliceAxis, UnaryOp};

pub const OPS: &[(&str, Importer)] = &[("LpPool", lp_pool)];

/// The windows of a pooling node, per spatial axis.
struct Windows {
    input: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// The node's own `[begin, end]` padding.
    pads: Vec<[usize; 2]>,
    /// The output size (ceil mode included).
    output: Vec<usize>,
}

impl Windows {
    fn of(cx: &NodeCx, x: ValueId) -> Result<Windows, String> {
        let ty = cx.ty(x);
        if !(3..=5).contains(&ty.rank()) {
            return Err(format!("input {ty} must have rank 3..=5"));
        }
        let input = ty.shape[2..].to_vec();
        let n = input.len();
        let kernel = pool_kernel(cx, n)?;
        let strides = per_axis(cx, "strides", n)?;
        let dilations = per_axis(cx, "dilations", n)?;
        let pads = spatial_pads(cx, &input, &kernel, &strides, &dilations)?;
        let ceil_mode = cx.attr_int("ceil_mode", 0)? != 0;
        let output = (0..n)
            .map(|i| {
                let span = (kernel[i] - 1) * dilations[i] + 1;
                pool_output_size(input[i], span, strides[i], pads[i], ceil_mode).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Windows {
            input,
            kernel,
            strides,
            dilations,
            pads,
            output,
        })
    }

    fn span(&self, i: usize) -> usize {
        (self.kernel[i] - 1) * self.dilations[i] + 1
    }

    /// The padding a convolution needs to produce exactly `output` windows: the node's begin
    /// padding, and at the end whatever the last window reaches past the input.
    fn conv_pads(&self) -> Vec<[usize; 2]> {
        (0..self.input.len())
            .map(|i| {
                let reach = (self.output[i] - 1) * self.strides[i] + self.span(i);
                [self.pads[i][0], reach.saturating_sub(self.input[i] + self.pads[i][0])]
            })
            .collect()
    }

    /// How many taps of output window `o` on axis `i` fall inside the input (or, with
    /// `count_padding`, inside the input and the node's own padding).
    fn taps(&self, i: usize, o: usize, count_padding: bool) -> usize {
        let [begin, end] = self.pads[i];
        let (low, high) = if count_padding {
            (0, begin + self.input[i] + end)
        } else {
            (begin, begin + self.input[i])
        };
        (0..self.kernel[i])
            .map(|t| o * self.strides[i] + t * self.dilations[i])
            .filter(|p| (low..high).contains(p))
            .count()
    }
}

/// The sum over every window of each channel of `x`: a depthwise convolution with ones.
fn window_sums(cx: &mut NodeCx, x: ValueId, windows: &Windows, dtype: DType) -> Result<ValueId, String> {
    let channels = cx.ty(x).shape[1];
    let mut shape = vec![channels, 1];
    shape.extend(&windows.kernel);
    let count = shape.iter().product();
    let ones = cx.add_const_step(Tensor::from_f32(shape, &vec![1.0; count]).cast(dtype), "ones");
    let attrs = ConvAttrs {
        strides: windows.strides.clone(),
        dilations: windows.dilations.clone(),
        pads: windows.conv_pads(),
        groups: channels,
    };
    cx.add_step(Op::Conv(attrs), vec![x, ones], "window_sum")
}

/// `(Σ |x|^p)^(1/p)` over each window; p = 1 and 2 without `pow`.
fn lp_pool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let p = cx.attr_int("p", 2)?;
    if p < 1 {
        return Err(format!("p must be 1 or more, got {p}"));
    }
    let windows = Windows::of(cx, x)?;
    let magnitude = cx.add_step(Op::Unary(UnaryOp::Abs), vec![x], "abs")?;
    let powered = match p {
        1 => magnitude,
        2 => cx.add_step(Op::Binary(BinaryOp::Mul), vec![x, x], "square")?,
        _ => {
            let exponent = cx.add_const_step(Tensor::scalar_f32(p as f32).cast(dtype), "p");
            cx.add_step(Op::Binary(BinaryOp::Pow), vec![magnitude, exponent], "power")?
        }
    };
    let sums = window_sums(cx, powered, &windows, dtype)?;
    match p {
        1 => cx.add(Op::Identity, vec![sums]),
        2 => cx.add(Op::Unary(UnaryOp::Sqrt), vec![sums]),
        _ => {
            let root = cx.add_const_step(Tensor::scalar_f32(1.0 / p as f32).cast(dtype), "inverse_p");
            cx.add(Op::Binary(BinaryOp::Pow), vec![sums, root])
        }
    }
}

/// AveragePool with dilations (MIL's `avg_pool` has none): window sums divided by each
/// window's tap count, a constant `[1, 1, *output]` (the product of per-axis counts).
pub(super) fn dilated_average_pool(cx: &mut NodeCx, count_padding: bool) -> Result<Vec<ValueId>, String> {
    let (x, dtype) = cx.float_input(0)?;
    let windows = Windows::of(cx, x)?;
    let sums = window_sums(cx, x, &windows, dtype)?;
    let mut counts = vec![1.0f32];
    for (i, &size) in windows.output.iter().enumerate() {
        let axis: Vec<usize> = (0..size).map(|o| windows.taps(i, o, count_padding)).collect();
        if axis.contains(&0) {
            return Err(format!("a pooling window on spatial axis {i} covers no input"));
        }
        counts = counts
            .iter()
            .flat_map(|&c| axis.iter().map(move |&t| c * t as f32))
            .collect();
    }
    let mut shape = vec![1, 1];
    shape.extend(&windows.output);
    let counts = cx.add_const_step(Tensor::from_f32(shape, &counts).cast(dtype), "window_counts");
    cx.add(Op::Binary(BinaryOp::Div), vec![sums, counts])
}

/// MaxPool with dilations: `maximum` over the kernel's taps, each a strided slice of the input
/// padded with -inf (so padding never wins), `prod(kernel)` slices in all.
pub(super) fn dilated_max_pool(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let (x, _) = cx.float_input(0)?;
    if cx.has_output(1) {
        return Err("the Indices output of a dilated MaxPool is not supported".into());
    }
    if cx.attr_int("storage_order", 0)? != 0 {
        return Err("storage_order=1 is not supported".into());
    }
    let windows = Windows::of(cx, x)?;
    let mut pads = vec![[0, 0]; 2];
    pads.extend(windows.conv_pads());
    let padded = cx.add_step(
        Op::Pad {
            pads,
            mode: PadMode::Constant,
            value: f32::NEG_INFINITY,
        },
        vec![x],
        "padded",
    )?;
    let shape = cx.ty(x).shape.clone();
    let taps: usize = windows.kernel.iter().product();
    let mut best: Option<ValueId> = None;
    for tap in 0..taps {
        let mut rest = tap;
        let mut axes = vec![SliceAxis::full(shape[0]), SliceAxis::full(shape[1])];
        for i in (0..windows.kernel.len()).rev() {
            let t = rest % windows.kernel[i];
            rest /= windows.kernel[i];
            let begin = t * windows.dilations[i];
            let end = begin + (windows.output[i] - 1) * windows.strides[i] + 1;
            axes.insert(
                2,
                SliceAxis {
                    begin,
                    end: Some(end),
                    stride: windows.strides[i] as i64,
                },
            );
        }
        let slice = cx.add_step(Op::Slice { axes }, vec![padded], &format!("tap{tap}"))?;
        best = Some(match best {
            None => slice,
            Some(b) if tap + 1 == taps => return cx.add(Op::Binary(BinaryOp::Maximum), vec![b, slice]),
            Some(b) => cx.add_step(Op::Binary(BinaryOp::Maximum), vec![b, slice], &format!("max{tap}"))?,
        });
    }
    // A single tap: the slice is the result.
    cx.add(Op::Identity, vec![best.ok_or("the kernel has no taps")?])
}
