//! Every rule, both sides, on small hand-built MIL programs (the planner reads only types and
//! constant parameters, so weights are blob references without data).

use super::rules::{self, Check, Effect, RULES};
use super::*;
use crate::coreml::mil::{self, Immediate};
use crate::proto::coreml::mil_spec::{Block, DataType, Function, NamedValueType, Operation, Program};
use std::collections::BTreeMap;

const F16: DataType = DataType::Float16;
const F32: DataType = DataType::Float32;
const I32: DataType = DataType::Int32;

#[derive(Default)]
struct Mil {
    inputs: Vec<NamedValueType>,
    ops: Vec<Operation>,
    outputs: Vec<String>,
    count: usize,
}

impl Mil {
    fn fresh(&mut self, prefix: &str) -> String {
        self.count += 1;
        format!("{prefix}_{}", self.count)
    }

    fn input(&mut self, name: &str, dt: DataType, shape: &[usize]) -> String {
        self.inputs.push(mil::named(name, mil::tensor_type(dt, shape)));
        name.to_string()
    }

    fn constant(&mut self, val: crate::proto::coreml::mil_spec::Value) -> String {
        let name = self.fresh("c");
        let ty = val.r#type.clone().unwrap_or_default();
        self.ops.push(Operation {
            r#type: "const".into(),
            inputs: BTreeMap::new(),
            outputs: vec![NamedValueType {
                name: name.clone(),
                r#type: Some(ty),
            }],
            blocks: Vec::new(),
            attributes: BTreeMap::from([("name".to_string(), mil::string_value(&name)), ("val".to_string(), val)]),
        });
        name
    }

    fn weight(&mut self, dt: DataType, shape: &[usize]) -> String {
        self.constant(mil::blob_value(dt, shape, 64))
    }

    fn ints(&mut self, v: &[i32]) -> String {
        self.constant(Immediate::Ints(v.to_vec()).to_value())
    }

    /// An op with one output per `(dtype, shape)`; returns the output names.
    fn op_n(&mut self, ty: &str, inputs: &[(&str, &str)], outs: &[(DataType, &[usize])]) -> Vec<String> {
        let names: Vec<String> = outs.iter().map(|_| self.fresh(ty)).collect();
        self.ops.push(Operation {
            r#type: ty.into(),
            inputs: inputs.iter().map(|(k, v)| (k.to_string(), mil::arg(v))).collect(),
            outputs: names
                .iter()
                .zip(outs)
                .map(|(n, (dt, shape))| mil::named(n, mil::tensor_type(*dt, shape)))
                .collect(),
            blocks: Vec::new(),
            attributes: BTreeMap::from([("name".to_string(), mil::string_value(&names[0]))]),
        });
        names
    }

    fn op(&mut self, ty: &str, inputs: &[(&str, &str)], dt: DataType, shape: &[usize]) -> String {
        self.op_n(ty, inputs, &[(dt, shape)]).remove(0)
    }

    /// A 3×3 conv `[1,c,hw,hw]` → `[1,c,hw,hw]`: at c=64, hw=128 it does 1.2 GFLOP.
    fn conv(&mut self, x: &str, dt: DataType, c: usize, hw: usize, kernel: usize, dilation: i32) -> String {
        let w = self.weight(dt, &[c, c, kernel, kernel]);
        let d = self.ints(&[dilation, dilation]);
        self.op(
            "conv",
            &[("x", x), ("weight", &w), ("dilations", &d)],
            dt,
            &[1, c, hw, hw],
        )
    }

    fn output(&mut self, name: &str) {
        self.outputs.push(name.to_string());
    }

    fn program(&self) -> Program {
        let block = Block {
            inputs: Vec::new(),
            outputs: self.outputs.clone(),
            operations: self.ops.clone(),
            attributes: BTreeMap::new(),
        };
        Program {
            version: 1,
            functions: BTreeMap::from([(
                "main".to_string(),
                Function {
                    inputs: self.inputs.clone(),
                    opset: "CoreML7".into(),
                    block_specializations: BTreeMap::from([("CoreML7".to_string(), block)]),
                    attributes: BTreeMap::new(),
                },
            )]),
            doc_string: String::new(),
            attributes: BTreeMap::new(),
        }
    }
}

