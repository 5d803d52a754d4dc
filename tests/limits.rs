//! edgec's caps (`edgec::onnx::limits`): small synthetic models that declare huge shapes, deep
//! nesting, long names and the like fail fast with a typed error naming the file and where;
//! real models' shapes (a 7B LLM's weights in a data file beyond 10 GB) pass.

use edgec::onnx::limits;
use edgec::proto::onnx::attribute_proto::AttributeType;
use edgec::proto::onnx::tensor_proto::{DataLocation, DataType};
use edgec::proto::onnx::tensor_shape_proto::{dimension, Dimension};
use edgec::proto::onnx::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use edgec::{CompileOptions, Error};
use prost::Message;
use std::path::{Path, PathBuf};

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{op}_node"),
        op_type: op.into(),
        ..Default::default()
    }
}

fn ints_tensor(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: DataType::Int64 as i32,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

/// `x: f32[1, 4] -> Relu -> y`, with `nodes` and `initializers` added before the Relu's output.
fn model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, outputs: &[&str]) -> ModelProto {
    let mut all = vec![node("Relu", &["x"], "y")];
    all.extend(nodes);
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            name: "limits".into(),
            node: all,
            initializer: initializers,
            input: vec![value_info("x", &[1, 4])],
            output: outputs.iter().map(|&o| value_info(o, &[])).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Write `model` as `dir/NAME.onnx` and compile it; the error it gives.
fn compile_err(dir: &Path, name: &str, model: &ModelProto) -> Error {
    let path = write(dir, name, model);
    let out = dir.join(format!("{name}.mlpackage"));
    let err = edgec::compile(&path, &out, &CompileOptions::default()).expect_err("the model must be refused");
    assert!(!out.exists(), "{name}: a package was written");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{name}.onnx")),
        "{name}: the error does not name the file: {text}"
    );
    err
}

fn write(dir: &Path, name: &str, model: &ModelProto) -> PathBuf {
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

/// An [`Error::Limit`] whose subject and message contain the given words.
fn assert_limit(err: &Error, subject: &str, message: &str) {
    match err {
        Error::Limit {
            subject: s, message: m, ..
        } => {
            assert!(s.contains(subject), "subject {s:?} lacks {subject:?}");
            assert!(m.contains(message), "message {m:?} lacks {message:?}");
            assert!(m.contains("edgec's limit"), "{m}");
        }
        other => panic!("expected a limit error, got: {other}"),
    }
}

#[test]
fn a_declared_huge_initializer_without_its_data_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // 32000x4096 (a 7B LLM's embedding) declared, no data: within the caps, so the check that
    // refuses it is the one of the bytes present.
    let w = TensorProto {
        name: "embedding".into(),
        dims: vec![32000, 4096],
        data_type: DataType::Float as i32,
        ..Default::default()
    };
    let m = model(
        vec![node("Gather", &["embedding", "ids"], "z")],
        vec![w, ints_tensor("ids", &[1])],
        &["y", "z"],
    );
    match compile_err(dir.path(), "no_data", &m) {
        Error::Initializer { tensor, message, .. } => {
            assert_eq!(tensor, "embedding");
            assert!(message.contains("needs 131072000"), "{message}");
        }
        other => panic!("{other}"),
    }
    // Beyond the element cap, the limit names the initializer.
    let w = TensorProto {
        name: "absurd".into(),
        dims: vec![1 << 20, 1 << 20],
        data_type: DataType::Float as i32,
        ..Default::default()
    };
    let err = compile_err(dir.path(), "absurd_init", &model(Vec::new(), vec![w], &["y"]));
    assert_limit(&err, "initializer \"absurd\"", "element count 1099511627776");
}

