//! The op generators: each reads what it needs from the input, finds operands among the values
//! built so far, and adds a valid node (or nothing, when no operand fits).

use super::{
    attr_float, attr_floats, attr_int, attr_ints, attr_string, attr_tensor, numel, Elem, Gen, Val, MAX_ELEMENTS,
};
use arbitrary::Result;
use edgec::proto::onnx::tensor_proto::DataType;
use edgec::proto::onnx::{AttributeProto, TensorProto};

type Build = fn(&mut Gen) -> Result<()>;

/// Ops whose output shapes the generator computes, so later nodes can consume them.
pub const CHAINED: &[(&str, Build)] = &[
    ("unary", unary),
    ("unary", unary),
    ("binary", binary),
    ("binary", binary),
    ("compare", compare),
    ("logic", logic),
    ("where", where_op),
    ("cast", cast),
    ("clip", clip),
    ("softmax", softmax),
    ("matmul", matmul),
    ("gemm", gemm),
    ("conv", conv),
    ("pool", pool),
    ("global_pool", global_pool),
    ("batch_norm", batch_norm),
    ("norm", norm),
    ("reduce", reduce),
    ("arg", arg_reduce),
    ("transpose", transpose),
    ("reshape", reshape),
    ("flatten", flatten),
    ("squeeze", squeeze),
    ("unsqueeze", unsqueeze),
    ("concat", concat),
    ("split", split),
    ("slice", slice),
    ("expand", expand),
    ("tile", tile),
    ("pad", pad),
    ("gather", gather),
    ("cumsum", cumsum),
    ("topk", topk),
    ("shape", shape_ops),
    ("depth_space", depth_space),
    ("if", super::control::if_op),
    ("loop", super::control::loop_op),
    ("scatter", super::scatter::scatter),
];

fn axis_in(g: &mut Gen, rank: usize) -> Result<i64> {
    let r = rank.max(1) as i64;
    let a = g.u.int_in_range(0..=r - 1)?;
    // Negative axes count from the end.
    Ok(if g.u.ratio(1, 3)? { a - r } else { a })
}

fn small_float(g: &mut Gen) -> Result<f32> {
    Ok(f32::from(g.u.int_in_range(-16i8..=16)?) / 8.0)
}

fn unary(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float()? else { return Ok(()) };
    let mut ops: Vec<&str> = vec![
        "Relu",
        "Sigmoid",
        "Tanh",
        "Exp",
        "Log",
        "Abs",
        "Neg",
        "Sqrt",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Erf",
        "Softplus",
        "Elu",
        "LeakyRelu",
        "Selu",
        "HardSigmoid",
        "Identity",
        "Dropout",
        "PRelu",
    ];
    if g.opset >= 14 {
        ops.push("HardSwish");
    }
    if g.opset >= 18 {
        ops.push("Mish");
    }
    if g.opset >= 20 {
        ops.push("Gelu");
    }
    let op = *g.u.choose(&ops)?;
    let mut inputs = vec![x.name.clone()];
    let mut attrs = Vec::new();
    match op {
        "Elu" | "LeakyRelu" if g.u.arbitrary()? => attrs.push(attr_float("alpha", small_float(g)?)),
        "Selu" | "HardSigmoid" => {
            if g.u.arbitrary()? {
                attrs.push(attr_float("alpha", small_float(g)?));
            }
            let second = if op == "Selu" { "gamma" } else { "beta" };
            if g.u.arbitrary()? {
                attrs.push(attr_float(second, small_float(g)?));
            }
        }
        "Gelu" if g.u.arbitrary()? => attrs.push(attr_string("approximate", g.u.choose(&["none", "tanh"])?)),
        "PRelu" => {
            // The slope broadcasts to x: per channel, a scalar or the whole shape.
            let shape = broadcast_shape(g, &x.shape)?;
            inputs.push(g.init_f32(&shape)?);
        }
        _ => {}
    }
    g.node1(op, inputs, attrs, Elem::F32, x.shape);
    Ok(())
}

/// A shape that broadcasts to `shape`: some dimensions set to 1, some leading ones dropped.
fn broadcast_shape(g: &mut Gen, shape: &[i64]) -> Result<Vec<i64>> {
    let drop = g.u.int_in_range(0..=shape.len())?;
    let mut out = Vec::new();
    for &d in &shape[drop..] {
        out.push(if g.u.arbitrary()? { 1 } else { d });
    }
    Ok(out)
}

/// A second operand for `x` in a broadcasting op: `x` itself, another value of a compatible
/// shape, or a new constant.
fn other_operand(g: &mut Gen, x: &Val, elem: Elem) -> Result<String> {
    match g.u.int_in_range(0..=3)? {
        0 => Ok(x.name.clone()),
        1 => {
            let target = x.shape.clone();
            let found = g.pick(|v| {
                v.elem == elem
                    && v.rank() <= target.len()
                    && v.shape
                        .iter()
                        .rev()
                        .zip(target.iter().rev())
                        .all(|(&a, &b)| a == b || a == 1)
            })?;
            match found {
                Some(v) => Ok(v.name),
                None => Ok(x.name.clone()),
            }
        }
        _ => {
            let shape = broadcast_shape(g, &x.shape)?;
            match elem {
                Elem::F32 => g.init_f32(&shape),
                _ => {
                    let mut values = Vec::new();
                    for _ in 0..numel(&shape) {
                        values.push(g.u.int_in_range(0..=3)?);
                    }
                    Ok(g.init_i64(&shape, values))
                }
            }
        }
    }
}

