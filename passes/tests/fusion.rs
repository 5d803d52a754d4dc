//! The pattern and cleanup passes on hand-built graphs: each pattern rewritten, its near
//! misses left alone, and the rewritten graph computing what the original did (checked with
//! the constant evaluator where it can).

use edgec_passes::ir::{DType, Graph, GraphOutput, Tensor, TensorType, ValueId};
use edgec_passes::op::{BinaryOp, GeluMode, Op, UnaryOp};
use edgec_passes::pass::{GeluChoice, Pass, PassOptions, Precision};
use edgec_passes::passes::{
    cancel_casts, dedup_constants, eliminate_common_subexpressions, fast_gelu, fold_transpose_reshape, fuse_attention,
    fuse_clip, fuse_gelu,
};
use edgec_passes::verify::{verify, Stage};

fn f32ty(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

fn ops(g: &Graph) -> Vec<String> {
    g.order.iter().map(|&n| g.node(n).op.to_string()).collect()
}

fn run_with(pass: &dyn Pass, g: &mut Graph, options: &PassOptions) {
    if pass.enabled(options) {
        pass.run(g, options).unwrap();
    }
    verify(g, Stage::Legal).unwrap_or_else(|e| panic!("after {}: {e}", pass.name()));
}

fn run(pass: &dyn Pass, g: &mut Graph) {
    run_with(pass, g, &PassOptions::default());
}

fn scalar(g: &mut Graph, v: f32) -> ValueId {
    g.add_const(format!("c{v}"), Tensor::scalar_f32(v))
}

fn bin(g: &mut Graph, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
    g.add_node(Op::Binary(op), vec![a, b], &[], "n").unwrap()[0]
}

fn publish(g: &mut Graph, v: ValueId) {
    g.outputs.push(GraphOutput {
        name: format!("out{}", g.outputs.len()),
        value: v,
    });
}

/// `x · 0.5 · (1 + erf(x / sqrt2))` with the given constant; returns the erf value too.
fn exact_gelu(g: &mut Graph, x: ValueId, sqrt2: f32) -> (ValueId, ValueId) {
    let (c, half, one) = (scalar(g, sqrt2), scalar(g, 0.5), scalar(g, 1.0));
    let arg = bin(g, BinaryOp::Div, x, c);
    let erf = g.add_node(Op::Unary(UnaryOp::Erf), vec![arg], &[], "erf").unwrap()[0];
    let plus = bin(g, BinaryOp::Add, one, erf);
    let halved = bin(g, BinaryOp::Mul, half, x);
    (bin(g, BinaryOp::Mul, plus, halved), erf)
}

#[test]
fn exact_gelu_fuses_within_tolerance_only() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[2, 3]));
    // Within the 1e-5 relative tolerance of sqrt2, as an exporter rounding differently might write it.
    let (y, _) = exact_gelu(&mut g, x, std::f32::consts::SQRT_2 * 1.000_004);
    let (z, _) = exact_gelu(&mut g, y, 1.42);
    publish(&mut g, z);
    run(&fuse_gelu::FuseGelu, &mut g);
    let text = ops(&g);
    assert_eq!(text[0], "gelu mode=exact");
    assert_eq!(
        text.len(),
        6,
        "the second GELU's sqrt2 is off by 4e-3 and stays: {text:?}"
    );
    assert_eq!(g.rewrite_counts.get("gelu (exact) from primitives"), Some(&1));
}

#[test]
fn gelu_with_a_shared_intermediate_stays() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[4]));
    let (y, erf) = exact_gelu(&mut g, x, std::f32::consts::SQRT_2);
    publish(&mut g, y);
    publish(&mut g, erf);
    run(&fuse_gelu::FuseGelu, &mut g);
    assert!(ops(&g).iter().all(|o| !o.starts_with("gelu")), "{:?}", ops(&g));
}

#[test]
fn fast_gelu_follows_the_choice_and_precision() {
    let build = || {
        let mut g = Graph::new("t");
        let x = g.add_input("x", f32ty(&[4]));
        let y = g
            .add_node(Op::Unary(UnaryOp::Gelu { mode: GeluMode::Exact }), vec![x], &[], "g")
            .unwrap()[0];
        publish(&mut g, y);
        g
    };
    for (gelu, precision, expected) in [
        (GeluChoice::Auto, Precision::Fp16, "gelu mode=tanh"),
        (GeluChoice::Auto, Precision::Fp32, "gelu mode=exact"),
        (GeluChoice::Exact, Precision::Fp16, "gelu mode=exact"),
        (GeluChoice::Fast, Precision::Fp32, "gelu mode=tanh"),
    ] {
        let mut g = build();
        let options = PassOptions {
            gelu,
            precision,
            ..Default::default()
        };
        run_with(&fast_gelu::FastGelu, &mut g, &options);
        assert_eq!(ops(&g), [expected], "{gelu:?} {precision:?}");
    }
}

