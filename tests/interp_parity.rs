//! Parity: every test model, compiled by edgec (fp32 and fp16) and executed from the package
//! on disk by edgec's reference interpreter, must reproduce onnxruntime's outputs stored in
//! `testdata/models/<name>.npz`.
//!
//! fp32: max abs error ≤ 1e-4 · max(1, max|ref|). fp16 (run with fp16 rounding, as a device
//! would store values): cosine similarity ≥ 0.999 and max abs error ≤ 2e-2 · max(1, max|ref|).
//! All failures are collected and reported together, with per-output figures.

mod common;

use edgec::interp::{self, ArrayData, InterpOptions, NdArray};
use edgec::onnx::InputShapes;
use edgec::{CompileOptions, DeploymentTarget, Precision};
use std::collections::HashMap;
use std::path::Path;

struct Figures {
    max_abs: f64,
    max_ref: f64,
    cosine: f64,
}

fn to_f64(a: &NdArray) -> Vec<f64> {
    a.data.to_f64_vec()
}

fn figures(out: &[f64], reference: &[f64]) -> Figures {
    let max_abs = out
        .iter()
        .zip(reference)
        .map(|(o, r)| {
            if o.is_nan() != r.is_nan() {
                f64::INFINITY
            } else {
                (o - r).abs()
            }
        })
        .fold(0.0, f64::max);
    let max_ref = reference.iter().fold(0.0f64, |m, r| m.max(r.abs()));
    let dot: f64 = out.iter().zip(reference).map(|(o, r)| o * r).sum();
    let (no, nr) = (
        out.iter().map(|v| v * v).sum::<f64>().sqrt(),
        reference.iter().map(|v| v * v).sum::<f64>().sqrt(),
    );
    let cosine = if no < 1e-30 && nr < 1e-30 {
        1.0
    } else {
        dot / (no * nr).max(1e-300)
    };
    Figures {
        max_abs,
        max_ref,
        cosine,
    }
}

/// `(inputs, outputs)` of a reference file, keyed by ONNX name, in file order.
type Reference = (Vec<(String, NdArray)>, Vec<(String, NdArray)>);

fn read_reference(path: &Path) -> Reference {
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for (key, array) in edgec::npy::read_npz(path).unwrap_or_else(|e| panic!("{e}")) {
        // Split on the first ':' only: ONNX names may contain ':' themselves.
        match key.split_once(':') {
            Some(("input", name)) => inputs.push((name.to_string(), array)),
            Some(("output", name)) => outputs.push((name.to_string(), array)),
            _ => panic!("{}: unexpected key {key:?}", path.display()),
        }
    }
    (inputs, outputs)
}