fn binary(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem != Elem::Bool)? else {
        return Ok(());
    };
    let ops: &[&str] = if x.elem == Elem::F32 {
        &["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"]
    } else {
        &["Add", "Sub", "Mul", "Max", "Min"]
    };
    let op = *g.u.choose(ops)?;
    let y = other_operand(g, &x, x.elem)?;
    let inputs = if g.u.arbitrary()? {
        vec![y, x.name.clone()]
    } else {
        vec![x.name.clone(), y]
    };
    g.node1(op, inputs, Vec::new(), x.elem, x.shape);
    Ok(())
}

fn compare(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem != Elem::Bool)? else {
        return Ok(());
    };
    let mut ops = vec!["Equal", "Less", "Greater"];
    if g.opset >= 12 {
        ops.extend(["LessOrEqual", "GreaterOrEqual"]);
    }
    let op = *g.u.choose(&ops)?;
    let y = other_operand(g, &x, x.elem)?;
    g.node1(op, vec![x.name, y], Vec::new(), Elem::Bool, x.shape);
    Ok(())
}

fn logic(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem == Elem::Bool)? else {
        return Ok(());
    };
    let op = *g.u.choose(&["Not", "And", "Or", "Xor"])?;
    let mut inputs = vec![x.name.clone()];
    if op != "Not" {
        let target = x.shape.clone();
        let y = g
            .pick(|v| v.elem == Elem::Bool && v.shape == target)?
            .map_or(x.name.clone(), |v| v.name);
        inputs.push(y);
    }
    g.node1(op, inputs, Vec::new(), Elem::Bool, x.shape);
    Ok(())
}

fn where_op(g: &mut Gen) -> Result<()> {
    let Some(cond) = g.pick(|v| v.elem == Elem::Bool)? else {
        return Ok(());
    };
    let target = cond.shape.clone();
    let Some(x) = g.pick(|v| v.elem == Elem::F32 && v.shape == target)? else {
        return Ok(());
    };
    let y = other_operand(g, &x, Elem::F32)?;
    g.node1("Where", vec![cond.name, x.name, y], Vec::new(), Elem::F32, x.shape);
    Ok(())
}

fn cast(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|_| true)? else { return Ok(()) };
    let (to, elem) = *g.u.choose(&[
        (DataType::Float, Elem::F32),
        (DataType::Int64, Elem::I64),
        (DataType::Bool, Elem::Bool),
        (DataType::Float16, Elem::F32),
        (DataType::Int32, Elem::I64),
        (DataType::Double, Elem::F32),
    ])?;
    let x_name = x.name.clone();
    let names = g.node(
        "Cast",
        vec![x_name],
        vec![attr_int("to", to as i64)],
        vec![Some((elem, x.shape.clone()))],
    );
    // fp16, int32 and f64 values are cast back, so every value keeps one of the tracked types.
    if !matches!(to, DataType::Float | DataType::Int64 | DataType::Bool) {
        let back = if elem == Elem::F32 {
            DataType::Float
        } else {
            DataType::Int64
        };
        g.vals.pop();
        g.node1("Cast", names, vec![attr_int("to", back as i64)], elem, x.shape);
    }
    Ok(())
}

fn clip(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float()? else { return Ok(()) };
    let lo = small_float(g)?;
    let hi = lo + f32::from(g.u.int_in_range(0u8..=16)?) / 4.0;
    let (with_min, with_max): (bool, bool) = (g.u.arbitrary()?, g.u.arbitrary()?);
    if g.opset < 11 {
        let mut attrs = Vec::new();
        if with_min {
            attrs.push(attr_float("min", lo));
        }
        if with_max {
            attrs.push(attr_float("max", hi));
        }
        g.node1("Clip", vec![x.name], attrs, Elem::F32, x.shape);
    } else {
        let mut inputs = vec![x.name];
        inputs.push(if with_min {
            g.init_scalar(Elem::F32, f64::from(lo))
        } else {
            String::new()
        });
        if with_max {
            let hi = g.init_scalar(Elem::F32, f64::from(hi));
            inputs.push(hi);
        }
        g.node1("Clip", inputs, Vec::new(), Elem::F32, x.shape);
    }
    Ok(())
}

fn softmax(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float()? else { return Ok(()) };
    let op = *g.u.choose(&["Softmax", "LogSoftmax"])?;
    let mut attrs = Vec::new();
    if g.u.arbitrary()? {
        attrs.push(attr_int("axis", axis_in(g, x.rank())?));
    }
    g.node1(op, vec![x.name], attrs, Elem::F32, x.shape);
    Ok(())
}

fn matmul(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem == Elem::F32 && v.rank() >= 1)? else {
        return Ok(());
    };
    let k = *x.shape.last().unwrap_or(&1);
    let n = g.u.int_in_range(1..=6)?;
    let w = g.init_f32(&[k, n])?;
    let mut shape = x.shape.clone();
    if x.rank() == 1 {
        shape = vec![n];
    } else if let Some(last) = shape.last_mut() {
        *last = n;
    }
    if numel(&shape) <= MAX_ELEMENTS {
        g.node1("MatMul", vec![x.name, w], Vec::new(), Elem::F32, shape);
    }
    Ok(())
}

