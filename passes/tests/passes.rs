//! Unit tests of the verifier and of individual passes on hand-built graphs.

use edgec_passes::ir::{DType, FusedNode, Graph, GraphOutput, Tensor, TensorType, ValueDef};
use edgec_passes::op::{BinaryOp, ConvAttrs, Op};
use edgec_passes::pass::{Pass, PassOptions, Precision};
use edgec_passes::passes::{
    cast_to_fp16, dead_code, fold_constants, fuse_conv_batchnorm, fuse_conv_bias, fuse_linear, guard_fp16_range,
    legalize, narrow_int64,
};
use edgec_passes::verify::{verify, Stage};

fn f32ty(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.order.iter().map(|&n| g.node(n).op.name()).collect()
}

fn run(pass: &dyn Pass, g: &mut Graph) {
    pass.run(g, &PassOptions::default()).unwrap();
    verify(g, Stage::Imported).unwrap_or_else(|e| panic!("after {}: {e}", pass.name()));
}

#[test]
fn verifier_rejects_wrong_types_and_bad_order() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[2, 3]));
    let y = g.add_node(Op::Relu, vec![x], &["y".into()], "relu_node").unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    verify(&g, Stage::Legal).unwrap();

    let mut wrong_type = g.clone();
    wrong_type.value_mut(y).ty = f32ty(&[3, 2]);
    let err = verify(&wrong_type, Stage::Legal).unwrap_err();
    assert_eq!(err.origin, "relu_node");
    assert!(err.message.contains("inference gives"), "{err}");

    let mut reordered = g.clone();
    let z = reordered.add_node(Op::Sigmoid, vec![y], &["z".into()], "sig").unwrap()[0];
    reordered.order.reverse();
    reordered.outputs[0].value = z;
    assert!(verify(&reordered, Stage::Legal)
        .unwrap_err()
        .message
        .contains("before it is defined"));
}

#[test]
fn verifier_enforces_the_back_end_contract() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[2, 3]));
    let y = g.add_node(Op::HardSwish, vec![x], &["y".into()], "hs").unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    verify(&g, Stage::Imported).unwrap();
    assert!(verify(&g, Stage::Legal)
        .unwrap_err()
        .message
        .contains("composite op hard_swish"));
    run(&legalize::Legalize, &mut g);
    verify(&g, Stage::Legal).unwrap();
    assert_eq!(ops(&g), ["hard_sigmoid", "mul"]);
}

#[test]
fn int64_is_legal_until_narrowed_but_not_final() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[4, 3]));
    let idx = g.add_const("idx", Tensor::from_i64(vec![2], &[3, 0]));
    let y = g
        .add_node(Op::Gather { axis: 0 }, vec![x, idx], &["y".into()], "gather")
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    verify(&g, Stage::Legal).unwrap();
    assert!(verify(&g, Stage::Final).unwrap_err().message.contains("64-bit integer"));
    run(&narrow_int64::NarrowInt64, &mut g);
    verify(&g, Stage::Final).unwrap();
    assert_eq!(g.ty(idx).dtype, DType::I32);
}

#[test]
fn clip_becomes_the_cheapest_equivalent_op() {
    let cases: [(Option<f32>, Option<f32>, &[&str]); 5] = [
        (Some(0.0), Some(6.0), &["relu6"]),
        (Some(0.0), None, &["relu"]),
        (Some(-1.0), None, &["maximum"]),
        (None, Some(2.0), &["minimum"]),
        (Some(-1.0), Some(1.0), &["clip"]),
    ];
    for (min, max, expected) in cases {
        let mut g = Graph::new("t");
        let x = g.add_input("x", f32ty(&[4]));
        let y = g
            .add_node(Op::Clip { min, max }, vec![x], &["y".into()], "clip")
            .unwrap()[0];
        g.outputs.push(GraphOutput {
            name: "y".into(),
            value: y,
        });
        run(&legalize::Legalize, &mut g);
        run(&dead_code::DeadCode, &mut g);
        assert_eq!(ops(&g), expected, "clip {min:?} {max:?}");
        assert_eq!(g.value(g.outputs[0].value).name, "y", "the output keeps its name");
    }
}