/// Run one compiled package and compare; returns a line per output, and whether all passed.
fn check_package(pkg: &Path, precision: Precision, reference: &Reference) -> Result<Vec<(bool, String)>, String> {
    let (ref_inputs, ref_outputs) = reference;
    // ONNX name → MIL name from the package's metadata; else the package keeps ONNX order.
    let io_names: HashMap<String, String> = interp::io_names(pkg).map_err(|e| e.to_string())?.into_iter().collect();
    let package_inputs = interp::input_names(pkg).map_err(|e| e.to_string())?;
    let inputs: Vec<(String, NdArray)> = ref_inputs
        .iter()
        .enumerate()
        .map(|(i, (onnx, a))| {
            let mil = io_names
                .get(onnx)
                .cloned()
                .or_else(|| package_inputs.get(i).cloned())
                .unwrap_or_else(|| onnx.clone());
            (mil, a.clone())
        })
        .collect();
    let options = InterpOptions {
        fp16_rounding: precision == Precision::Fp16,
    };
    let outputs = interp::run_package(pkg, &inputs, &options).map_err(|e| format!("interpreter error: {e}"))?;
    if outputs.len() != ref_outputs.len() {
        return Err(format!(
            "{} outputs, the reference has {}",
            outputs.len(),
            ref_outputs.len()
        ));
    }
    let mut lines = Vec::new();
    for (i, (onnx, reference)) in ref_outputs.iter().enumerate() {
        let (mil, out) = match io_names.get(onnx) {
            Some(mil) => outputs
                .iter()
                .find(|(n, _)| n == mil)
                .ok_or_else(|| format!("no output {mil:?} (ONNX {onnx:?})"))?,
            None => &outputs[i],
        };
        if out.shape != reference.shape {
            lines.push((
                false,
                format!("{onnx} ({mil}): shape {:?}, reference {:?}", out.shape, reference.shape),
            ));
            continue;
        }
        if matches!(out.data, ArrayData::F16(_)) && precision == Precision::Fp32 {
            lines.push((false, format!("{onnx} ({mil}): fp16 output from an fp32 package")));
            continue;
        }
        let f = figures(&to_f64(out), &to_f64(reference));
        let scale = f.max_ref.max(1.0);
        let ok = match precision {
            Precision::Fp32 => f.max_abs <= 1e-4 * scale,
            Precision::Fp16 => f.cosine >= 0.999 && f.max_abs <= 2e-2 * scale,
        };
        lines.push((
            ok,
            format!(
                "{onnx} ({mil}): max_abs {:.3e} (limit {:.1e}), cosine {:.7}, max|ref| {:.3e}",
                f.max_abs,
                match precision {
                    Precision::Fp32 => 1e-4 * scale,
                    Precision::Fp16 => 2e-2 * scale,
                },
                f.cosine,
                f.max_ref
            ),
        ));
    }
    Ok(lines)
}

#[test]
fn interpreter_reproduces_onnxruntime_on_every_test_model() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut report = Vec::new();
    let models = common::test_models();
    assert!(!models.is_empty(), "no test models found");
    for (name, path, shapes) in models {
        let reference = read_reference(&path.with_extension("npz"));
        // The attention model also on iOS18, where it is one scaled_dot_product_attention.
        let mut variants = vec![
            (Precision::Fp32, DeploymentTarget::default()),
            (Precision::Fp16, DeploymentTarget::default()),
        ];
        if name == "fusion_attention" {
            variants.extend([
                (Precision::Fp32, DeploymentTarget::Ios18),
                (Precision::Fp16, DeploymentTarget::Ios18),
            ]);
        }
        for (precision, deployment_target) in variants {
            let label = format!("{name} {precision:?} {deployment_target}");
            let pkg = tmp
                .path()
                .join(format!("{name}.{precision:?}.{deployment_target}.mlpackage"));
            let needs_calibration =
                precision == Precision::Fp16 && common::FP16_NEEDS_CALIBRATION.contains(&name.as_str());
            let options = CompileOptions {
                precision,
                auto_precision: needs_calibration.then(|| common::calibrated(&path)),
                input_shapes: InputShapes(shapes.clone()),
                verify_each_pass: true,
                deployment_target,
                ..Default::default()
            };
            if let Err(e) = edgec::compile(&path, &pkg, &options) {
                failures.push(format!("{label}: compile error: {e}"));
                continue;
            }
            match check_package(&pkg, precision, &reference) {
                Ok(lines) => {
                    for (ok, line) in lines {
                        report.push(format!("{label}: {line}"));
                        if !ok {
                            failures.push(format!("{label}: {line}"));
                        }
                    }
                }
                Err(e) => failures.push(format!("{label}: {e}")),
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "{} output(s) differ from onnxruntime:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn interpreter_rejects_bad_inputs_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let path = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let pkg = tmp.path().join("tiny.mlpackage");
    edgec::compile(
        &path,
        &pkg,
        &CompileOptions {
            precision: Precision::Fp32,
            ..Default::default()
        },
    )
    .unwrap();
    let (inputs, _) = read_reference(&path.with_extension("npz"));
    let options = InterpOptions::default();
    let good = inputs[0].1.clone();

    let e = interp::run_package(&pkg, &[], &options).unwrap_err().to_string();
    assert!(e.contains("missing input") && e.contains("input"), "{e}");

    let extra = vec![("input".to_string(), good.clone()), ("nope".to_string(), good.clone())];
    let e = interp::run_package(&pkg, &extra, &options).unwrap_err().to_string();
    assert!(e.contains("no input \"nope\""), "{e}");

    let twice = vec![("input".to_string(), good.clone()), ("input".to_string(), good.clone())];
    let e = interp::run_package(&pkg, &twice, &options).unwrap_err().to_string();
    assert!(e.contains("more than once"), "{e}");

    let wrong_shape = NdArray::new(vec![1, 3, 16, 16], ArrayData::F32(vec![0.0; 768])).unwrap();
    let e = interp::run_package(&pkg, &[("input".to_string(), wrong_shape)], &options)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("shape [1, 3, 16, 16]") && e.contains("fp32[1,3,32,32]"),
        "{e}"
    );

    let ints = NdArray::new(good.shape.clone(), ArrayData::I32(vec![0; good.len()])).unwrap();
    let e = interp::run_package(&pkg, &[("input".to_string(), ints)], &options)
        .unwrap_err()
        .to_string();
    assert!(e.contains("int32") && e.contains("cannot be converted"), "{e}");

    // f64 input converts to the declared fp32; the result matches the f32 run exactly.
    let ArrayData::F32(v) = &good.data else {
        panic!("reference input is f32")
    };
    let as_f64 = NdArray::new(
        good.shape.clone(),
        ArrayData::F64(v.iter().map(|&x| f64::from(x)).collect()),
    )
    .unwrap();
    let a = interp::run_package(&pkg, &[("input".to_string(), good)], &options).unwrap();
    let b = interp::run_package(&pkg, &[("input".to_string(), as_f64)], &options).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec!["logits", "probs"]
    );
}

