//! Control-flow ops and their regions: the verifier checks a body against its op, the text dump
//! nests bodies under their op, and passes run on bodies through `pass::apply` (fp16 bodies
//! exchange fp16, the bodies of an op pinned to fp32 stay fp32; int64 is narrowed on both sides).

use edgec_passes::ir::{DType, Graph, GraphOutput, Tensor, TensorType};
use edgec_passes::op::{BinaryOp, CompareOp, IfAttrs, Op, Region, WhileAttrs};
use edgec_passes::pass::{self, PassOptions, Precision, PIPELINE};
use edgec_passes::precision::Fp32Reason;
use edgec_passes::print::print_graph;
use edgec_passes::verify::{verify, Stage};

fn ty(dtype: DType, shape: &[usize]) -> TensorType {
    TensorType::new(dtype, shape.to_vec())
}

/// A body taking `x` (f32[2]) and giving `op(x, 2)`.
fn branch(op: BinaryOp) -> Region {
    let mut g = Graph::new("branch");
    let x = g.add_input("x", ty(DType::F32, &[2]));
    let two = g.add_const("two", Tensor::scalar_f32(2.0));
    let y = g
        .add_node(Op::Binary(op), vec![x, two], &["y".into()], "branch_op")
        .unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    Region::new(g)
}

/// `if sum(x) > 0 { x * 2 } else { x - 2 }` on f32[2].
fn if_graph() -> Graph {
    let mut g = Graph::new("if");
    let x = g.add_input("x", ty(DType::F32, &[2]));
    let s = g
        .add_node(
            Op::Reduce {
                kind: edgec_passes::op::ReduceKind::Sum,
                axes: vec![0],
                keep_dims: false,
            },
            vec![x],
            &["s".into()],
            "sum",
        )
        .unwrap()[0];
    let zero = g.add_const("zero", Tensor::scalar_f32(0.0));
    let c = g
        .add_node(Op::Compare(CompareOp::Greater), vec![s, zero], &["c".into()], "cmp")
        .unwrap()[0];
    let op = Op::If(IfAttrs {
        then_branch: branch(BinaryOp::Mul),
        else_branch: branch(BinaryOp::Sub),
    });
    let y = g.add_node(op, vec![c, x], &["y".into()], "choose").unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "y".into(),
        value: y,
    });
    g
}

fn run_pipeline(g: &mut Graph, precision: Precision) {
    let options = PassOptions {
        precision,
        ..Default::default()
    };
    let mut legal = false;
    for p in PIPELINE.iter().filter(|p| p.enabled(&options)) {
        pass::apply(*p, g, &options).unwrap_or_else(|e| panic!("{}: {e}", p.name()));
        legal |= p.name() == "legalize";
        let stage = if legal { Stage::Legal } else { Stage::Imported };
        verify(g, stage).unwrap_or_else(|e| panic!("after {}: {e}\n{}", p.name(), print_graph(g)));
    }
    verify(g, Stage::Final).unwrap_or_else(|e| panic!("final: {e}\n{}", print_graph(g)));
}

fn region_input_types(g: &Graph) -> Vec<DType> {
    let node = g
        .order
        .iter()
        .map(|&n| g.node(n))
        .find(|n| !n.op.regions().is_empty())
        .unwrap();
    node.op
        .regions()
        .iter()
        .flat_map(|r| r.inputs.iter().map(|&v| r.ty(v).dtype))
        .collect()
}

#[test]
fn the_verifier_checks_each_body_against_its_op() {
    let g = if_graph();
    verify(&g, Stage::Imported).unwrap();
    let text = print_graph(&g);
    assert!(text.contains("  then {\n") && text.contains("  else {\n"), "{text}");
    assert!(text.contains("mul(%0, %1)") && text.contains("sub(%0, %1)"), "{text}");

    // A branch that takes f16 while the op passes f32.
    let mut wrong = if_graph();
    let id = wrong.order[2];
    if let Op::If(a) = &mut wrong.node_mut(id).op {
        let input = a.else_branch.0.inputs[0];
        a.else_branch.0.value_mut(input).ty.dtype = DType::F16;
    }
    let err = verify(&wrong, Stage::Imported).unwrap_err().to_string();
    assert!(
        err.contains("else branch input 0 is typed f16[2], the op passes f32[2]"),
        "{err}"
    );

    // A body that is itself ill-formed: its node's output type is wrong.
    let mut broken = if_graph();
    if let Op::If(a) = &mut broken.node_mut(id).op {
        let out = a.then_branch.0.outputs[0].value;
        a.then_branch.0.value_mut(out).ty = ty(DType::F32, &[3]);
    }
    let err = verify(&broken, Stage::Imported).unwrap_err().to_string();
    assert!(err.contains("then branch") || err.contains("region 0"), "{err}");
}