#[test]
fn batchnorm_folds_into_conv_weights_and_bias() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[1, 2, 4, 4]));
    let w = g.add_const("w", Tensor::from_f32([2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]));
    let b = g.add_const("b", Tensor::from_f32([2], &[0.5, -0.5]));
    let attrs = ConvAttrs {
        strides: vec![1, 1],
        dilations: vec![1, 1],
        pads: vec![[0, 0]; 2],
        groups: 1,
    };
    let c = g
        .add_node(Op::Conv(attrs), vec![x, w, b], &["c".into()], "conv")
        .unwrap()[0];
    let mean = g.add_const("mean", Tensor::from_f32([2], &[1.0, 2.0]));
    let var = g.add_const("var", Tensor::from_f32([2], &[4.0, 0.25]));
    let gamma = g.add_const("gamma", Tensor::from_f32([2], &[2.0, 1.0]));
    let beta = g.add_const("beta", Tensor::from_f32([2], &[0.0, 1.0]));
    let y = g
        .add_node(
            Op::BatchNorm { epsilon: 0.0 },
            vec![c, mean, var, gamma, beta],
            &["y".into()],
            "bn",
        )
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    run(&fuse_conv_batchnorm::FuseConvBatchNorm, &mut g);
    assert_eq!(ops(&g), ["conv"]);
    let conv = g.node(g.order[0]);
    // scale = gamma / sqrt(var) = [1, 2]; weight rows scale per output channel.
    assert_eq!(g.constant(conv.inputs[1]).unwrap().to_f32_vec(), [1.0, 2.0, 6.0, 8.0]);
    // bias = (b - mean) * scale + beta = [(0.5-1)*1+0, (-0.5-2)*2+1].
    assert_eq!(g.constant(conv.inputs[2]).unwrap().to_f32_vec(), [-0.5, -4.0]);
    assert_eq!(g.value(g.outputs[0].value).name, "y");
    // The plan prints the BatchNorm as fused into the conv.
    let fused = FusedNode {
        origin: "bn".into(),
        op: "batch_norm".into(),
    };
    assert_eq!(g.fusions.get(&g.order[0]), Some(&vec![fused]));
}

#[test]
fn fusion_groups_record_their_onnx_nodes() {
    // conv ← BatchNorm ← bias add, then matmul ← add as linear.
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[1, 2, 4, 4]));
    let w = g.add_const("w", Tensor::from_f32([2, 2, 1, 1], &[1.0, 2.0, 3.0, 4.0]));
    let attrs = ConvAttrs {
        strides: vec![1, 1],
        dilations: vec![1, 1],
        pads: vec![[0, 0]; 2],
        groups: 1,
    };
    let c = g
        .add_node(Op::Conv(attrs), vec![x, w], &["c".into()], "Conv_0")
        .unwrap()[0];
    let p = |g: &mut Graph, n: &str| g.add_const(n, Tensor::from_f32([2], &[1.0, 2.0]));
    let bn_inputs = vec![c, p(&mut g, "m"), p(&mut g, "v"), p(&mut g, "g"), p(&mut g, "b")];
    let y = g
        .add_node(Op::BatchNorm { epsilon: 0.0 }, bn_inputs, &["y".into()], "BN_1")
        .unwrap()[0];
    let shift = g.add_const("shift", Tensor::from_f32([1, 2, 1, 1], &[0.5, 0.5]));
    let z = g
        .add_node(Op::Binary(BinaryOp::Add), vec![y, shift], &["z".into()], "Add_2")
        .unwrap()[0];
    let flat = g
        .add_node(
            Op::Reshape { shape: vec![1, 32] },
            vec![z],
            &["flat".into()],
            "Flatten_3",
        )
        .unwrap()[0];
    let m = g.add_const("m2", Tensor::from_f32([32, 1], &[1.0; 32]));
    let mm = g
        .add_node(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            },
            vec![flat, m],
            &["mm".into()],
            "MatMul_4",
        )
        .unwrap()[0];
    let bias = g.add_const("bias", Tensor::from_f32([1], &[3.0]));
    let out = g
        .add_node(Op::Binary(BinaryOp::Add), vec![mm, bias], &["out".into()], "Add_5")
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "out".into(),
        value: out,
    });
    for pass in [
        &fuse_conv_batchnorm::FuseConvBatchNorm as &dyn Pass,
        &fuse_conv_bias::FuseConvBias,
        &fuse_linear::FuseLinear,
        &dead_code::DeadCode,
    ] {
        run(pass, &mut g);
    }
    assert_eq!(ops(&g), ["conv", "reshape", "linear"]);
    let origins = |node| -> Vec<String> { g.fusions[&node].iter().map(|f| f.origin.clone()).collect() };
    assert_eq!(origins(g.order[0]), ["BN_1", "Add_2"]);
    assert_eq!(origins(g.order[2]), ["Add_5"]);
    assert!(!g.fusions.contains_key(&g.order[1]));
}