#[test]
fn unknown_ops_and_bad_types_are_named() {
    use edgec::proto::coreml::{model, Model};
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let path = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let pkg = tmp.path().join("tiny.mlpackage");
    edgec::compile(&path, &pkg, &CompileOptions::default()).unwrap();
    let (inputs, _) = read_reference(&path.with_extension("npz"));
    let model_path = pkg.join("Data/com.apple.CoreML/model.mlmodel");
    let original = std::fs::read(&model_path).unwrap();
    let edit = |f: &dyn Fn(&mut edgec::proto::coreml::mil_spec::Operation) -> bool| {
        let mut m = Model::decode(original.as_slice()).unwrap();
        let Some(model::Type::MlProgram(p)) = &mut m.r#type else {
            panic!("not a program")
        };
        let f_main = p.functions.get_mut("main").unwrap();
        let block = f_main.block_specializations.values_mut().next().unwrap();
        assert!(block.operations.iter_mut().any(f), "no op to edit");
        std::fs::write(&model_path, m.encode_to_vec()).unwrap();
    };
    let run = || {
        interp::run_package(&pkg, &inputs, &InterpOptions::default())
            .unwrap_err()
            .to_string()
    };

    edit(&|op| {
        if op.r#type == "relu" {
            op.r#type = "relu_fancy".into();
            true
        } else {
            false
        }
    });
    let e = run();
    assert!(e.contains("relu_fancy") && e.contains("stem_relu"), "{e}");

    // A declared output shape that contradicts MIL semantics is reported, not trusted.
    edit(&|op| {
        if op.r#type == "relu" {
            let ty = op.outputs[0].r#type.as_mut().unwrap();
            if let Some(edgec::proto::coreml::mil_spec::value_type::Type::TensorType(t)) = &mut ty.r#type {
                t.dimensions[3] = t.dimensions[2];
                t.dimensions[2] = edgec::proto::coreml::mil_spec::Dimension {
                    dimension: Some(edgec::proto::coreml::mil_spec::dimension::Dimension::Constant(
                        edgec::proto::coreml::mil_spec::dimension::ConstantDimension { size: 99 },
                    )),
                };
            }
            true
        } else {
            false
        }
    });
    let e = run();
    assert!(
        e.contains("stem_relu") && e.contains("computes as fp16[1,8,16,16]"),
        "{e}"
    );
}