fn fp16() -> PlanContext {
    PlanContext {
        fp16_program: true,
        ..PlanContext::default()
    }
}

fn fp32() -> PlanContext {
    PlanContext::default()
}

fn op<'p>(plan: &'p Plan, name: &str) -> &'p OpPlan {
    plan.ops
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no op {name} in {plan:?}"))
}

fn has_rule(o: &OpPlan, rule: &str) -> bool {
    o.reasons.iter().any(|r| r.rule == rule)
}

fn ane_supported(o: &OpPlan) -> bool {
    o.supported.contains(&Unit::Ane)
}

/// A large fp16 (or fp32) conv stack: two convs and a relu, well above the size floor.
fn conv_stack(dt: DataType) -> (Mil, String) {
    let mut m = Mil::default();
    let x = m.input("x", dt, &[1, 64, 128, 128]);
    let a = m.conv(&x, dt, 64, 128, 3, 1);
    let r = m.op("relu", &[("x", &a)], dt, &[1, 64, 128, 128]);
    let b = m.conv(&r, dt, 64, 128, 3, 1);
    m.output(&b);
    (m, a)
}

#[test]
fn fp16_conv_is_on_the_ane_and_its_fp32_twin_is_not() {
    let (m, conv) = conv_stack(F16);
    let plan = super::plan(&m.program(), &fp16());
    let o = op(&plan, &conv);
    assert_eq!(o.unit, Unit::Ane, "{o:?}");
    assert_eq!(o.supported, vec![Unit::Ane, Unit::Gpu, Unit::Cpu]);
    assert!(o.reasons.is_empty(), "{o:?}");
    assert_eq!(plan.summary.ops_on(Unit::Ane), 3);

    let (m, conv) = conv_stack(F32);
    let plan = super::plan(&m.program(), &fp32());
    let o = op(&plan, &conv);
    assert!(!ane_supported(o) && has_rule(o, "fp32_program"), "{o:?}");
    // A big fp32 program goes to the GPU (fp32-typed models run on the GPU and CPU).
    assert_eq!(o.unit, Unit::Gpu);
    assert_eq!(plan.summary.ops_on(Unit::Ane), 0);
}

#[test]
fn fp32_pinned_ops_are_off_the_ane() {
    let (m, conv) = conv_stack(F16);
    let mut context = fp16();
    context.fp32_pins.insert(conv.clone(), "calibration: overflow".into());
    let plan = super::plan(&m.program(), &context);
    let o = op(&plan, &conv);
    assert!(!ane_supported(o) && has_rule(o, "fp32_pinned"), "{o:?}");
    assert!(o.reasons.iter().any(|r| r.text.contains("overflow")));
    assert_ne!(o.unit, Unit::Ane);
    let unpinned = plan.ops.iter().find(|p| p.name != conv && p.op_type == "conv").unwrap();
    assert!(!has_rule(unpinned, "fp32_pinned") && ane_supported(unpinned));
}

#[test]
fn fp32_tensors_in_an_fp16_program_are_off_the_ane_except_boundary_casts() {
    let mut m = Mil::default();
    let x = m.input("x", F32, &[1, 64, 128, 128]);
    let dtype = m.constant(Immediate::Str("fp16".into()).to_value());
    let cast_in = m.op("cast", &[("x", &x), ("dtype", &dtype)], F16, &[1, 64, 128, 128]);
    let conv = m.conv(&cast_in, F16, 64, 128, 3, 1);
    let to32 = m.constant(Immediate::Str("fp32".into()).to_value());
    let widened = m.op("cast", &[("x", &conv), ("dtype", &to32)], F32, &[1, 64, 128, 128]);
    let fp32_add = m.op("add", &[("x", &widened), ("y", &widened)], F32, &[1, 64, 128, 128]);
    m.output(&fp32_add);
    let plan = super::plan(&m.program(), &fp16());

    let input_cast = op(&plan, &cast_in);
    assert!(
        ane_supported(input_cast) && has_rule(input_cast, "io_cast"),
        "{input_cast:?}"
    );
    assert!(!has_rule(input_cast, "fp32_tensor"));
    assert!(input_cast.reasons[0].text.starts_with("uncertain"));
    assert_eq!(input_cast.unit, Unit::Ane, "planned with the conv it feeds");

    let interior = op(&plan, &widened);
    assert!(
        !ane_supported(interior) && has_rule(interior, "fp32_tensor"),
        "{interior:?}"
    );
    assert!(interior.reasons.iter().any(|r| r.text.contains("fp32[1,64,128,128]")));
    let add = op(&plan, &fp32_add);
    assert!(has_rule(add, "fp32_tensor") && !has_rule(add, "io_cast"));
    assert_eq!(op(&plan, &conv).unit, Unit::Ane);
}