#[test]
fn clamp_chains_merge_and_disjoint_bounds_stay() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[4]));
    let (zero, six) = (scalar(&mut g, 0.0), scalar(&mut g, 6.0));
    let raised = bin(&mut g, BinaryOp::Maximum, x, zero);
    let relu6 = bin(&mut g, BinaryOp::Minimum, raised, six);
    let clip = g
        .add_node(
            Op::Clip {
                min: Some(1.0),
                max: Some(9.0),
            },
            vec![relu6],
            &[],
            "c",
        )
        .unwrap()[0];
    let disjoint = g
        .add_node(
            Op::Clip {
                min: Some(7.0),
                max: Some(8.0),
            },
            vec![clip],
            &[],
            "d",
        )
        .unwrap()[0];
    publish(&mut g, disjoint);
    run(&fuse_clip::FuseClip, &mut g);
    // max/min → relu6, relu6·clip[1,9] → clip[1,6]; clip[1,6]·clip[7,8] is constant 7: stays.
    assert_eq!(
        ops(&g),
        ["clip min=Some(1.0) max=Some(6.0)", "clip min=Some(7.0) max=Some(8.0)"]
    );
}

#[test]
fn identical_constants_are_stored_once_and_identical_ops_merge() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[2, 3]));
    let values: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let a = g.add_const("a", Tensor::from_f32(vec![2, 3], &values));
    let b = g.add_const("b", Tensor::from_f32(vec![2, 3], &values));
    let c = g.add_const("c", Tensor::from_f32(vec![3, 2], &values));
    let ya = bin(&mut g, BinaryOp::Add, x, a);
    let yb = bin(&mut g, BinaryOp::Add, x, b);
    let t = g
        .add_node(Op::Transpose { perm: vec![1, 0] }, vec![c], &[], "t")
        .unwrap()[0];
    let sum = bin(&mut g, BinaryOp::Mul, ya, yb);
    let z = bin(&mut g, BinaryOp::Sub, sum, t);
    publish(&mut g, z);
    run(&dedup_constants::DedupConstants, &mut g);
    let reads: Vec<ValueId> = g.order.iter().map(|&n| g.node(n).inputs[0]).collect();
    assert_eq!(
        g.node(g.order[1]).inputs[1],
        a,
        "b is a, c (another shape) is not: {reads:?}"
    );
    assert_eq!(g.node(g.order[2]).inputs[0], c);
    run(&eliminate_common_subexpressions::EliminateCommonSubexpressions, &mut g);
    let mul = g.node(g.order[2]);
    assert_eq!(mul.inputs[0], mul.inputs[1], "x + a computed once");
    assert_eq!(g.order.len(), 4);
}

#[test]
fn transposes_compose_and_cancelling_casts_go() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[2, 3, 4]));
    let t1 = g
        .add_node(Op::Transpose { perm: vec![1, 2, 0] }, vec![x], &[], "t1")
        .unwrap()[0];
    let t2 = g
        .add_node(Op::Transpose { perm: vec![2, 0, 1] }, vec![t1], &[], "t2")
        .unwrap()[0];
    let r = g
        .add_node(Op::Reshape { shape: vec![6, 4] }, vec![t2], &[], "r")
        .unwrap()[0];
    let r2 = g.add_node(Op::Reshape { shape: vec![24] }, vec![r], &[], "r2").unwrap()[0];
    let h = g.add_node(Op::Cast { to: DType::F16 }, vec![r2], &[], "h").unwrap()[0];
    let back = g.add_node(Op::Cast { to: DType::F32 }, vec![h], &[], "back").unwrap()[0];
    let again = g
        .add_node(Op::Cast { to: DType::F16 }, vec![back], &[], "again")
        .unwrap()[0];
    publish(&mut g, again);
    run(&fold_transpose_reshape::FoldTransposeReshape, &mut g);
    run(&cancel_casts::CancelCasts, &mut g);
    // The transposes are inverse; f16 → f32 → f16 is the identity; f32 → f16 rounds and stays.
    assert_eq!(ops(&g), ["reshape shape=[24]", "cast to=f16"]);
    assert_eq!(g.node(g.order[0]).inputs[0], x);
}