#[test]
fn ranks_and_dims() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[1; 17]);
    assert_limit(&compile_err(dir.path(), "rank", &m), "input \"x\"", "rank 17");
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[1, 1 << 31]);
    assert_limit(
        &compile_err(dir.path(), "dim", &m),
        "input \"x\"",
        "dimension 2147483648",
    );
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[1 << 30, 1 << 30]);
    assert_limit(&compile_err(dir.path(), "count", &m), "input \"x\"", "element count");
}

#[test]
fn computed_constants_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    // ConstantOfShape of 65536x65536 floats: 16 GiB from 16 bytes of shape.
    let m = model(
        vec![node("ConstantOfShape", &["shape"], "z")],
        vec![ints_tensor("shape", &[65536, 65536])],
        &["y", "z"],
    );
    let text = compile_err(dir.path(), "fill", &m).to_string();
    assert!(
        text.contains("ConstantOfShape") && text.contains("computed constant size"),
        "{text}"
    );
    // Range over 2^40 values.
    let scalar = |name: &str, v: i64| TensorProto {
        name: name.into(),
        data_type: DataType::Int64 as i32,
        int64_data: vec![v],
        ..Default::default()
    };
    let m = model(
        vec![node("Range", &["start", "limit", "delta"], "z")],
        vec![scalar("start", 0), scalar("limit", 1 << 40), scalar("delta", 1)],
        &["y", "z"],
    );
    let text = compile_err(dir.path(), "range", &m).to_string();
    assert!(
        text.contains("Range") && text.contains("computed constant size"),
        "{text}"
    );
    // The extreme bounds of i64 do not overflow the count.
    let m = model(
        vec![node("Range", &["start", "limit", "delta"], "z")],
        vec![scalar("start", i64::MIN), scalar("limit", i64::MAX), scalar("delta", 3)],
        &["y", "z"],
    );
    compile_err(dir.path(), "range_extremes", &m);
    // Expand's target shape is checked like a declared one.
    let m = model(
        vec![node("Expand", &["y", "shape"], "z")],
        vec![ints_tensor("shape", &[1 << 20, 1 << 20, 4])],
        &["z"],
    );
    let text = compile_err(dir.path(), "expand", &m).to_string();
    assert!(text.contains("Expand") && text.contains("element count"), "{text}");
}

/// Constants computed from a few numbers share one budget per model: three ConstantOfShape
/// nodes of 400 MB each, each under the per-constant cap, are refused at the third.
#[test]
fn computed_constants_share_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let fills = (0..3)
        .map(|i| node("ConstantOfShape", &["shape"], &format!("z{i}")))
        .map(|mut n| {
            n.name = format!("fill_{}", n.output[0]);
            n
        })
        .collect();
    let m = model(
        fills,
        vec![ints_tensor("shape", &[100, 1000, 1000])],
        &["y", "z0", "z1", "z2"],
    );
    let text = compile_err(dir.path(), "budget", &m).to_string();
    assert!(text.contains("node \"fill_z2\"") && text.contains("budget"), "{text}");
}

/// A model whose Relu sits `depth` If-bodies deep.
fn nested(depth: usize) -> ModelProto {
    let mut graph = GraphProto {
        name: "body".into(),
        node: vec![node("Relu", &["x"], "inner")],
        output: vec![value_info("inner", &[])],
        ..Default::default()
    };
    for level in 0..depth {
        let mut if_node = node("If", &["cond"], &format!("out{level}"));
        if_node.attribute = ["then_branch", "else_branch"]
            .into_iter()
            .map(|branch| AttributeProto {
                name: branch.into(),
                r#type: AttributeType::Graph as i32,
                g: Some(graph.clone()),
                ..Default::default()
            })
            .collect();
        graph = GraphProto {
            name: format!("level{level}"),
            node: vec![if_node],
            output: vec![value_info(&format!("out{level}"), &[])],
            ..Default::default()
        };
    }
    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.graph.as_mut().unwrap().node.extend(graph.node);
    m
}