#[test]
fn fp16_bodies_exchange_fp16_and_pinned_ones_stay_fp32() {
    let mut g = if_graph();
    run_pipeline(&mut g, Precision::Fp16);
    assert_eq!(region_input_types(&g), [DType::F16, DType::F16]);
    let text = print_graph(&g);
    // The model's interface is fp32 still; inside, the op reads the fp16 copy of x.
    assert!(text.contains("input %0 \"x\": f32[2]"), "{text}");
    assert!(text.contains("f16[2] = if("), "{text}");

    let mut pinned = if_graph();
    let id = pinned.order[2];
    pinned.node_mut(id).keep_fp32 = Some(Fp32Reason::Fp32OnlyOp);
    run_pipeline(&mut pinned, Precision::Fp16);
    assert_eq!(region_input_types(&pinned), [DType::F32, DType::F32]);
    assert!(
        print_graph(&pinned).contains("f32[2] = if("),
        "{}",
        print_graph(&pinned)
    );
}

#[test]
fn int64_loop_variables_are_narrowed_in_the_op_and_its_bodies() {
    // while i < 5 { i = i + 1 }, i int64.
    let body = |with_cond: bool| {
        let mut g = Graph::new(if with_cond { "cond" } else { "body" });
        let i = g.add_input("i", ty(DType::I64, &[]));
        let five = g.add_const("five", Tensor::from_i64(Vec::<usize>::new(), &[5]));
        let one = g.add_const("one", Tensor::from_i64(Vec::<usize>::new(), &[1]));
        let out = if with_cond {
            g.add_node(Op::Compare(CompareOp::Less), vec![i, five], &["go".into()], "")
                .unwrap()[0]
        } else {
            g.add_node(Op::Binary(BinaryOp::Add), vec![i, one], &["next".into()], "")
                .unwrap()[0]
        };
        g.outputs.push(GraphOutput {
            name: "out".into(),
            value: out,
        });
        Region::new(g)
    };
    let mut g = Graph::new("count");
    let start = g.add_input("start", ty(DType::I64, &[]));
    let op = Op::While(WhileAttrs {
        cond: body(true),
        body: body(false),
        carried: 1,
    });
    let end = g.add_node(op, vec![start], &["end".into()], "loop").unwrap()[0];
    g.outputs.push(GraphOutput {
        name: "end".into(),
        value: end,
    });
    verify(&g, Stage::Imported).unwrap();
    assert!(verify(&g, Stage::Final).unwrap_err().to_string().contains("64-bit"));
    run_pipeline(&mut g, Precision::Fp32);
    assert_eq!(region_input_types(&g), [DType::I32, DType::I32]);
    assert_eq!(g.ty(end).dtype, DType::I32);

    // A body that changes its loop variable's type is refused by inference.
    let mut bad = body(false);
    let out = bad.0.outputs[0].value;
    bad.0.value_mut(out).ty = ty(DType::I64, &[1]);
    let wrong = WhileAttrs {
        cond: body(true),
        body: bad,
        carried: 1,
    };
    let err = wrong.infer(&[&ty(DType::I64, &[])]).unwrap_err().0;
    assert!(
        err.contains("loop variable 0 is i64[] on entry but the body gives i64[1]"),
        "{err}"
    );
}

#[test]
fn an_if_whose_condition_folds_is_replaced_by_its_taken_branch() {
    for (flag, op) in [(true, "mul"), (false, "sub")] {
        let mut g = Graph::new("known");
        let x = g.add_input("x", ty(DType::F32, &[2]));
        let c = g.add_const(
            "c",
            Tensor::from_i64(Vec::<usize>::new(), &[flag as i64]).cast(DType::Bool),
        );
        let branches = Op::If(IfAttrs {
            then_branch: branch(BinaryOp::Mul),
            else_branch: branch(BinaryOp::Sub),
        });
        let y = g.add_node(branches, vec![c, x], &["y".into()], "choose").unwrap()[0];
        let z = g.add_node(Op::Relu, vec![y], &["z".into()], "after").unwrap()[0];
        g.outputs.push(GraphOutput {
            name: "z".into(),
            value: z,
        });
        run_pipeline(&mut g, Precision::Fp32);
        let ops: Vec<&str> = g.order.iter().map(|&n| g.node(n).op.name()).collect();
        assert_eq!(ops, [op, "relu"], "{}", print_graph(&g));
        assert_eq!(g.rewrite_counts.get("if with a constant condition inlined"), Some(&1));
    }
}