#[test]
fn gemm_becomes_linear_with_folded_alpha_and_bias() {
    let mut g = Graph::new("t");
    let a = g.add_input("a", f32ty(&[1, 2]));
    let b = g.add_const("b", Tensor::from_f32([2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let c = g.add_const("c", Tensor::from_f32([3], &[1.0, 1.0, 1.0]));
    let op = Op::Gemm {
        alpha: 2.0,
        beta: 0.5,
        trans_a: false,
        trans_b: false,
    };
    let y = g.add_node(op, vec![a, b, c], &["y".into()], "gemm").unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    for pass in [
        &legalize::Legalize as &dyn Pass,
        &fold_constants::FoldConstants,
        &fuse_linear::FuseLinear,
        &dead_code::DeadCode,
    ] {
        run(pass, &mut g);
    }
    assert_eq!(ops(&g), ["linear"]);
    let lin = g.node(g.order[0]);
    // weight = alpha * B^T, bias = beta * C.
    assert_eq!(
        g.constant(lin.inputs[1]).unwrap().to_f32_vec(),
        [2.0, 8.0, 4.0, 10.0, 6.0, 12.0]
    );
    assert_eq!(g.constant(lin.inputs[2]).unwrap().to_f32_vec(), [0.5, 0.5, 0.5]);
}

#[test]
fn fp16_keeps_an_fp32_interface() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[1, 4]));
    let k = g.add_const("k", Tensor::from_f32([4], &[1.0, 2.0, 3.0, 65504.0]));
    let y = g
        .add_node(Op::Binary(BinaryOp::Mul), vec![x, k], &["y".into()], "mul")
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    let options = PassOptions {
        precision: Precision::Fp16,
        fp16_io: true,
        ..Default::default()
    };
    cast_to_fp16::CastToFp16.run(&mut g, &options).unwrap();
    verify(&g, Stage::Legal).unwrap();
    assert_eq!(ops(&g), ["cast", "mul", "cast"]);
    assert_eq!(g.ty(g.inputs[0]).dtype, DType::F32);
    let out = g.outputs[0].value;
    assert_eq!(g.ty(out).dtype, DType::F32);
    assert_eq!(g.value(out).name, "y");
    let mul = g.node(g.order[1]);
    assert!(matches!(g.value(mul.inputs[1]).def, ValueDef::Const(ref t) if t.ty.dtype == DType::F16));
    assert_eq!(
        g.constant(mul.inputs[1]).unwrap().to_f32_vec(),
        [1.0, 2.0, 3.0, 65504.0]
    );
}