#[test]
fn subgraph_nesting_depth() {
    let dir = tempfile::tempdir().unwrap();
    let max = limits::MAX_SUBGRAPH_DEPTH.max as usize;
    assert_limit(
        &compile_err(dir.path(), "deep", &nested(max + 1)),
        "subgraph",
        &format!("subgraph nesting depth {}", max + 1),
    );
    // Within the cap the walk passes, and the import reports the model's own flaw: its If
    // reads a condition nothing defines.
    let err = compile_err(dir.path(), "shallow", &nested(max));
    assert!(
        matches!(err, Error::Node { .. }) && err.to_string().contains("\"cond\""),
        "{err}"
    );
}

#[test]
fn names_strings_and_attribute_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.graph.as_mut().unwrap().node[0].name = "n".repeat(5000);
    assert_limit(
        &compile_err(dir.path(), "name", &m),
        "node \"nnnn",
        "name length in bytes 5000",
    );

    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.graph.as_mut().unwrap().node[0].attribute.push(AttributeProto {
        name: "mode".into(),
        r#type: AttributeType::String as i32,
        s: vec![b'a'; (1 << 20) + 1].into(),
        ..Default::default()
    });
    assert_limit(
        &compile_err(dir.path(), "string", &m),
        "node \"Relu_node\" (Relu) attribute \"mode\"",
        "string length in bytes 1048577",
    );

    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.graph.as_mut().unwrap().node[0].attribute.push(AttributeProto {
        name: "pads".into(),
        r#type: AttributeType::Ints as i32,
        ints: vec![0; (1 << 20) + 1],
        ..Default::default()
    });
    assert_limit(
        &compile_err(dir.path(), "list", &m),
        "attribute \"pads\"",
        "attribute list length 1048577",
    );

    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.metadata_props.push(StringStringEntryProto {
        key: "licence".into(),
        value: "x".repeat((1 << 20) + 1),
    });
    assert_limit(&compile_err(dir.path(), "metadata", &m), "the model", "metadata value");
}

#[test]
fn node_count() {
    let dir = tempfile::tempdir().unwrap();
    // The model's own Relu plus a chain of Identities: one node over the cap.
    let count = limits::MAX_NODES.max as usize + 1;
    let mut nodes = Vec::with_capacity(count);
    nodes.push(node("Relu", &["x"], "v0"));
    for i in 1..count - 1 {
        nodes.push(node("Identity", &[&format!("v{}", i - 1)], &format!("v{i}")));
    }
    let mut m = model(Vec::new(), Vec::new(), &["y"]);
    m.graph.as_mut().unwrap().node.extend(nodes);
    assert_limit(&compile_err(dir.path(), "nodes", &m), "the graph", "node count 262145");
}

fn external(name: &str, dims: &[i64], file: &str, offset: u64, length: u64) -> TensorProto {
    let entry = |key: &str, value: String| StringStringEntryProto { key: key.into(), value };
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        data_location: DataLocation::External as i32,
        external_data: vec![
            entry("location", file.into()),
            entry("offset", offset.to_string()),
            entry("length", length.to_string()),
        ],
        ..Default::default()
    }
}

#[test]
fn external_data_length() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.bin"), [0u8; 64]).unwrap();
    let w = external("w", &[4], "w.bin", 0, (1 << 34) + 4);
    let err = compile_err(dir.path(), "external", &model(Vec::new(), vec![w], &["y"]));
    let text = err.to_string();
    assert!(
        text.contains("external data length in bytes 17179869188 is more than edgec's limit"),
        "{text}"
    );
}