use common::float_value;

/// A node named after its one output.
fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<edgec::proto::onnx::AttributeProto>,
) -> edgec::proto::onnx::NodeProto {
    edgec::proto::onnx::NodeProto {
        name: output.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// An empty input (a key-value cache of length 0, as a first decoding step has) carries no
/// data: edgec compiles it as a constant, says so, and the package takes only the real
/// inputs. A sum over its empty axis is the empty sum, 0, and a max is -inf.
#[test]
fn empty_inputs_become_constants() {
    use edgec::proto::onnx::{attribute_proto::AttributeType, AttributeProto, GraphProto};

    let ints = |name: &str, values: &[i64]| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    };
    let int = |name: &str, value: i64| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    };
    let graph = GraphProto {
        name: "empty_cache".into(),
        input: vec![float_value("past", &[1, 0, 4]), float_value("x", &[1, 3, 4])],
        output: vec![float_value("y", &[1, 3, 4]), float_value("peak", &[1, 1, 4])],
        node: vec![
            node("Concat", &["past", "x"], "joined", vec![int("axis", 1)]),
            node("ReduceSum", &["past"], "past_sum", vec![int("keepdims", 1)]),
            node("Add", &["joined", "past_sum"], "y", vec![]),
            node(
                "ReduceMax",
                &["past"],
                "peak",
                vec![ints("axes", &[1]), int("keepdims", 1)],
            ),
        ],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("empty_cache.onnx");
    common::write_graph(&onnx, graph, 13);
    let pkg = dir.path().join("empty_cache.mlpackage");
    let options = CompileOptions {
        precision: Precision::Fp32,
        ..Default::default()
    };
    let report = edgec::compile(&onnx, &pkg, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("\"past\"") && w.contains("constant")),
        "{:?}",
        report.warnings
    );
    assert_eq!(interp::input_names(&pkg).unwrap(), ["x"]);
    let x: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
    let inputs = vec![(
        "x".to_string(),
        NdArray {
            shape: vec![1, 3, 4],
            data: ArrayData::F32(x.clone()),
        },
    )];
    let outputs = interp::run_package(&pkg, &inputs, &InterpOptions::default()).unwrap();
    assert_eq!(
        outputs[0].1.data.to_f64_vec(),
        x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()
    );
    assert_eq!(outputs[1].1.shape, [1, 1, 4]);
    assert!(outputs[1].1.data.to_f64_vec().iter().all(|&v| v == f64::NEG_INFINITY));
    common::validate_with_coremltools(&[pkg]);
}