fn gemm(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(2..=2)? else {
        return Ok(());
    };
    let trans_a: bool = g.u.arbitrary()?;
    let trans_b: bool = g.u.arbitrary()?;
    let (m, k) = if trans_a {
        (x.shape[1], x.shape[0])
    } else {
        (x.shape[0], x.shape[1])
    };
    let n = g.u.int_in_range(1..=6)?;
    let w = g.init_f32(&if trans_b { [n, k] } else { [k, n] })?;
    let mut inputs = vec![x.name, w];
    match g.u.int_in_range(0..=3)? {
        0 => {}
        1 => inputs.push(g.init_f32(&[n])?),
        2 => inputs.push(g.init_f32(&[m, n])?),
        _ => inputs.push(g.init_f32(&[1])?),
    }
    let mut attrs = vec![
        attr_int("transA", i64::from(trans_a)),
        attr_int("transB", i64::from(trans_b)),
    ];
    if g.u.arbitrary()? {
        attrs.push(attr_float("alpha", small_float(g)?));
        attrs.push(attr_float("beta", small_float(g)?));
    }
    g.node1("Gemm", inputs, attrs, Elem::F32, vec![m, n]);
    Ok(())
}

/// Window parameters of one spatial axis: kernel, stride, dilation, pads (begin, end).
struct Window {
    kernel: i64,
    stride: i64,
    dilation: i64,
    pads: (i64, i64),
}

fn window(g: &mut Gen, size: i64, dilate: bool) -> Result<Window> {
    let kernel = g.u.int_in_range(1..=3)?;
    let stride = g.u.int_in_range(1..=2)?;
    let dilation = if dilate { g.u.int_in_range(1..=2)? } else { 1 };
    // Pads stay below the kernel, so no window lies in padding alone.
    let pads = (g.u.int_in_range(0..=kernel - 1)?, g.u.int_in_range(0..=kernel - 1)?);
    let _ = size;
    Ok(Window {
        kernel,
        stride,
        dilation,
        pads,
    })
}

fn window_out(size: i64, w: &Window, ceil: bool) -> i64 {
    let span = size + w.pads.0 + w.pads.1 - w.dilation * (w.kernel - 1) - 1;
    if span < 0 {
        return 0;
    }
    let out = if ceil {
        (span + w.stride - 1) / w.stride + 1
    } else {
        span / w.stride + 1
    };
    // ONNX drops a last window that would start in the end padding.
    if ceil && (out - 1) * w.stride >= size + w.pads.0 {
        out - 1
    } else {
        out
    }
}

fn window_attrs(windows: &[Window], attrs: &mut Vec<AttributeProto>, dilations: bool) {
    attrs.push(attr_ints("kernel_shape", windows.iter().map(|w| w.kernel).collect()));
    attrs.push(attr_ints("strides", windows.iter().map(|w| w.stride).collect()));
    let pads = windows
        .iter()
        .map(|w| w.pads.0)
        .chain(windows.iter().map(|w| w.pads.1))
        .collect();
    attrs.push(attr_ints("pads", pads));
    if dilations {
        attrs.push(attr_ints("dilations", windows.iter().map(|w| w.dilation).collect()));
    }
}

fn conv(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(3..=4)? else {
        return Ok(());
    };
    let (n, c) = (x.shape[0], x.shape[1]);
    let spatial = &x.shape[2..];
    let groups: Vec<i64> = (1..=c).filter(|d| c % d == 0).collect();
    let group = *g.u.choose(&groups)?;
    let m = group * g.u.int_in_range(1..=2)?;
    let mut windows = Vec::new();
    for &s in spatial {
        windows.push(window(g, s, true)?);
    }
    let mut out = vec![n, m];
    for (&s, w) in spatial.iter().zip(&windows) {
        out.push(window_out(s, w, false));
    }
    if out.contains(&0) || numel(&out) > MAX_ELEMENTS {
        return Ok(());
    }
    let mut wshape = vec![m, c / group];
    wshape.extend(windows.iter().map(|w| w.kernel));
    let weight = g.init_f32(&wshape)?;
    let mut inputs = vec![x.name, weight];
    if g.u.arbitrary()? {
        inputs.push(g.init_f32(&[m])?);
    }
    let mut attrs = vec![attr_int("group", group)];
    window_attrs(&windows, &mut attrs, true);
    g.node1("Conv", inputs, attrs, Elem::F32, out);
    Ok(())
}

fn pool(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(3..=4)? else {
        return Ok(());
    };
    let max: bool = g.u.arbitrary()?;
    let ceil = g.opset >= 10 && g.u.ratio(1, 3)?;
    let mut windows = Vec::new();
    for &s in &x.shape[2..] {
        windows.push(window(g, s, max && g.opset >= 10)?);
    }
    let mut out = x.shape[..2].to_vec();
    for (&s, w) in x.shape[2..].iter().zip(&windows) {
        out.push(window_out(s, w, ceil));
    }
    if out.contains(&0) {
        return Ok(());
    }
    let mut attrs = Vec::new();
    window_attrs(&windows, &mut attrs, max && g.opset >= 10);
    if ceil {
        attrs.push(attr_int("ceil_mode", 1));
    }
    if !max && g.u.arbitrary()? {
        attrs.push(attr_int("count_include_pad", 1));
    }
    g.node1(
        if max { "MaxPool" } else { "AveragePool" },
        vec![x.name],
        attrs,
        Elem::F32,
        out,
    );
    Ok(())
}