/// A 7B LLM's weight shapes, as external data in a (sparse) data file of 12 GB, read at
/// offsets beyond 10 GB: import takes them (mapped, not read).
#[test]
#[cfg(unix)]
fn a_7b_llm_s_shapes_in_a_12_gb_data_file_import() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::File::create(dir.path().join("llm.data")).unwrap();
    if data.set_len(12 << 30).is_err() {
        eprintln!("skipped: the file system cannot hold a sparse 12 GB file");
        return;
    }
    let embedding_bytes = 32000 * 4096 * 4;
    let mlp_bytes = 11008 * 4096 * 4;
    let base = 10u64 << 30;
    let embedding = external("embed_tokens.weight", &[32000, 4096], "llm.data", base, embedding_bytes);
    let mlp = external(
        "mlp.up_proj.weight",
        &[4096, 11008],
        "llm.data",
        base + embedding_bytes,
        mlp_bytes,
    );
    let mut m = model(
        vec![
            node("Gather", &["embed_tokens.weight", "ids"], "hidden"),
            node("MatMul", &["hidden", "mlp.up_proj.weight"], "z"),
        ],
        vec![embedding, mlp, ints_tensor("ids", &[1, 2, 3])],
        &["y", "z"],
    );
    m.graph.as_mut().unwrap().input[0] = value_info("x", &[1, 4]);
    let path = write(dir.path(), "llm", &m);
    let model = edgec::onnx::load(&path).unwrap();
    let graph = edgec::onnx::import(&model, &Default::default(), &Default::default()).unwrap();
    let z = graph.outputs.iter().find(|o| o.name == "z").unwrap().value;
    assert_eq!(graph.ty(z).shape, vec![3, 11008]);
}

#[test]
fn unknown_domains_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut fused = node("FusedMatMul", &["y", "y"], "z");
    fused.domain = "com.microsoft".into();
    let err = compile_err(dir.path(), "domain", &model(vec![fused], Vec::new(), &["z"]));
    let text = err.to_string();
    assert!(
        text.contains("com.microsoft::FusedMatMul (node \"FusedMatMul_node\")"),
        "{text}"
    );
}

#[test]
fn every_limit_is_documented_with_its_value() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md")).unwrap();
    for (name, limit) in limits::ALL {
        let row = doc
            .lines()
            .find(|l| l.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("docs/reliability.md does not list {name}"));
        assert!(
            row.contains(&limit.max.to_string()),
            "docs/reliability.md gives {name} a value other than {}: {row}",
            limit.max
        );
    }
}

/// A package whose description declares a negative or enormous input shape: generating inputs
/// for it (`edgec run`/`verify` without inputs) is an error, not a wrapped size or a huge
/// allocation; running it with an input is refused by the interpreter's per-value cap.
#[test]
fn package_input_shapes_are_not_trusted() {
    use edgec::proto::coreml::{feature_type, Model};
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("tiny.mlpackage");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/tiny_cnn.onnx");
    edgec::compile(&model, &package, &CompileOptions::default()).unwrap();
    let spec_path = package.join("Data/com.apple.CoreML/model.mlmodel");
    let spec = Model::decode(std::fs::read(&spec_path).unwrap().as_slice()).unwrap();
    for (shape, expected) in [
        (vec![1, -3, 32, 32], "negative dimension"),
        (vec![1 << 20, 1 << 20, 3], "too many to generate"),
    ] {
        let mut spec = spec.clone();
        let input = &mut spec.description.as_mut().unwrap().input[0];
        let Some(feature_type::Type::MultiArrayType(array)) = input.r#type.as_mut().unwrap().r#type.as_mut() else {
            panic!("tiny_cnn's input is a multi-array");
        };
        array.shape = shape;
        std::fs::write(&spec_path, spec.encode_to_vec()).unwrap();
        let err = edgec::verify::deterministic_inputs(&package, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected) && err.contains("tiny.mlpackage"), "{err}");
    }
}

#[test]
fn a_manifest_cannot_point_outside_its_package() {
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("p.mlpackage");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/tiny_cnn.onnx");
    edgec::compile(&model, &package, &CompileOptions::default()).unwrap();
    let manifest_path = package.join("Manifest.json");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let escaped = manifest.replace("\"com.apple.CoreML/model.mlmodel\"", "\"../../../../etc/passwd\"");
    assert_ne!(manifest, escaped);
    std::fs::write(&manifest_path, escaped).unwrap();
    let err = edgec::coreml::inspect::read_package(&package)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("leads outside the package"), "{err}");
}