#[test]
fn embedding_gathers_are_off_the_ane_and_other_gathers_are_not() {
    let mut m = Mil::default();
    let ids = m.input("ids", I32, &[1, 128]);
    let table = m.weight(F16, &[30522, 768]);
    let axis = m.ints(&[0]);
    let emb = m.op(
        "gather",
        &[("x", &table), ("indices", &ids), ("axis", &axis)],
        F16,
        &[1, 128, 768],
    );
    let picks = m.ints(&[0, 5]);
    let rows = m.op(
        "gather",
        &[("x", &emb), ("indices", &picks), ("axis", &axis)],
        F16,
        &[2, 128, 768],
    );
    m.output(&rows);
    let plan = super::plan(&m.program(), &fp16());
    let lookup = op(&plan, &emb);
    assert!(
        !ane_supported(lookup) && has_rule(lookup, "embedding_gather"),
        "{lookup:?}"
    );
    assert!(lookup.reasons.iter().any(|r| r.text.contains("fp16[30522,768]")));
    assert!(lookup.supported.contains(&Unit::Gpu));
    let other = op(&plan, &rows);
    assert!(
        !has_rule(other, "embedding_gather") && ane_supported(other),
        "{other:?}"
    );
}

#[test]
fn a_linear_with_50257_outputs_is_over_the_ane_limit() {
    for (outputs, over) in [(50_257, true), (4096, false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 128, 768]);
        let w = m.weight(F16, &[outputs, 768]);
        let b = m.weight(F16, &[outputs]);
        let logits = m.op(
            "linear",
            &[("x", &x), ("weight", &w), ("bias", &b)],
            F16,
            &[1, 128, outputs],
        );
        m.output(&logits);
        let plan = super::plan(&m.program(), &fp16());
        let o = op(&plan, &logits);
        assert_eq!(has_rule(o, "ane_dimension_limit"), over, "{o:?}");
        assert_eq!(ane_supported(o), !over);
        if over {
            assert!(o
                .reasons
                .iter()
                .any(|r| r.text.contains("50257") && r.text.contains("16384")));
        } else {
            // 2·128·768·4096 = 805 MFLOP: above the floor, on the ANE.
            assert_eq!(o.unit, Unit::Ane);
        }
    }
}

#[test]
fn topk_and_its_index_consumers_are_off_the_ane() {
    let mut m = Mil::default();
    let x = m.input("x", F16, &[1, 1000]);
    let k = m.ints(&[5]);
    let outs = m.op_n("topk", &[("x", &x), ("k", &k)], &[(F16, &[1, 5]), (I32, &[1, 5])]);
    let axis = m.ints(&[1]);
    let expanded = m.op("expand_dims", &[("x", &outs[1]), ("axes", &axis)], I32, &[1, 5, 1]);
    let squeezed = m.op("squeeze", &[("x", &expanded), ("axes", &axis)], I32, &[1, 5]);
    let picked = m.op(
        "gather_along_axis",
        &[("x", &x), ("indices", &squeezed), ("axis", &axis)],
        F16,
        &[1, 5],
    );
    let other_indices = m.ints(&[0, 1, 2, 3, 4]);
    let plain = m.op(
        "gather_along_axis",
        &[("x", &x), ("indices", &other_indices), ("axis", &axis)],
        F16,
        &[1, 5],
    );
    m.output(&outs[0]);
    m.output(&picked);
    m.output(&plain);
    let plan = super::plan(&m.program(), &fp16());
    for name in [&outs[0], &expanded, &squeezed, &picked] {
        let o = op(&plan, name);
        assert!(has_rule(o, "topk_indices") && !ane_supported(o), "{o:?}");
    }
    assert!(op(&plan, &picked).reasons.iter().any(|r| r.text.contains(&outs[0])));
    let o = op(&plan, &plain);
    assert!(!has_rule(o, "topk_indices") && ane_supported(o), "{o:?}");
}