#[test]
fn cancelling_transposes_before_an_output_hand_it_their_source() {
    let build = |source_is_input: bool| {
        let mut g = Graph::new("t");
        let x = g.add_input("x", f32ty(&[2, 3]));
        let source = if source_is_input {
            x
        } else {
            g.add_node(Op::Relu, vec![x], &["relu".to_string()], "relu").unwrap()[0]
        };
        let t1 = g
            .add_node(Op::Transpose { perm: vec![1, 0] }, vec![source], &[], "t1")
            .unwrap()[0];
        let t2 = g
            .add_node(Op::Transpose { perm: vec![1, 0] }, vec![t1], &["y".to_string()], "t2")
            .unwrap()[0];
        g.outputs.push(GraphOutput {
            name: "y".into(),
            value: t2,
        });
        run(&fold_transpose_reshape::FoldTransposeReshape, &mut g);
        g
    };
    // A computed source is published under the output's name; no transpose is left.
    let g = build(false);
    assert_eq!(ops(&g), ["relu"]);
    assert_eq!(g.value(g.outputs[0].value).name, "y");
    // A graph input cannot take the name: the pair stays.
    let g = build(true);
    assert_eq!(ops(&g), ["transpose perm=[1, 0]", "transpose perm=[1, 0]"]);
}

#[test]
fn attention_fuses_on_request_and_folds_the_scale_into_q() {
    let build = |scale: f32, publish_probabilities: bool| {
        let mut g = Graph::new("t");
        let q = g.add_input("q", f32ty(&[1, 2, 3, 4]));
        let k = g.add_input("k", f32ty(&[1, 2, 3, 4]));
        let v = g.add_input("v", f32ty(&[1, 2, 3, 5]));
        let mask = g.add_input("mask", f32ty(&[1, 1, 1, 3]));
        let kt = g
            .add_node(Op::Transpose { perm: vec![0, 1, 3, 2] }, vec![k], &[], "kt")
            .unwrap()[0];
        let plain = Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        };
        let scores = g.add_node(plain.clone(), vec![q, kt], &[], "qk").unwrap()[0];
        let c = scalar(&mut g, scale);
        let scaled = bin(&mut g, BinaryOp::Mul, scores, c);
        let masked = bin(&mut g, BinaryOp::Add, mask, scaled);
        let p = g.add_node(Op::Softmax { axis: 3 }, vec![masked], &[], "p").unwrap()[0];
        let out = g.add_node(plain, vec![p, v], &[], "pv").unwrap()[0];
        publish(&mut g, out);
        if publish_probabilities {
            publish(&mut g, p);
        }
        g
    };
    let on = PassOptions {
        fused_attention: true,
        ..Default::default()
    };
    let mut g = build(0.5, false);
    run_with(&fuse_attention::FuseAttention, &mut g, &on);
    // 1/sqrt(4) is the op's own scale: k is used as it was, nothing else is added.
    assert_eq!(ops(&g), ["scaled_dot_product_attention"]);
    assert_eq!(
        g.node(g.order[0]).inputs,
        [g.inputs[0], g.inputs[1], g.inputs[2], g.inputs[3]]
    );

    let mut g = build(0.25, false);
    run_with(&fuse_attention::FuseAttention, &mut g, &on);
    assert_eq!(ops(&g), ["mul", "scaled_dot_product_attention"]);
    let ratio = g.node(g.order[0]).inputs[1];
    assert_eq!(g.constant(ratio).unwrap().to_f32_vec(), [0.5]);

    let mut g = build(0.5, false);
    run_with(&fuse_attention::FuseAttention, &mut g, &PassOptions::default());
    assert_eq!(
        ops(&g).len(),
        6,
        "older targets keep transpose, matmul, mul, add, softmax, matmul"
    );

    let mut g = build(0.5, true);
    run_with(&fuse_attention::FuseAttention, &mut g, &on);
    assert_eq!(
        ops(&g).len(),
        6,
        "published attention probabilities keep the primitives"
    );
}