fn global_pool(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(3..=4)? else {
        return Ok(());
    };
    let op = *g.u.choose(&["GlobalAveragePool", "GlobalMaxPool"])?;
    let mut shape = x.shape.clone();
    shape[2..].iter_mut().for_each(|d| *d = 1);
    g.node1(op, vec![x.name], Vec::new(), Elem::F32, shape);
    Ok(())
}

fn batch_norm(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(2..=4)? else {
        return Ok(());
    };
    let c = x.shape[1];
    let scale = g.init_f32(&[c])?;
    let bias = g.init_f32(&[c])?;
    let mean = g.init_f32(&[c])?;
    let var = g.init_positive(&[c])?;
    let mut attrs = Vec::new();
    if g.u.arbitrary()? {
        attrs.push(attr_float("epsilon", 1e-3));
    }
    g.node1(
        "BatchNormalization",
        vec![x.name, scale, bias, mean, var],
        attrs,
        Elem::F32,
        x.shape,
    );
    Ok(())
}

fn norm(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(2..=4)? else {
        return Ok(());
    };
    let c = x.shape[1];
    match g.u.int_in_range(0..=3)? {
        0 if x.rank() >= 3 => {
            let scale = g.init_positive(&[c])?;
            let bias = g.init_f32(&[c])?;
            g.node1(
                "InstanceNormalization",
                vec![x.name, scale, bias],
                Vec::new(),
                Elem::F32,
                x.shape,
            );
        }
        1 if g.opset >= 17 => {
            let axis = axis_in(g, x.rank())?;
            let first = if axis < 0 { axis + x.rank() as i64 } else { axis } as usize;
            let scale = g.init_positive(&x.shape[first..])?;
            let mut inputs = vec![x.name.clone(), scale];
            if g.u.arbitrary()? {
                inputs.push(g.init_f32(&x.shape[first..])?);
            }
            g.node1(
                "LayerNormalization",
                inputs,
                vec![attr_int("axis", axis)],
                Elem::F32,
                x.shape,
            );
        }
        2 if g.opset >= 18 && x.rank() >= 3 => {
            let groups: Vec<i64> = (1..=c).filter(|d| c % d == 0).collect();
            let num_groups = *g.u.choose(&groups)?;
            let per = if g.opset >= 21 { c } else { num_groups };
            let scale = g.init_positive(&[per])?;
            let bias = g.init_f32(&[per])?;
            let attrs = vec![attr_int("num_groups", num_groups)];
            g.node1(
                "GroupNormalization",
                vec![x.name, scale, bias],
                attrs,
                Elem::F32,
                x.shape,
            );
        }
        _ if x.rank() == 4 => {
            let size = *g.u.choose(&[1i64, 3, 5])?;
            g.node1("LRN", vec![x.name], vec![attr_int("size", size)], Elem::F32, x.shape);
        }
        _ => {}
    }
    Ok(())
}

/// Distinct axes of `rank` (possibly none), some negative.
fn some_axes(g: &mut Gen, rank: usize) -> Result<Vec<i64>> {
    let mut axes = Vec::new();
    for a in 0..rank as i64 {
        if g.u.ratio(1, 2)? {
            axes.push(if g.u.ratio(1, 4)? { a - rank as i64 } else { a });
        }
    }
    Ok(axes)
}

fn normalized(axes: &[i64], rank: usize) -> Vec<usize> {
    axes.iter()
        .map(|&a| if a < 0 { a + rank as i64 } else { a } as usize)
        .collect()
}

fn reduce(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float()? else { return Ok(()) };
    let op = *g.u.choose(&[
        "ReduceMean",
        "ReduceSum",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceL2",
    ])?;
    let keepdims: bool = g.u.arbitrary()?;
    let axes = some_axes(g, x.rank())?;
    let reduced: Vec<usize> = if axes.is_empty() {
        (0..x.rank()).collect()
    } else {
        normalized(&axes, x.rank())
    };
    let shape: Vec<i64> = (0..x.rank())
        .filter_map(|i| match (reduced.contains(&i), keepdims) {
            (true, true) => Some(1),
            (true, false) => None,
            (false, _) => Some(x.shape[i]),
        })
        .collect();
    let axes_input_since = if op == "ReduceSum" { 13 } else { 18 };
    let mut inputs = vec![x.name];
    let mut attrs = vec![attr_int("keepdims", i64::from(keepdims))];
    if !axes.is_empty() {
        if g.opset >= axes_input_since {
            inputs.push(g.init_ints(axes));
        } else {
            attrs.push(attr_ints("axes", axes));
        }
    }
    g.node1(op, inputs, attrs, Elem::F32, shape);
    Ok(())
}

fn arg_reduce(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem != Elem::Bool && v.rank() > 0)? else {
        return Ok(());
    };
    let op = *g.u.choose(&["ArgMax", "ArgMin"])?;
    let axis = axis_in(g, x.rank())?;
    let keepdims: bool = g.u.arbitrary()?;
    let a = normalized(&[axis], x.rank())[0];
    let mut shape = x.shape.clone();
    if keepdims {
        shape[a] = 1;
    } else {
        shape.remove(a);
    }
    let mut attrs = vec![attr_int("axis", axis), attr_int("keepdims", i64::from(keepdims))];
    if g.opset >= 12 && g.u.arbitrary()? {
        attrs.push(attr_int("select_last_index", 1));
    }
    g.node1(op, vec![x.name], attrs, Elem::I64, shape);
    Ok(())
}