#[test]
fn op_type_rules_rule_out_their_ops_and_nothing_else() {
    for rule in RULES {
        let Check::OpTypes(types, _) = rule.check else {
            continue;
        };
        for ty in types.iter().copied().chain(["relu"]) {
            let mut m = Mil::default();
            let x = m.input("x", F16, &[1, 64, 8, 8]);
            let y = m.op(ty, &[("x", &x)], F16, &[1, 64, 8, 8]);
            m.output(&y);
            let plan = super::plan(&m.program(), &fp16());
            let o = op(&plan, &y);
            let listed = ty != "relu";
            assert_eq!(has_rule(o, rule.name), listed, "{} on {ty}: {o:?}", rule.name);
            assert_eq!(ane_supported(o), !listed, "{} on {ty}", rule.name);
        }
    }
}

#[test]
fn a_shape_range_rules_out_the_ane_and_enumerated_shapes_do_not() {
    let (m, conv) = conv_stack(F16);
    for (kind, ruled_out) in [("range", true), ("enumerated", false)] {
        let mut context = fp16();
        context.flexible_inputs = vec![("x".into(), kind)];
        let plan = super::plan(&m.program(), &context);
        let o = op(&plan, &conv);
        assert_eq!(has_rule(o, "flexible_shapes"), ruled_out, "{kind}: {o:?}");
        assert_eq!(ane_supported(o), !ruled_out);
    }
}

#[test]
fn rank_5_tensors_are_off_the_ane_and_rank_4_are_not() {
    for (shape, over) in [(&[1usize, 2, 8, 8, 8][..], true), (&[2, 8, 8, 8][..], false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, shape);
        let y = m.op("relu", &[("x", &x)], F16, shape);
        m.output(&y);
        let plan = super::plan(&m.program(), &fp16());
        let o = op(&plan, &y);
        assert_eq!(has_rule(o, "rank_over_4"), over, "{o:?}");
        assert_eq!(ane_supported(o), !over);
    }
}

#[test]
fn runtime_int32_tensors_are_off_the_ane() {
    for (to, dt, off) in [("int32", I32, true), ("fp16", F16, false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 16]);
        let d = m.constant(Immediate::Str(to.into()).to_value());
        let y = m.op("cast", &[("x", &x), ("dtype", &d)], dt, &[1, 16]);
        let z = m.op("add", &[("x", &y), ("y", &y)], dt, &[1, 16]);
        m.output(&z);
        let plan = super::plan(&m.program(), &fp16());
        for name in [&y, &z] {
            let o = op(&plan, name);
            assert_eq!(has_rule(o, "int32_tensor"), off, "{to}: {o:?}");
        }
    }
}

#[test]
fn slices_with_runtime_bounds_are_off_the_ane() {
    for runtime in [true, false] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 64]);
        let begin = if runtime {
            m.input("begin", I32, &[2])
        } else {
            m.ints(&[0, 8])
        };
        let end = m.ints(&[1, 16]);
        let y = m.op(
            "slice_by_index",
            &[("x", &x), ("begin", &begin), ("end", &end)],
            F16,
            &[1, 8],
        );
        m.output(&y);
        let plan = super::plan(&m.program(), &fp16());
        let o = op(&plan, &y);
        assert_eq!(has_rule(o, "runtime_slice"), runtime, "{o:?}");
    }
}