#[test]
fn an_op_whose_constant_overflows_fp16_stays_fp32_between_casts() {
    // x -> mul(x, [1e6, ...]) -> relu -> add -> y.
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[1, 4]));
    let big = g.add_const("big", Tensor::from_f32([4], &[1e6, 2.0, 3.0, 4.0]));
    let m = g
        .add_node(Op::Binary(BinaryOp::Mul), vec![x, big], &["m".into()], "mul")
        .unwrap()[0];
    let r = g.add_node(Op::Relu, vec![m], &["r".into()], "relu").unwrap()[0];
    let small = g.add_const("small", Tensor::from_f32([4], &[0.5; 4]));
    let y = g
        .add_node(Op::Binary(BinaryOp::Add), vec![r, small], &["y".into()], "add")
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    let options = PassOptions {
        precision: Precision::Fp16,
        fp16_io: true,
        ..Default::default()
    };
    guard_fp16_range::GuardFp16Range.run(&mut g, &options).unwrap();
    cast_to_fp16::CastToFp16.run(&mut g, &options).unwrap();
    verify(&g, Stage::Final).unwrap();
    // The mul reads the fp32 input and constant directly; relu gets a cast to fp16.
    assert_eq!(ops(&g), ["mul", "cast", "relu", "add", "cast"]);
    let mul = g.node(g.order[0]);
    assert!(mul.keep_fp32.is_some());
    assert_eq!(mul.inputs[0], x);
    assert_eq!(g.constant(mul.inputs[1]).unwrap().ty.dtype, DType::F32);
    assert_eq!(g.ty(mul.outputs[0]).dtype, DType::F32);
    assert_eq!(g.ty(g.node(g.order[2]).outputs[0]).dtype, DType::F16);
    assert_eq!(g.precision_log.len(), 1);
    // A pin that lets an fp16 value through is caught by the verifier.
    g.node_mut(g.order[2]).keep_fp32 = mul.keep_fp32.clone();
    assert!(verify(&g, Stage::Final).is_err());
}

#[test]
fn a_batchnorm_fp16_cannot_hold_is_folded_and_restored_if_kept_in_fp32() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[1, 2, 3]));
    let mean = g.add_const("mean", Tensor::from_f32([2], &[1500.0, 0.0]));
    let var = g.add_const("var", Tensor::from_f32([2], &[497_160.0, 1.0]));
    let gamma = g.add_const("gamma", Tensor::from_f32([2], &[1.0, 2.0]));
    let beta = g.add_const("beta", Tensor::from_f32([2], &[0.5, 0.0]));
    let y = g
        .add_node(
            Op::BatchNorm { epsilon: 1e-5 },
            vec![x, mean, var, gamma, beta],
            &["y".into()],
            "bn",
        )
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    let options = PassOptions {
        precision: Precision::Fp16,
        fp16_io: true,
        ..Default::default()
    };
    guard_fp16_range::GuardFp16Range.run(&mut g, &options).unwrap();
    let bn = g.order[0];
    assert_eq!(g.node(bn).op, Op::BatchNorm { epsilon: 0.0 });
    let scale = g.constant(g.node(bn).inputs[3]).unwrap().to_f32_vec();
    let expected = 1.0 / (497_160.0f32 + 1e-5).sqrt();
    assert!((scale[0] - expected).abs() < 1e-9, "{scale:?}");
    let shift = g.constant(g.node(bn).inputs[4]).unwrap().to_f32_vec();
    assert!((shift[0] - (0.5 - 1500.0 * expected)).abs() < 1e-5, "{shift:?}");
    assert!(g.node(bn).keep_fp32.is_none());
    // Calibration pinning it restores the model's own BatchNorm.
    let reason = edgec_passes::precision::Fp32Reason::ConstantOverflow { max_abs: 1.0 };
    g.keep_in_fp32(bn, reason);
    assert_eq!(g.node(bn).op, Op::BatchNorm { epsilon: 1e-5 });
    assert_eq!(g.node(bn).inputs, [x, mean, var, gamma, beta]);
}