/// `d / sqrt(mean(d²) + eps)` with `d = x - mean(x)` over the last axis of `x`.
fn written_out_layer_norm(g: &mut Graph, x: ValueId, eps: f32) -> (ValueId, ValueId) {
    let mean_op = Op::Reduce {
        kind: edgec_passes::op::ReduceKind::Mean,
        axes: vec![1],
        keep_dims: true,
    };
    let mean = g.add_node(mean_op.clone(), vec![x], &[], "mean").unwrap()[0];
    let d = bin(g, BinaryOp::Sub, x, mean);
    let two = scalar(g, 2.0);
    let sq = bin(g, BinaryOp::Pow, d, two);
    let var = g.add_node(mean_op, vec![sq], &[], "var").unwrap()[0];
    let e = scalar(g, eps);
    let var_eps = bin(g, BinaryOp::Add, var, e);
    let std = g.add_node(Op::Unary(UnaryOp::Sqrt), vec![var_eps], &[], "std").unwrap()[0];
    (bin(g, BinaryOp::Div, d, std), d)
}

#[test]
fn layer_norm_fuses_absorbs_its_affine_and_a_shared_intermediate_stays() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[2, 4]));
    let (n, _) = written_out_layer_norm(&mut g, x, 1e-5);
    let gamma = g.add_const("gamma", Tensor::from_f32(vec![4], &[1.0, 2.0, 3.0, 4.0]));
    let beta = g.add_const("beta", Tensor::from_f32(vec![1, 4], &[0.5; 4]));
    let scaled = bin(&mut g, BinaryOp::Mul, gamma, n);
    let y = bin(&mut g, BinaryOp::Add, scaled, beta);
    let (shared, d) = written_out_layer_norm(&mut g, y, 1e-5);
    publish(&mut g, shared);
    publish(&mut g, d);
    run(&edgec_passes::passes::fuse_layer_norm::FuseLayerNorm, &mut g);
    let text = ops(&g);
    assert_eq!(text[0], "layer_norm axes=[1] epsilon=1e-5", "{text:?}");
    let ln = g.node(g.order[0]);
    assert_eq!(g.constant(ln.inputs[1]).unwrap().to_f32_vec(), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(g.constant(ln.inputs[2]).unwrap().to_f32_vec(), [0.5; 4]);
    // The second normalisation's centred value is also an output: its primitives stay.
    assert_eq!(text.len(), 1 + 7, "{text:?}");
}

#[test]
fn silu_needs_the_same_operand_and_a_private_sigmoid() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[4]));
    let y = g.add_input("y", f32ty(&[4]));
    let gate = g.add_node(Op::Sigmoid, vec![x], &[], "s").unwrap()[0];
    let silu = bin(&mut g, BinaryOp::Mul, gate, x);
    let other = g.add_node(Op::Sigmoid, vec![y], &[], "s2").unwrap()[0];
    let not_silu = bin(&mut g, BinaryOp::Mul, silu, other);
    let shared_gate = g.add_node(Op::Sigmoid, vec![not_silu], &[], "s3").unwrap()[0];
    let kept = bin(&mut g, BinaryOp::Mul, not_silu, shared_gate);
    publish(&mut g, kept);
    publish(&mut g, shared_gate);
    run(&edgec_passes::passes::fuse_silu::FuseSilu, &mut g);
    assert_eq!(ops(&g), ["silu", "sigmoid", "mul", "sigmoid", "mul"]);
}

#[test]
fn hard_swish_needs_its_own_constants() {
    let build = |divisor: f32| {
        let mut g = Graph::new("t");
        let x = g.add_input("x", f32ty(&[4]));
        let three = scalar(&mut g, 3.0);
        let shifted = bin(&mut g, BinaryOp::Add, x, three);
        let r = g.add_node(Op::Relu6, vec![shifted], &[], "r").unwrap()[0];
        let prod = bin(&mut g, BinaryOp::Mul, x, r);
        let d = scalar(&mut g, divisor);
        let y = bin(&mut g, BinaryOp::Div, prod, d);
        publish(&mut g, y);
        g
    };
    let mut g = build(6.0);
    run(&edgec_passes::passes::fuse_hard_swish::FuseHardSwish, &mut g);
    assert_eq!(ops(&g), ["hard_sigmoid alpha=0.16666667 beta=0.5", "mul"]);
    let mut g = build(5.0);
    run(&edgec_passes::passes::fuse_hard_swish::FuseHardSwish, &mut g);
    assert_eq!(ops(&g).len(), 4);
}