#[test]
fn large_windows_are_probably_off_the_ane() {
    // Conv kernel width.
    for (kernel, large) in [(15, true), (3, false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 8, 32, 32]);
        let y = m.conv(&x, F16, 8, 32, kernel, 1);
        m.output(&y);
        let o = op(&plan(&m.program(), &fp16()), &y).clone();
        assert_eq!(has_rule(&o, "large_window"), large, "kernel {kernel}: {o:?}");
        if large {
            assert!(o.reasons.iter().any(|r| r.text.contains("guesses")));
        }
    }
    // Pooling stride and upsampling factor.
    for (stride, factor, large) in [(3, 4, true), (2, 2, false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 8, 32, 32]);
        let k = m.ints(&[2, 2]);
        let s = m.ints(&[stride, stride]);
        let pooled = m.op(
            "max_pool",
            &[("x", &x), ("kernel_sizes", &k), ("strides", &s)],
            F16,
            &[1, 8, 10, 10],
        );
        let f = m.ints(&[factor]);
        let up = m.op(
            "upsample_nearest_neighbor",
            &[("x", &pooled), ("scale_factor_height", &f), ("scale_factor_width", &f)],
            F16,
            &[1, 8, 40, 40],
        );
        m.output(&up);
        let plan = super::plan(&m.program(), &fp16());
        assert_eq!(has_rule(op(&plan, &pooled), "large_window"), large);
        assert_eq!(has_rule(op(&plan, &up), "large_window"), large);
    }
}

#[test]
fn dilated_convs_are_uncertain_and_stay_on_the_ane() {
    for dilation in [2, 1] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 64, 128, 128]);
        let y = m.conv(&x, F16, 64, 128, 3, dilation);
        m.output(&y);
        let plan = super::plan(&m.program(), &fp16());
        let o = op(&plan, &y);
        assert_eq!(has_rule(o, "dilated_conv"), dilation > 1, "{o:?}");
        assert_eq!(o.unit, Unit::Ane);
    }
}

#[test]
fn small_attention_prefers_the_cpu_and_large_attention_the_ane() {
    for (seq, small) in [(128usize, true), (2048, false)] {
        let mut m = Mil::default();
        let shape = [1, 16, seq, 64];
        let q = m.input("q", F16, &shape);
        let k = m.input("k", F16, &shape);
        let v = m.input("v", F16, &shape);
        let y = m.op(
            "scaled_dot_product_attention",
            &[("query", &q), ("key", &k), ("value", &v)],
            F16,
            &shape,
        );
        m.output(&y);
        let plan = super::plan(&m.program(), &fp16());
        let o = op(&plan, &y);
        assert_eq!(has_rule(o, "sdpa_size_floor"), small, "{o:?}");
        assert!(ane_supported(o), "supported, only not preferred");
        assert_eq!(o.unit == Unit::Ane, !small);
    }
}

#[test]
fn more_than_3_gb_of_weights_rules_out_the_ane() {
    let (m, conv) = conv_stack(F16);
    for (bytes, over) in [(4u64 << 30, true), (100 << 20, false)] {
        let mut context = fp16();
        context.weight_bytes = bytes;
        let plan = super::plan(&m.program(), &context);
        let o = op(&plan, &conv);
        assert_eq!(has_rule(o, "total_weights"), over, "{o:?}");
        assert_eq!(o.unit == Unit::Ane, !over);
    }
}

#[test]
fn work_below_the_size_floor_runs_on_the_cpu() {
    // The same stack at 8×8 does 2·64·64·9·64·2 = 9 MFLOP: below the floor; at 128×128, above.
    for (hw, below) in [(8usize, true), (128, false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 64, hw, hw]);
        let a = m.conv(&x, F16, 64, hw, 3, 1);
        let b = m.conv(&a, F16, 64, hw, 3, 1);
        m.output(&b);
        let plan = super::plan(&m.program(), &fp16());
        for name in [&a, &b] {
            let o = op(&plan, name);
            assert_eq!(has_rule(o, "size_floor"), below, "{hw}: {o:?}");
            assert!(ane_supported(o));
            assert_eq!(o.unit, if below { Unit::Cpu } else { Unit::Ane });
        }
    }
}

#[test]
fn small_off_ane_work_stays_on_the_cpu_rather_than_the_gpu() {
    for (hw, small) in [(8usize, true), (128, false)] {
        let mut m = Mil::default();
        let x = m.input("x", F32, &[1, 64, hw, hw]);
        let a = m.conv(&x, F32, 64, hw, 3, 1);
        m.output(&a);
        let plan = super::plan(&m.program(), &fp32());
        let o = op(&plan, &a);
        assert_eq!(has_rule(o, "gpu_size_floor"), small, "{o:?}");
        assert!(o.supported.contains(&Unit::Gpu));
        assert_eq!(o.unit, if small { Unit::Cpu } else { Unit::Gpu });
    }
}