/// An output that would be empty cannot be published: Core ML outputs are never empty.
#[test]
fn empty_outputs_are_refused() {
    use edgec::proto::onnx::{GraphProto, NodeProto};

    let graph = GraphProto {
        name: "empty_out".into(),
        input: vec![float_value("past", &[1, 0, 4]), float_value("x", &[1, 3, 4])],
        output: vec![float_value("y", &[1, 0, 4]), float_value("z", &[1, 3, 4])],
        node: vec![
            NodeProto {
                op_type: "Identity".into(),
                input: vec!["past".into()],
                output: vec!["y".into()],
                ..Default::default()
            },
            NodeProto {
                op_type: "Relu".into(),
                input: vec!["x".into()],
                output: vec!["z".into()],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("empty_out.onnx");
    common::write_graph(&onnx, graph, 13);
    let pkg = dir.path().join("empty_out.mlpackage");
    let message = edgec::compile(&onnx, &pkg, &CompileOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("empty_out.onnx") && message.contains("\"y\"") && message.contains("cannot be empty"),
        "{message}"
    );
    assert!(!pkg.exists());
}

/// An If whose condition is known at compile time is inlined: here the condition reads an input
/// fixed with `--input-value` (as silero_vad switches on its sample rate), and the taken branch
/// reads the enclosing scope, has its own initializer and an If of its own on a shape. Without
/// the value, the If is decided at run time (MIL `cond`) and the same package computes both.
#[test]
fn ifs_with_known_conditions_are_inlined() {
    use edgec::proto::onnx::{
        attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, GraphProto, TensorProto,
        TypeProto, ValueInfoProto,
    };

    let branch = |name: &str, g: GraphProto| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(g),
        ..Default::default()
    };
    let scalar = |name: &str, data_type: DataType, raw: Vec<u8>| TensorProto {
        name: name.into(),
        data_type: data_type as i32,
        raw_data: raw.into(),
        ..Default::default()
    };
    let out = |name: &str| ValueInfoProto {
        name: name.into(),
        ..Default::default()
    };
    // then: (x · 3) then, since x has 4 columns, + 1 (an If on Shape(x)[1] == 4); else: x − 5.
    let inner = node(
        "If",
        &["is_wide"],
        "then_out",
        vec![
            branch(
                "then_branch",
                GraphProto {
                    node: vec![node("Add", &["tripled", "one"], "wide", vec![])],
                    initializer: vec![scalar("one", DataType::Float, 1f32.to_le_bytes().to_vec())],
                    output: vec![out("wide")],
                    ..Default::default()
                },
            ),
            branch(
                "else_branch",
                GraphProto {
                    node: vec![node("Identity", &["tripled"], "narrow", vec![])],
                    output: vec![out("narrow")],
                    ..Default::default()
                },
            ),
        ],
    );
    let then_branch = GraphProto {
        node: vec![
            node("Mul", &["x", "three"], "tripled", vec![]),
            node("Shape", &["x"], "x_shape", vec![]),
            node(
                "Gather",
                &["x_shape", "column_axis"],
                "columns",
                vec![AttributeProto {
                    name: "axis".into(),
                    r#type: AttributeType::Int as i32,
                    i: 0,
                    ..Default::default()
                }],
            ),
            node("Equal", &["columns", "four"], "is_wide", vec![]),
            inner,
        ],
        initializer: vec![
            scalar("three", DataType::Float, 3f32.to_le_bytes().to_vec()),
            scalar("column_axis", DataType::Int64, 1i64.to_le_bytes().to_vec()),
            scalar("four", DataType::Int64, 4i64.to_le_bytes().to_vec()),
        ],
        output: vec![out("then_out")],
        ..Default::default()
    };
    let else_branch = GraphProto {
        node: vec![node("Sub", &["x", "five"], "else_out", vec![])],
        initializer: vec![scalar("five", DataType::Float, 5f32.to_le_bytes().to_vec())],
        output: vec![out("else_out")],
        ..Default::default()
    };
    let sr = ValueInfoProto {
        name: "sr".into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Int64 as i32,
                shape: Some(Default::default()),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let graph = GraphProto {
        name: "switch".into(),
        input: vec![float_value("x", &[1, 4]), sr],
        output: vec![float_value("y", &[1, 4])],
        initializer: vec![scalar("rate", DataType::Int64, 16000i64.to_le_bytes().to_vec())],
        node: vec![
            node("Equal", &["sr", "rate"], "is_16k", vec![]),
            node(
                "If",
                &["is_16k"],
                "y",
                vec![branch("then_branch", then_branch), branch("else_branch", else_branch)],
            ),
        ],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("switch.onnx");
    common::write_graph(&onnx, graph, 17);
    let x: Vec<f32> = vec![0.5, -1.0, 2.0, 4.0];
    let inputs = vec![(
        "x".to_string(),
        NdArray {
            shape: vec![1, 4],
            data: ArrayData::F32(x.clone()),
        },
    )];
    let mut packages = Vec::new();
    for (rate, expected) in [
        (16000.0, x.iter().map(|v| v * 3.0 + 1.0).collect::<Vec<_>>()),
        (8000.0, x.iter().map(|v| v - 5.0).collect()),
    ] {
        let pkg = dir.path().join(format!("switch_{rate}.mlpackage"));
        let options = CompileOptions {
            precision: Precision::Fp32,
            input_values: edgec::onnx::InputValues(vec![("sr".into(), vec![rate])]),
            ..Default::default()
        };
        let report = edgec::compile(&onnx, &pkg, &options).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            report.warnings.iter().any(|w| w.contains("\"sr\"")),
            "{:?}",
            report.warnings
        );
        assert_eq!(interp::input_names(&pkg).unwrap(), ["x"]);
        let got = interp::run_package(&pkg, &inputs, &InterpOptions::default()).unwrap();
        let got: Vec<f64> = got[0].1.data.to_f64_vec();
        let want: Vec<f64> = expected.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(got, want, "sr={rate}");
        packages.push(pkg);
    }
    // A caller may still pass a compiled-in input, with the value it was compiled with.
    let with_rate = |rate: i64| {
        let mut all = inputs.clone();
        all.push((
            "sr".to_string(),
            NdArray {
                shape: vec![],
                data: ArrayData::I64(vec![rate]),
            },
        ));
        all
    };
    let same = interp::run_package(&packages[0], &with_rate(16000), &InterpOptions::default()).unwrap();
    assert_eq!(same[0].1.data.to_f64_vec(), [2.5, -2.0, 7.0, 13.0]);
    let message = interp::run_package(&packages[0], &with_rate(8000), &InterpOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("\"sr\" was compiled in as [16000.0]"), "{message}");
    common::validate_with_coremltools(&packages);
    let pkg = dir.path().join("switch_runtime.mlpackage");
    let fp32 = CompileOptions {
        precision: Precision::Fp32,
        ..Default::default()
    };
    edgec::compile(&onnx, &pkg, &fp32).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        common::mil_text(&pkg).contains(" = cond(pred="),
        "{}",
        common::mil_text(&pkg)
    );
    assert_eq!(interp::input_names(&pkg).unwrap(), ["x", "sr"]);
    for (rate, want) in [(16000, [2.5, -2.0, 7.0, 13.0]), (8000, [-4.5, -6.0, -3.0, -1.0])] {
        let got = interp::run_package(&pkg, &with_rate(rate), &InterpOptions::default()).unwrap();
        assert_eq!(got[0].1.data.to_f64_vec(), want, "run-time sr={rate}");
    }
    common::validate_with_coremltools(std::slice::from_ref(&pkg));
    let wrong = CompileOptions {
        input_values: edgec::onnx::InputValues(vec![("sr".into(), vec![1.0, 2.0])]),
        ..Default::default()
    };
    let message = edgec::compile(&onnx, &pkg, &wrong).unwrap_err().to_string();
    assert!(
        message.contains("--input-value sr") && message.contains("2 value(s)"),
        "{message}"
    );
}

/// A Loop whose trip count is known at compile time (here fixed with `--input-value`) is
/// unrolled: its loop-carried value and its scan output match the loop's arithmetic. With the
/// trip count computed at run time it would be a `while_loop`, which cannot give a scan output
/// (its length would be known only at run time): refused, naming the trip count.
#[test]
fn loops_with_known_trip_counts_are_unrolled() {
    use edgec::proto::onnx::{
        attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, GraphProto, TensorProto,
        TypeProto, ValueInfoProto,
    };

    let node = |op: &str, inputs: &[&str], output: &str| node(op, inputs, output, vec![]);
    let scalar_input = |name: &str, elem_type: DataType| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(Default::default()),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let named = |name: &str| ValueInfoProto {
        name: name.into(),
        ..Default::default()
    };
    // acc ← acc · 2 + x each iteration; the scan output records acc after each step.
    let body = GraphProto {
        name: "body".into(),
        input: vec![named("i"), named("cond_in"), named("acc_in")],
        output: vec![named("cond_out"), named("acc_out"), named("acc_scan")],
        node: vec![
            node("Identity", &["cond_in"], "cond_out"),
            node("Mul", &["acc_in", "two"], "doubled"),
            node("Add", &["doubled", "x"], "acc_out"),
            node("Identity", &["acc_out"], "acc_scan"),
        ],
        initializer: vec![TensorProto {
            name: "two".into(),
            data_type: DataType::Float as i32,
            raw_data: 2f32.to_le_bytes().to_vec().into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut lp = node("Loop", &["steps", "", "start"], "acc");
    lp.output.push("history".into());
    lp.attribute.push(AttributeProto {
        name: "body".into(),
        r#type: AttributeType::Graph as i32,
        g: Some(body),
        ..Default::default()
    });
    let graph = GraphProto {
        name: "loop".into(),
        input: vec![float_value("x", &[2]), scalar_input("steps", DataType::Int64)],
        output: vec![float_value("acc", &[2]), float_value("history", &[3, 2])],
        initializer: vec![TensorProto {
            name: "start".into(),
            dims: vec![2],
            data_type: DataType::Float as i32,
            raw_data: [1f32, -1f32]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
            ..Default::default()
        }],
        node: vec![lp],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("loop.onnx");
    common::write_graph(&onnx, graph, 17);
    let pkg = dir.path().join("loop.mlpackage");
    let options = CompileOptions {
        precision: Precision::Fp32,
        input_values: edgec::onnx::InputValues(vec![("steps".into(), vec![3.0])]),
        ..Default::default()
    };
    edgec::compile(&onnx, &pkg, &options).unwrap_or_else(|e| panic!("{e}"));
    let x = [0.5f32, 3.0];
    let inputs = vec![(
        "x".to_string(),
        NdArray {
            shape: vec![2],
            data: ArrayData::F32(x.to_vec()),
        },
    )];
    let out = interp::run_package(&pkg, &inputs, &InterpOptions::default()).unwrap();
    let mut acc = [1f32, -1.0];
    let mut history = Vec::new();
    for _ in 0..3 {
        for (a, v) in acc.iter_mut().zip(x) {
            *a = *a * 2.0 + v;
        }
        history.extend(acc.iter().map(|&a| f64::from(a)));
    }
    assert_eq!(
        out[0].1.data.to_f64_vec(),
        acc.iter().map(|&a| f64::from(a)).collect::<Vec<_>>()
    );
    assert_eq!(out[1].1.shape, [3, 2]);
    assert_eq!(out[1].1.data.to_f64_vec(), history);
    common::validate_with_coremltools(std::slice::from_ref(&pkg));
    let message = edgec::compile(&onnx, &pkg, &CompileOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("trip count \"steps\"") && message.contains("run time") && message.contains("scan output"),
        "{message}"
    );
}

/// onnxruntime's `com.microsoft::DynamicQuantizeLSTM` (int8 `W` and `R` laid out
/// `[directions, input, 4·hidden]`, a scale and zero point per direction) computes what an ONNX
/// LSTM with the dequantized, transposed weights computes.
#[test]
fn dynamic_quantize_lstm_is_an_lstm_of_the_dequantized_weights() {
    use edgec::proto::onnx::{
        attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, TensorProto,
    };
    let (seq, inputs_n, hidden) = (3usize, 2usize, 2usize);
    let gates = 4 * hidden;
    let tensor = |name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>| TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data: raw.into(),
        ..Default::default()
    };
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let codes = |n: usize, seed: i32| {
        (0..n)
            .map(|k| (((k as i32 * 37 + seed) % 41) - 20) as i8)
            .collect::<Vec<i8>>()
    };
    let (w_codes, r_codes) = (codes(inputs_n * gates, 5), codes(hidden * gates, 11));
    let (w_scale, w_zero, r_scale, r_zero) = (0.05f32, 3i8, 0.04f32, -2i8);
    let bias: Vec<f32> = (0..2 * gates).map(|k| (k as f32 - 7.0) * 0.03).collect();
    let hidden_size = AttributeProto {
        name: "hidden_size".into(),
        r#type: AttributeType::Int as i32,
        i: hidden as i64,
        ..Default::default()
    };
    let outputs = vec![
        float_value("y", &[seq as i64, 1, 1, hidden as i64]),
        float_value("y_h", &[1, 1, hidden as i64]),
    ];
    // The quantized model, as onnxruntime writes it.
    let mut quantized = node(
        "DynamicQuantizeLSTM",
        &[
            "x", "w_q", "r_q", "b", "", "", "", "", "w_scale", "w_zero", "r_scale", "r_zero",
        ],
        "y",
        vec![hidden_size.clone()],
    );
    quantized.domain = "com.microsoft".into();
    quantized.output.push("y_h".into());
    let as_bytes = |v: &[i8]| v.iter().map(|&c| c as u8).collect::<Vec<u8>>();
    let graph = GraphProto {
        name: "qlstm".into(),
        input: vec![float_value("x", &[seq as i64, 1, inputs_n as i64])],
        output: outputs.clone(),
        node: vec![quantized],
        initializer: vec![
            tensor("w_q", &[1, inputs_n, gates], DataType::Int8, as_bytes(&w_codes)),
            tensor("r_q", &[1, hidden, gates], DataType::Int8, as_bytes(&r_codes)),
            tensor("b", &[1, 2 * gates], DataType::Float, floats(&bias)),
            tensor("w_scale", &[1], DataType::Float, floats(&[w_scale])),
            tensor("w_zero", &[1], DataType::Int8, vec![w_zero as u8]),
            tensor("r_scale", &[1], DataType::Float, floats(&[r_scale])),
            tensor("r_zero", &[1], DataType::Int8, vec![r_zero as u8]),
        ],
        ..Default::default()
    };
    // The same LSTM in ONNX's own layout: [directions, 4·hidden, input], dequantized here.
    let onnx_layout = |codes: &[i8], rows: usize, scale: f32, zero: i8| -> Vec<f32> {
        (0..gates * rows)
            .map(|k| {
                let (g, r) = (k / rows, k % rows);
                (i32::from(codes[r * gates + g]) - i32::from(zero)) as f32 * scale
            })
            .collect()
    };
    let mut plain = node("LSTM", &["x", "w", "r", "b"], "y", vec![hidden_size]);
    plain.output.push("y_h".into());
    let reference = GraphProto {
        name: "lstm".into(),
        input: vec![float_value("x", &[seq as i64, 1, inputs_n as i64])],
        output: outputs,
        node: vec![plain],
        initializer: vec![
            tensor(
                "w",
                &[1, gates, inputs_n],
                DataType::Float,
                floats(&onnx_layout(&w_codes, inputs_n, w_scale, w_zero)),
            ),
            tensor(
                "r",
                &[1, gates, hidden],
                DataType::Float,
                floats(&onnx_layout(&r_codes, hidden, r_scale, r_zero)),
            ),
            tensor("b", &[1, 2 * gates], DataType::Float, floats(&bias)),
        ],
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<f32> = (0..seq * inputs_n).map(|k| (k as f32 * 0.7).sin()).collect();
    let inputs = vec![(
        "x".to_string(),
        NdArray {
            shape: vec![seq, 1, inputs_n],
            data: ArrayData::F32(x),
        },
    )];
    let mut results = Vec::new();
    for (name, graph) in [("quantized", graph), ("reference", reference)] {
        let onnx = dir.path().join(format!("{name}.onnx"));
        common::write_graph(&onnx, graph, 17);
        let pkg = dir.path().join(format!("{name}.mlpackage"));
        let options = CompileOptions {
            precision: Precision::Fp32,
            ..Default::default()
        };
        edgec::compile(&onnx, &pkg, &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        let out = interp::run_package(&pkg, &inputs, &InterpOptions::default()).unwrap();
        results.push(out.into_iter().map(|(_, a)| a.data.to_f64_vec()).collect::<Vec<_>>());
    }
    assert_eq!(results[0], results[1]);
    assert!(results[0][1].iter().any(|&v| v.abs() > 1e-3), "{:?}", results[0]);
}