fn transpose(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|_| true)? else { return Ok(()) };
    let mut perm: Vec<i64> = (0..x.rank() as i64).collect();
    let mut attrs = Vec::new();
    if g.u.ratio(3, 4)? {
        for i in (1..perm.len()).rev() {
            let j = g.u.int_in_range(0..=i)?;
            perm.swap(i, j);
        }
        attrs.push(attr_ints("perm", perm.clone()));
    } else {
        perm.reverse();
    }
    let shape = perm.iter().map(|&p| x.shape[p as usize]).collect();
    g.node1("Transpose", vec![x.name], attrs, x.elem, shape);
    Ok(())
}

/// A random factorisation of `count` into `rank` dimensions.
fn factor(g: &mut Gen, mut count: i64, rank: usize) -> Result<Vec<i64>> {
    let mut dims = Vec::new();
    for _ in 1..rank {
        let divisors: Vec<i64> = (1..=count).filter(|d| count % d == 0).collect();
        let d = *g.u.choose(&divisors)?;
        dims.push(d);
        count /= d;
    }
    dims.push(count);
    Ok(dims)
}

fn reshape(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|_| true)? else { return Ok(()) };
    let rank = g.u.int_in_range(1..=4)?;
    let shape = factor(g, numel(&x.shape), rank)?;
    let mut target = shape.clone();
    // Copy a dimension (0) where it is unchanged, and infer one (-1).
    for (i, t) in target.iter_mut().enumerate() {
        if x.shape.get(i) == Some(t) && g.u.ratio(1, 3)? {
            *t = 0;
        }
    }
    if g.u.arbitrary()? {
        let i = g.u.choose_index(target.len())?;
        if target[i] != 0 {
            target[i] = -1;
        }
    }
    let target = g.init_ints(target);
    g.node1("Reshape", vec![x.name, target], Vec::new(), x.elem, shape);
    Ok(())
}

fn flatten(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|_| true)? else { return Ok(()) };
    let axis = g.u.int_in_range(0..=x.rank() as i64)?;
    let outer = numel(&x.shape[..axis as usize]);
    let inner = numel(&x.shape[axis as usize..]);
    g.node1(
        "Flatten",
        vec![x.name],
        vec![attr_int("axis", axis)],
        x.elem,
        vec![outer, inner],
    );
    Ok(())
}

fn squeeze(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.shape.contains(&1))? else {
        return Ok(());
    };
    let ones: Vec<i64> = (0..x.rank() as i64).filter(|&i| x.shape[i as usize] == 1).collect();
    let axes: Vec<i64> = ones
        .iter()
        .copied()
        .filter(|_| g.u.ratio(2, 3).unwrap_or(true))
        .collect();
    let removed: Vec<i64> = if axes.is_empty() { ones } else { axes.clone() };
    let shape: Vec<i64> = (0..x.rank() as i64)
        .filter(|i| !removed.contains(i))
        .map(|i| x.shape[i as usize])
        .collect();
    let mut inputs = vec![x.name];
    let mut attrs = Vec::new();
    if !axes.is_empty() {
        if g.opset >= 13 {
            inputs.push(g.init_ints(axes));
        } else {
            attrs.push(attr_ints("axes", axes));
        }
    }
    g.node1("Squeeze", inputs, attrs, x.elem, shape);
    Ok(())
}

fn unsqueeze(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.rank() < 5)? else {
        return Ok(());
    };
    let out_rank = x.rank() + 1;
    let axis = g.u.int_in_range(0..=x.rank())?;
    let mut shape = x.shape.clone();
    shape.insert(axis, 1);
    let written = if g.u.arbitrary()? {
        axis as i64 - out_rank as i64
    } else {
        axis as i64
    };
    if g.opset >= 13 {
        let axes = g.init_ints(vec![written]);
        g.node1("Unsqueeze", vec![x.name, axes], Vec::new(), x.elem, shape);
    } else {
        g.node1(
            "Unsqueeze",
            vec![x.name],
            vec![attr_ints("axes", vec![written])],
            x.elem,
            shape,
        );
    }
    Ok(())
}

fn concat(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.rank() >= 1)? else {
        return Ok(());
    };
    let axis = axis_in(g, x.rank())?;
    let a = normalized(&[axis], x.rank())[0];
    let mut inputs = vec![x.name.clone()];
    let mut shape = x.shape.clone();
    let extra = g.u.int_in_range(1..=2)?;
    for _ in 0..extra {
        if x.elem == Elem::F32 && g.u.arbitrary()? {
            let mut other = x.shape.clone();
            other[a] = g.u.int_in_range(1..=3)?;
            shape[a] += other[a];
            inputs.push(g.init_f32(&other)?);
        } else {
            shape[a] += x.shape[a];
            inputs.push(x.name.clone());
        }
    }
    if numel(&shape) <= MAX_ELEMENTS {
        g.node1("Concat", inputs, vec![attr_int("axis", axis)], x.elem, shape);
    }
    Ok(())
}