#[test]
fn the_plan_uses_only_the_chosen_compute_units() {
    let (m, conv) = conv_stack(F16);
    let expected = [
        (ComputeUnits::All, Unit::Ane, vec![Unit::Ane, Unit::Gpu, Unit::Cpu]),
        (ComputeUnits::CpuAndNeuralEngine, Unit::Ane, vec![Unit::Ane, Unit::Cpu]),
        (ComputeUnits::CpuAndGpu, Unit::Gpu, vec![Unit::Gpu, Unit::Cpu]),
        (ComputeUnits::CpuOnly, Unit::Cpu, vec![Unit::Cpu]),
    ];
    for (units, unit, supported) in expected {
        let context = PlanContext {
            compute_units: units,
            ..fp16()
        };
        let plan = super::plan(&m.program(), &context);
        let o = op(&plan, &conv);
        assert_eq!((o.unit, &o.supported), (unit, &supported), "{units:?}");
        assert_eq!(has_rule(o, "compute_units"), units != ComputeUnits::All);
        assert_eq!(plan.compute_units, units);
    }
    // fp32 with cpu-and-ne: no GPU to fall back to.
    let (m, conv) = conv_stack(F32);
    let context = PlanContext {
        compute_units: ComputeUnits::CpuAndNeuralEngine,
        ..fp32()
    };
    let plan = super::plan(&m.program(), &context);
    assert_eq!(op(&plan, &conv).unit, Unit::Cpu);
    assert!(
        !has_rule(op(&plan, &conv), "gpu_size_floor"),
        "no GPU rule when the GPU is left out"
    );
}

#[test]
fn unlisted_ops_are_noted_as_uncertain() {
    for (ty, unlisted) in [("cumsum", true), ("relu", false)] {
        let mut m = Mil::default();
        let x = m.input("x", F16, &[1, 64]);
        let y = m.op(ty, &[("x", &x)], F16, &[1, 64]);
        m.output(&y);
        let o = op(&plan(&m.program(), &fp16()), &y).clone();
        assert_eq!(has_rule(&o, "unlisted_op"), unlisted, "{o:?}");
        assert!(ane_supported(&o));
    }
}

#[test]
fn segments_transitions_and_cost_shares() {
    // conv (ANE) → reduce (ANE) → topk (CPU) → gather_along_axis on its indices (CPU).
    let mut m = Mil::default();
    let x = m.input("x", F16, &[1, 64, 128, 128]);
    let a = m.conv(&x, F16, 64, 128, 3, 1);
    let axes = m.ints(&[2, 3]);
    let pooled = m.op("reduce_mean", &[("x", &a), ("axes", &axes)], F16, &[1, 64]);
    let k = m.ints(&[3]);
    let top = m.op_n("topk", &[("x", &pooled), ("k", &k)], &[(F16, &[1, 3]), (I32, &[1, 3])]);
    let axis = m.ints(&[1]);
    let picked = m.op(
        "gather_along_axis",
        &[("x", &pooled), ("indices", &top[1]), ("axis", &axis)],
        F16,
        &[1, 3],
    );
    m.output(&top[0]);
    m.output(&picked);
    let plan = super::plan(&m.program(), &fp16());
    let units: Vec<Unit> = plan.ops.iter().map(|o| o.unit).collect();
    assert_eq!(units, vec![Unit::Ane, Unit::Ane, Unit::Cpu, Unit::Cpu], "{plan:?}");
    assert_eq!(plan.segments.len(), 2);
    assert_eq!((plan.segments[0].unit, plan.segments[0].ops), (Unit::Ane, 2));
    assert_eq!(plan.segments[0].first_op, a);
    assert_eq!(plan.segments[1].last_op, picked);
    // `pooled` crosses to the CPU once, though two CPU ops read it.
    assert_eq!(plan.summary.transitions, 1);
    let total: f64 = plan.ops.iter().map(|o| o.cost_share).sum();
    assert!((total - 1.0).abs() < 1e-9);
    assert!(
        plan.summary.share_on(Unit::Ane) > 0.99,
        "the conv dominates: {:?}",
        plan.summary
    );
    let line = report::summary(&plan);
    let ane = format!(
        "plan: ANE {:.1}% of cost (2/4 ops), GPU 0%, CPU ",
        plan.summary.share_on(Unit::Ane) * 100.0
    );
    assert!(
        line.starts_with(&ane) && line.ends_with("% (2 ops); 2 segments, 1 transition"),
        "{line}"
    );
}