#[test]
fn constant_subgraphs_fold_away() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", f32ty(&[3, 2]));
    let k = g.add_const("k", Tensor::from_f32([2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let kt = g
        .add_node(Op::Transpose { perm: vec![1, 0] }, vec![k], &["kt".into()], "t")
        .unwrap()[0];
    let y = g
        .add_node(Op::Binary(BinaryOp::Add), vec![x, kt], &["y".into()], "add")
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    run(&fold_constants::FoldConstants, &mut g);
    assert_eq!(ops(&g), ["add"]);
    assert_eq!(g.constant(kt).unwrap().to_f32_vec(), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
}

#[test]
fn transposes_match_a_naive_reference() {
    // Sizes that are not multiples of the tile, a 3-D permutation, and f16 elements.
    for (shape, perm) in [
        (vec![37usize, 70], vec![1usize, 0]),
        (vec![1, 5], vec![1, 0]),
        (vec![3, 4, 5], vec![2, 0, 1]),
        (vec![2, 3, 4, 5], vec![0, 2, 1, 3]),
    ] {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
        for dtype in [DType::F32, DType::F16] {
            let t = Tensor::from_f32(shape.clone(), &values).cast(dtype);
            let got = t.transposed(&perm).to_f32_vec();
            let source = t.to_f32_vec();
            let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let mut expected = Vec::with_capacity(n);
            for flat in 0..n {
                let mut rest = flat;
                let mut coords = vec![0; out_shape.len()];
                for axis in (0..out_shape.len()).rev() {
                    coords[axis] = rest % out_shape[axis];
                    rest /= out_shape[axis];
                }
                let mut src = 0;
                for (axis, &p) in perm.iter().enumerate() {
                    let stride: usize = shape[p + 1..].iter().product();
                    src += coords[axis] * stride;
                }
                expected.push(source[src]);
            }
            assert_eq!(got, expected, "{shape:?} {perm:?} {dtype}");
        }
    }
}

#[test]
fn recurrent_ops_stay_fp32_where_the_target_has_no_fp16_form() {
    use edgec_passes::op::recurrent::{Activation, Direction, RnnAttrs};
    let build = || {
        let mut g = Graph::new("t");
        let x = g.add_input("x", f32ty(&[3, 1, 2]));
        let h0 = g.add_const("h0", Tensor::from_f32([1, 4], &[0.0; 4]));
        let w = g.add_const("w", Tensor::from_f32([4, 2], &[0.5; 8]));
        let r = g.add_const("r", Tensor::from_f32([4, 4], &[0.25; 16]));
        let b = g.add_const("b", Tensor::from_f32([4], &[0.1; 4]));
        let rnn = Op::Rnn(RnnAttrs {
            hidden: 4,
            direction: Direction::Forward,
            output_sequence: true,
            activation: Activation::Tanh,
        });
        let outs = g
            .add_node(rnn, vec![x, h0, w, r, b], &["y".into(), "h".into()], "rnn")
            .unwrap();
        g.outputs.push(GraphOutput {
            name: "y".into(),
            value: outs[0],
        });
        g
    };
    for fp16_recurrent in [false, true] {
        let mut g = build();
        let options = PassOptions {
            precision: Precision::Fp16,
            fp16_recurrent,
            ..Default::default()
        };
        guard_fp16_range::GuardFp16Range.run(&mut g, &options).unwrap();
        cast_to_fp16::CastToFp16.run(&mut g, &options).unwrap();
        verify(&g, Stage::Final).unwrap();
        let rnn = g
            .order
            .iter()
            .map(|&n| g.node(n))
            .find(|n| n.op.name() == "rnn")
            .unwrap();
        let computes_in = g.ty(rnn.outputs[0]).dtype;
        if fp16_recurrent {
            assert!(rnn.keep_fp32.is_none());
            assert_eq!(computes_in, DType::F16);
        } else {
            assert!(rnn.keep_fp32.is_some());
            assert_eq!(computes_in, DType::F32);
            assert_eq!(g.constant(rnn.inputs[2]).unwrap().ty.dtype, DType::F32);
            assert_eq!(g.precision_log.len(), 1);
        }
    }
}