fn split(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.shape.iter().any(|&d| d >= 2))? else {
        return Ok(());
    };
    let candidates: Vec<usize> = (0..x.rank()).filter(|&i| x.shape[i] >= 2).collect();
    let a = *g.u.choose(&candidates)?;
    let dim = x.shape[a];
    let parts = g.u.int_in_range(2..=dim.min(3))?;
    let even = g.u.arbitrary::<bool>()? && dim % parts == 0;
    let sizes: Vec<i64> = if even {
        vec![dim / parts; parts as usize]
    } else {
        let first = g.u.int_in_range(1..=dim - 1)?;
        vec![first, dim - first]
    };
    let mut inputs = vec![x.name.clone()];
    let mut attrs = vec![attr_int("axis", a as i64)];
    if even && g.opset >= 18 && g.u.arbitrary()? {
        attrs.push(attr_int("num_outputs", parts));
    } else if even && g.u.arbitrary()? {
        // No sizes at all: equal parts, one per output.
    } else if g.opset >= 13 {
        inputs.push(g.init_ints(sizes.clone()));
    } else {
        attrs.push(attr_ints("split", sizes.clone()));
    }
    let outputs = sizes
        .iter()
        .map(|&s| {
            let mut shape = x.shape.clone();
            shape[a] = s;
            Some((x.elem, shape))
        })
        .collect();
    g.node("Split", inputs, attrs, outputs);
    Ok(())
}

fn slice(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.rank() >= 1)? else {
        return Ok(());
    };
    let a = g.u.choose_index(x.rank())?;
    let dim = x.shape[a];
    let step: i64 = if g.opset >= 10 { *g.u.choose(&[1, 1, 2, -1])? } else { 1 };
    let (start, end, len) = if step > 0 {
        let start = g.u.int_in_range(0..=dim - 1)?;
        let end = g.u.int_in_range(start + 1..=dim + 2)?;
        (start, end, (end.min(dim) - start + step - 1) / step)
    } else {
        // Backwards from `start` down to just after `end` (-1 - dim: "before the first").
        let start = g.u.int_in_range(0..=dim - 1)?;
        (start, -1 - dim, start + 1)
    };
    let mut shape = x.shape.clone();
    shape[a] = len;
    let axis = if g.u.arbitrary()? {
        a as i64 - x.rank() as i64
    } else {
        a as i64
    };
    if g.opset >= 10 {
        let starts = g.init_ints(vec![start]);
        let ends = g.init_ints(vec![end]);
        let axes = g.init_ints(vec![axis]);
        let steps = g.init_ints(vec![step]);
        g.node1(
            "Slice",
            vec![x.name, starts, ends, axes, steps],
            Vec::new(),
            x.elem,
            shape,
        );
    } else {
        let attrs = vec![
            attr_ints("starts", vec![start]),
            attr_ints("ends", vec![end]),
            attr_ints("axes", vec![axis]),
        ];
        g.node1("Slice", vec![x.name], attrs, x.elem, shape);
    }
    Ok(())
}

fn expand(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|_| true)? else { return Ok(()) };
    let lead = g.u.int_in_range(0..=1)?;
    let mut target: Vec<i64> = Vec::new();
    for _ in 0..lead {
        target.push(g.u.int_in_range(1..=3)?);
    }
    for &d in &x.shape {
        target.push(if d == 1 {
            g.u.int_in_range(1..=3)?
        } else if g.u.ratio(1, 4)? {
            1
        } else {
            d
        });
    }
    let shape: Vec<i64> = target
        .iter()
        .enumerate()
        .map(|(i, &t)| if i < lead { t } else { t.max(x.shape[i - lead]) })
        .collect();
    if numel(&shape) <= MAX_ELEMENTS {
        let target = g.init_ints(target);
        g.node1("Expand", vec![x.name, target], Vec::new(), x.elem, shape);
    }
    Ok(())
}

fn tile(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.rank() >= 1)? else {
        return Ok(());
    };
    let mut repeats = Vec::new();
    for _ in 0..x.rank() {
        repeats.push(g.u.int_in_range(1..=3)?);
    }
    let shape: Vec<i64> = x.shape.iter().zip(&repeats).map(|(d, r)| d * r).collect();
    if numel(&shape) <= MAX_ELEMENTS {
        let repeats = g.init_ints(repeats);
        g.node1("Tile", vec![x.name, repeats], Vec::new(), x.elem, shape);
    }
    Ok(())
}

fn pad(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem == Elem::F32 && v.rank() >= 1)? else {
        return Ok(());
    };
    let mode = *g.u.choose(&["constant", "reflect", "edge"])?;
    let rank = x.rank();
    let mut pads = vec![0i64; 2 * rank];
    for i in 0..rank {
        // Reflection needs more than the pad on each side.
        let most = if mode == "reflect" { (x.shape[i] - 1).min(2) } else { 2 };
        pads[i] = g.u.int_in_range(0..=most)?;
        pads[i + rank] = g.u.int_in_range(0..=most)?;
    }
    let shape: Vec<i64> = (0..rank).map(|i| x.shape[i] + pads[i] + pads[i + rank]).collect();
    if numel(&shape) > MAX_ELEMENTS {
        return Ok(());
    }
    let mut attrs = vec![attr_string("mode", mode)];
    let mut inputs = vec![x.name];
    let value = small_float(g)?;
    if g.opset >= 11 {
        inputs.push(g.init_ints(pads));
        if mode == "constant" && g.u.arbitrary()? {
            inputs.push(g.init_scalar(Elem::F32, f64::from(value)));
        }
    } else {
        attrs.push(attr_ints("pads", pads));
        if mode == "constant" {
            attrs.push(attr_float("value", value));
        }
    }
    g.node1("Pad", inputs, attrs, Elem::F32, shape);
    Ok(())
}