#[test]
fn plan_json_has_the_documented_schema() {
    let (m, conv) = conv_stack(F16);
    let mut context = fp16();
    context
        .onnx_nodes
        .insert(conv.clone(), vec!["Conv_0".into(), "BatchNormalization_1".into()]);
    let plan = super::plan(&m.program(), &context);
    let json = report::to_json(&plan);
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&json),
        ["compute_units", "ops", "rules_version", "segments", "summary"]
    );
    assert_eq!(
        keys(&json["summary"]),
        [
            "ane_cost_share",
            "ane_ops",
            "cpu_cost_share",
            "cpu_ops",
            "gpu_cost_share",
            "gpu_ops",
            "ops",
            "segments",
            "transitions"
        ]
    );
    assert_eq!(
        keys(&json["ops"][0]),
        [
            "cost_share",
            "name",
            "onnx_nodes",
            "reasons",
            "supported",
            "type",
            "unit"
        ]
    );
    assert_eq!(
        keys(&json["segments"][0]),
        ["cost_share", "first_op", "last_op", "ops", "unit"]
    );
    assert_eq!(json["compute_units"], "all");
    assert_eq!(json["ops"][0]["unit"], "ane");
    let (nodes, units) = report::read_json(&json);
    assert_eq!(nodes[&conv], ["Conv_0", "BatchNormalization_1"]);
    assert_eq!(units, Some(ComputeUnits::All));
    assert!(report::table(&plan).contains(&format!("fused into {conv}: BatchNormalization_1")));
}

#[test]
fn pins_go_on_planned_ops_only_in_coremltools_encoding() {
    let (m, conv) = conv_stack(F16);
    let mut program = m.program();
    let plan = super::plan(&program, &fp16());
    assert_eq!(pin::pin(&mut program, &plan), 3);
    let (_, block) = program::main_block(&program).unwrap();
    for op in &block.operations {
        assert_eq!(
            op.attributes.contains_key(pin::INTENDED_BACKEND),
            op.r#type != "const",
            "{}",
            op.r#type
        );
    }
    let pinned = block.operations.iter().find(|o| o.outputs[0].name == conv).unwrap();
    let value = &pinned.attributes[pin::INTENDED_BACKEND];
    use crate::proto::coreml::mil_spec::{dimension, value, value_type};
    let Some(value_type::Type::ListType(list)) = value.r#type.as_ref().and_then(|t| t.r#type.as_ref()) else {
        panic!("not a list: {value:?}");
    };
    assert!(
        matches!(list.length.as_ref().and_then(|d| d.dimension.as_ref()), Some(dimension::Dimension::Constant(c)) if c.size == 1)
    );
    let Some(value::Value::ImmediateValue(imm)) = &value.value else {
        panic!("not immediate");
    };
    let Some(value::immediate_value::Value::List(items)) = &imm.value else {
        panic!("not a list value");
    };
    assert_eq!(items.values.len(), 1);
    assert_eq!(pin::backend_names(Unit::Cpu), ["bnns", "classic_cpu", "e5_minimal_cpu"]);
}

#[test]
fn the_rules_table_is_complete_and_consistent() {
    let mut names = std::collections::HashSet::new();
    for r in RULES {
        assert!(names.insert(r.name), "duplicate rule {}", r.name);
        assert!(!r.source.is_empty() && !r.says.is_empty());
        if r.confidence == rules::Confidence::Low && !matches!(r.effect, Effect::Uncertain(_)) {
            assert!(
                r.says.contains("guess") || r.says.contains("probably"),
                "{} is a guess and must say so",
                r.name
            );
        }
    }
    for planner_rule in ["compute_units", "size_floor", "gpu_size_floor", "unlisted_op"] {
        assert_eq!(rules::rule(planner_rule).name, planner_rule);
    }
}