/// An op declared to produce 2^40 elements is refused before it runs, not allocated.
#[test]
fn the_interpreter_caps_declared_values() {
    use edgec::proto::coreml::mil_spec::{dimension, value_type};
    use edgec::proto::coreml::{model, Model};
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("tiny.mlpackage");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/tiny_cnn.onnx");
    edgec::compile(&model, &package, &CompileOptions::default()).unwrap();
    let inputs = edgec::verify::deterministic_inputs(&package, 0).unwrap();
    let spec_path = package.join("Data/com.apple.CoreML/model.mlmodel");
    let mut spec = Model::decode(std::fs::read(&spec_path).unwrap().as_slice()).unwrap();
    let Some(model::Type::MlProgram(program)) = spec.r#type.as_mut() else {
        panic!("an ML Program")
    };
    let block = program
        .functions
        .get_mut("main")
        .unwrap()
        .block_specializations
        .values_mut()
        .next()
        .unwrap();
    let op = block.operations.iter_mut().find(|op| op.r#type != "const").unwrap();
    let name = op.outputs[0].name.clone();
    let Some(value_type::Type::TensorType(t)) = op.outputs[0].r#type.as_mut().unwrap().r#type.as_mut() else {
        panic!("a tensor output")
    };
    for d in &mut t.dimensions {
        d.dimension = Some(dimension::Dimension::Constant(dimension::ConstantDimension {
            size: 1 << 10,
        }));
    }
    std::fs::write(&spec_path, spec.encode_to_vec()).unwrap();
    let Err(err) = edgec::interp::run_package(&package, &inputs, &Default::default()) else {
        panic!("a value declared with 2^40 elements was accepted");
    };
    let err = err.to_string();
    assert!(
        err.contains(&name) && err.contains("interpreter's limit of 268435456"),
        "{err}"
    );
}

/// Kernel, stride, dilation and padding numbers are sizes too: ones beyond a dimension's cap
/// are refused by name before any shape arithmetic on them could overflow.
#[test]
fn op_size_parameters_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let ints = |name: &str, ints: Vec<i64>| AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints,
        ..Default::default()
    };
    let weight = TensorProto {
        name: "w".into(),
        dims: vec![1, 1, 3],
        data_type: DataType::Float as i32,
        float_data: vec![1.0; 3],
        ..Default::default()
    };
    let big = i64::MAX / 2;
    let cases = [
        ("Conv", "dilations", vec![big]),
        ("Conv", "strides", vec![big]),
        ("Conv", "pads", vec![big, big]),
        ("ConvTranspose", "output_padding", vec![big]),
        ("ConvTranspose", "output_shape", vec![i64::MIN]),
        ("ConvTranspose", "dilations", vec![big]),
    ];
    for (i, (op, attr, values)) in cases.into_iter().enumerate() {
        let mut n = node(op, &["x3", "w"], "z");
        n.attribute.push(ints(attr, values));
        let mut m = model(
            vec![node("Unsqueeze", &["y", "zero"], "x3"), n],
            vec![weight.clone(), ints_tensor("zero", &[0])],
            &["z"],
        );
        m.graph.as_mut().unwrap().input[0] = value_info("x", &[1, 8]);
        let text = compile_err(dir.path(), &format!("params{i}"), &m).to_string();
        assert!(text.contains(op) && text.contains(attr), "{op} {attr}: {text}");
    }
    // Pad's pads, as an input.
    let m = model(
        vec![node("Pad", &["y", "pads"], "z")],
        vec![ints_tensor("pads", &[0, big, 0, big])],
        &["z"],
    );
    let text = compile_err(dir.path(), "pad", &m).to_string();
    assert!(text.contains("Pad") && text.contains("edgec's limit"), "{text}");
}