fn gather(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.rank() >= 1)? else {
        return Ok(());
    };
    let a = g.u.choose_index(x.rank())?;
    let dim = x.shape[a];
    let elements = g.opset >= 11 && g.u.ratio(1, 3)?;
    let index_shape = if elements {
        let mut s = x.shape.clone();
        s[a] = g.u.int_in_range(1..=3)?;
        s
    } else {
        g.shape(0, 2)?
    };
    let mut indices = Vec::new();
    for _ in 0..numel(&index_shape) {
        // Negative indices count from the end.
        indices.push(g.u.int_in_range(-dim..=dim - 1)?);
    }
    let shape = if elements {
        index_shape.clone()
    } else {
        let mut s = x.shape[..a].to_vec();
        s.extend(&index_shape);
        s.extend(&x.shape[a + 1..]);
        s
    };
    if numel(&shape) > MAX_ELEMENTS {
        return Ok(());
    }
    let indices = g.init_i64(&index_shape, indices);
    let op = if elements { "GatherElements" } else { "Gather" };
    let axis = if g.u.arbitrary()? {
        a as i64 - x.rank() as i64
    } else {
        a as i64
    };
    g.node1(op, vec![x.name, indices], vec![attr_int("axis", axis)], x.elem, shape);
    Ok(())
}

fn cumsum(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem != Elem::Bool && v.rank() >= 1)? else {
        return Ok(());
    };
    let axis = axis_in(g, x.rank())?;
    let axis = g.init_scalar(Elem::I64, axis as f64);
    let mut attrs = Vec::new();
    if g.u.arbitrary()? {
        attrs.push(attr_int("exclusive", 1));
    }
    if g.u.arbitrary()? {
        attrs.push(attr_int("reverse", 1));
    }
    g.node1("CumSum", vec![x.name, axis], attrs, x.elem, x.shape);
    Ok(())
}

fn topk(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|v| v.elem == Elem::F32 && v.rank() >= 1)? else {
        return Ok(());
    };
    let a = g.u.choose_index(x.rank())?;
    let k = g.u.int_in_range(1..=x.shape[a])?;
    let mut shape = x.shape.clone();
    shape[a] = k;
    let mut attrs = vec![attr_int("axis", a as i64)];
    if g.opset >= 11 && g.u.arbitrary()? {
        attrs.push(attr_int("largest", 0));
    }
    let mut inputs = vec![x.name];
    if g.opset >= 10 {
        inputs.push(g.init_ints(vec![k]));
    } else {
        attrs.push(attr_int("k", k));
    }
    g.node(
        "TopK",
        inputs,
        attrs,
        vec![Some((Elem::F32, shape.clone())), Some((Elem::I64, shape))],
    );
    Ok(())
}

/// Shape, Size, ConstantOfShape and Range: compile-time values.
fn shape_ops(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick(|_| true)? else { return Ok(()) };
    match g.u.int_in_range(0..=3)? {
        0 => {
            let rank = x.rank() as i64;
            let names = g.node("Shape", vec![x.name], Vec::new(), vec![Some((Elem::I64, vec![rank]))]);
            // Reshape something by its own shape, as exported models do.
            if g.u.arbitrary()? {
                let same = x.shape.clone();
                if let Some(y) = g.pick(|v| v.shape == same)? {
                    g.node1("Reshape", vec![y.name, names[0].clone()], Vec::new(), y.elem, same);
                }
            }
        }
        1 => g.node1("Size", vec![x.name], Vec::new(), Elem::I64, Vec::new()),
        2 => {
            let shape = g.shape(1, 3)?;
            let dims = g.init_ints(shape.clone());
            let mut attrs = Vec::new();
            if g.u.arbitrary()? {
                let value = TensorProto {
                    dims: vec![1],
                    data_type: DataType::Float as i32,
                    float_data: vec![small_float(g)?],
                    ..Default::default()
                };
                attrs.push(attr_tensor("value", value));
            }
            g.node1("ConstantOfShape", vec![dims], attrs, Elem::F32, shape);
        }
        _ if g.opset >= 11 => {
            let start = g.u.int_in_range(-4i64..=4)?;
            let n = g.u.int_in_range(1i64..=8)?;
            let delta = *g.u.choose(&[1i64, 2, -1, 3])?;
            let limit = start + n * delta;
            let s = g.init_scalar(Elem::I64, start as f64);
            let l = g.init_scalar(Elem::I64, limit as f64);
            let d = g.init_scalar(Elem::I64, delta as f64);
            g.node1("Range", vec![s, l, d], Vec::new(), Elem::I64, vec![n]);
        }
        _ => {}
    }
    Ok(())
}

fn depth_space(g: &mut Gen) -> Result<()> {
    let Some(x) = g.pick_float_rank(4..=4)? else {
        return Ok(());
    };
    let [n, c, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let block = g.u.int_in_range(2..=3)?;
    if g.u.arbitrary()? {
        if h % block == 0 && w % block == 0 {
            let shape = vec![n, c * block * block, h / block, w / block];
            g.node1(
                "SpaceToDepth",
                vec![x.name],
                vec![attr_int("blocksize", block)],
                Elem::F32,
                shape,
            );
        }
    } else if c % (block * block) == 0 {
        let mut attrs = vec![attr_int("blocksize", block)];
        if g.opset >= 11 {
            attrs.push(attr_string("mode", g.u.choose(&["DCR", "CRD"])?));
        }
        let shape = vec![n, c / (block * block), h * block, w * block];
        g.node1("DepthToSpace", vec![x.name], attrs, Elem::F32, shape);
    }
    Ok(())
}

/// The attributes terminal nodes draw from: the names edgec's importers read, with their kinds.
const ATTRIBUTES: &[(&str, Kind)] = &[
    ("axis", Kind::Int),
    ("axes", Kind::Ints),
    ("keepdims", Kind::Int),
    ("alpha", Kind::Float),
    ("beta", Kind::Float),
    ("epsilon", Kind::Float),
    (
        "mode",
        Kind::Str(&[
            "constant", "reflect", "edge", "nearest", "linear", "cubic", "DCR", "CRD",
        ]),
    ),
    (
        "coordinate_transformation_mode",
        Kind::Str(&[
            "half_pixel",
            "asymmetric",
            "align_corners",
            "pytorch_half_pixel",
            "tf_crop_and_resize",
        ]),
    ),
    (
        "nearest_mode",
        Kind::Str(&["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
    ),
    ("auto_pad", Kind::Str(&["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])),
    (
        "equation",
        Kind::Str(&[
            "ij,jk->ik",
            "bij,bjk->bik",
            "ii->i",
            "ij->ji",
            "i,i->",
            "...ij,...jk->...ik",
            "abc->cba",
            "ij,ij->ij",
        ]),
    ),
    ("kernel_shape", Kind::Ints),
    ("strides", Kind::Ints),
    ("pads", Kind::Ints),
    ("dilations", Kind::Ints),
    ("output_padding", Kind::Ints),
    ("output_shape", Kind::Ints),
    ("group", Kind::Int),
    ("perm", Kind::Ints),
    ("scales", Kind::Floats),
    ("split", Kind::Ints),
    ("num_outputs", Kind::Int),
    ("to", Kind::Int),
    ("batch_dims", Kind::Int),
    ("blocksize", Kind::Int),
    ("size", Kind::Int),
    ("k", Kind::Int),
    ("value", Kind::Float),
    ("ceil_mode", Kind::Int),
    ("count_include_pad", Kind::Int),
    ("transA", Kind::Int),
    ("transB", Kind::Int),
    ("cubic_coeff_a", Kind::Float),
    ("exclude_outside", Kind::Int),
    ("select_last_index", Kind::Int),
    ("noop_with_empty_axes", Kind::Int),
    ("approximate", Kind::Str(&["none", "tanh", "bogus"])),
    ("num_groups", Kind::Int),
    ("start", Kind::Int),
    ("end", Kind::Int),
];

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Ints,
    Float,
    Floats,
    Str(&'static [&'static str]),
}

fn any_int(g: &mut Gen) -> Result<i64> {
    Ok(match g.u.int_in_range(0..=9)? {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => g.u.arbitrary()?,
        _ => g.u.int_in_range(-4..=8)?,
    })
}

/// A node of any op edgec imports, with inputs and attributes drawn freely: values of the graph
/// or new small constants. Mostly this exercises the importers' checks; its outputs become
/// graph outputs.
pub fn terminal(g: &mut Gen) -> Result<()> {
    let ops = edgec::onnx::supported_op_types();
    let op = *g.u.choose(&ops)?;
    let mut inputs = Vec::new();
    for _ in 0..g.u.int_in_range(1..=4)? {
        let input = match g.u.int_in_range(0..=5)? {
            0 | 1 => g.pick(|_| true)?.map(|v| v.name).unwrap_or_default(),
            2 => {
                let shape = g.shape(0, 3)?;
                g.init_f32(&shape)?
            }
            3 => {
                let mut values = Vec::new();
                for _ in 0..g.u.int_in_range(0..=4)? {
                    values.push(any_int(g)?);
                }
                g.init_ints(values)
            }
            4 => {
                let v = any_int(g)?;
                g.init_scalar(Elem::I64, v as f64)
            }
            _ => String::new(),
        };
        inputs.push(input);
    }
    let mut attrs = Vec::new();
    for _ in 0..g.u.int_in_range(0..=3)? {
        let (name, kind) = *g.u.choose(ATTRIBUTES)?;
        let attr = match kind {
            Kind::Int => attr_int(name, any_int(g)?),
            Kind::Float => attr_float(name, if g.u.ratio(1, 8)? { f32::NAN } else { small_float(g)? }),
            Kind::Ints => {
                let mut values = Vec::new();
                for _ in 0..g.u.int_in_range(0..=6)? {
                    values.push(any_int(g)?);
                }
                attr_ints(name, values)
            }
            Kind::Floats => {
                let mut values = Vec::new();
                for _ in 0..g.u.int_in_range(0..=4)? {
                    values.push(small_float(g)? * 2.0);
                }
                attr_floats(name, values)
            }
            Kind::Str(choices) => attr_string(name, g.u.choose(choices)?),
        };
        attrs.push(attr);
    }
    let outputs = g.u.int_in_range(1..=2)?;
    g.node(op, inputs, attrs, vec![None; outputs]);
    Ok(())
}
