//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Input shapes to freeze, as `--input-shape` takes them.
pub type InputShapes = Vec<(String, Vec<usize>)>;

/// Every valid test model, sorted, with the input shapes it needs.
pub fn test_models() -> Vec<(String, PathBuf, InputShapes)> {
    let dir = repo_root().join("testdata/models");
    let mut models: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/models exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let shapes = match name.as_str() {
                "dynamic_batch" => vec![("input".to_string(), vec![1, 3, 8, 8])],
                "tiny_bert_dynamic" => vec![
                    ("input_ids".to_string(), vec![2, 6]),
                    ("attention_mask".to_string(), vec![2, 6]),
                ],
                _ => Vec::new(),
            };
            (name, p, shapes)
        })
        .collect();
    models.sort();
    models
}

/// Test models whose default fp16 package is wrong by design (an activation fp16 cannot hold,
/// a cancellation): they need `--precision auto` with their reference inputs as calibration.
pub const FP16_NEEDS_CALIBRATION: &[&str] = &["fp16_activation_underflow", "fp16_cancellation"];

/// Calibrated mixed precision on the model's own reference inputs (`<model>.npz`).
pub fn calibrated(model: &Path) -> edgec::AutoPrecision {
    edgec::AutoPrecision {
        calibration: Some(model.with_extension("npz")),
        ..Default::default()
    }
}

/// The Python with coremltools and onnxruntime: `$EDGEC_PYTHON`, else the repo's `.venv`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGEC_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python environment for the coremltools checks: run scripts/setup-venv.sh (or set EDGEC_PYTHON)"
    );
    venv
}

/// Compare `actual` with the golden file, or rewrite it when `EDGEC_BLESS=1`.
/// Returns a description of the mismatch, if any.
pub fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var("EDGEC_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let first_diff = expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .find(|(_, (e, a))| e != a)
        .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "lengths differ ({} vs {} lines)",
                expected.lines().count(),
                actual.lines().count()
            )
        });
    Some(format!("{} differs ({first_diff})", path.display()))
}

/// Run the `edgec` binary; returns (exit code, stdout, stderr).
pub fn edgec(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgec"))
        .args(args)
        .output()
        .expect("edgec runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Named arrays, as `edgec run` takes and returns them.
pub type Arrays = Vec<(String, edgec::npy::NdArray)>;

/// A test model's reference inputs and onnxruntime's outputs, from `<model>.npz`.
pub fn reference(model: &Path) -> (Arrays, Arrays) {
    let all = edgec::npy::read_npz(&model.with_extension("npz")).expect("the model's reference .npz");
    let pick = |prefix: &str| -> Arrays {
        all.iter()
            .filter_map(|(k, a)| k.strip_prefix(prefix).map(|n| (n.to_string(), a.clone())))
            .collect()
    };
    (pick("input:"), pick("output:"))
}

/// Check packages with coremltools 9 (`scripts/validate_package.py`: load_spec and the milproto
/// loader with full type inference); panics listing every package it rejects.
pub fn validate_with_coremltools(packages: &[PathBuf]) {
    let output = std::process::Command::new(python())
        .arg(repo_root().join("scripts/validate_package.py"))
        .args(packages)
        .output()
        .expect("the validator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("OK ")).collect();
    assert!(
        output.status.success() && failures.is_empty(),
        "coremltools rejected packages:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        packages.len(),
        "every package reported OK"
    );
}

/// The MIL program of `package`, as `edgec inspect --mil` prints it.
pub fn mil_text(package: &Path) -> String {
    let read = edgec::coreml::inspect::read_package(package).expect("the package reads back");
    match &read.model.r#type {
        Some(edgec::proto::coreml::model::Type::MlProgram(p)) => edgec::coreml::text::program_text(p),
        _ => panic!("{} is not an ML program", package.display()),
    }
}

/// A float tensor value `name` of static shape `dims`, for models built by tests.
#[allow(dead_code)]
pub fn float_value(name: &str, dims: &[i64]) -> edgec::proto::onnx::ValueInfoProto {
    use edgec::proto::onnx::{
        tensor_proto::DataType, tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto,
        TensorShapeProto, TypeProto, ValueInfoProto,
    };
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

/// `graph` as a model of the default ONNX domain at `opset`, written to `path`.
#[allow(dead_code)]
pub fn write_graph(path: &Path, graph: edgec::proto::onnx::GraphProto, opset: i64) {
    use edgec::proto::onnx::{ModelProto, OperatorSetIdProto};
    use prost::Message;
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(graph),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).expect("write the model");
}

/// Writes an ONNX MLP to `path`: `layers` × (MatMul with a `width`×`width` fp32 weight, Relu),
/// input `x` [1, width], output `y`; weights from a fixed pseudo-random sequence. Big enough
/// (with width 1024 and 8 layers, 32 MB) for a compile that can be interrupted part way.
#[allow(dead_code)]
pub fn write_mlp(path: &Path, width: usize, layers: usize) {
    use edgec::proto::onnx::{tensor_proto::DataType, GraphProto, NodeProto, TensorProto};
    let value = |name: &str| float_value(name, &[1, width as i64]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut graph = GraphProto {
        name: "mlp".into(),
        input: vec![value("x")],
        output: vec![value("y")],
        ..Default::default()
    };
    let mut previous = "x".to_string();
    for layer in 0..layers {
        let weight: Vec<u8> = (0..width * width)
            .flat_map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let uniform = (state >> 40) as f32 / (1u64 << 24) as f32;
                ((uniform - 0.5) * 2.0 / (width as f32).sqrt()).to_le_bytes()
            })
            .collect();
        let w = format!("layer{layer}.weight");
        graph.initializer.push(TensorProto {
            name: w.clone(),
            dims: vec![width as i64, width as i64],
            data_type: DataType::Float as i32,
            raw_data: weight.into(),
            ..Default::default()
        });
        let product = format!("layer{layer}.matmul");
        let out = if layer + 1 == layers {
            "y".to_string()
        } else {
            format!("layer{layer}.relu")
        };
        graph.node.push(NodeProto {
            name: product.clone(),
            op_type: "MatMul".into(),
            input: vec![previous.clone(), w],
            output: vec![product.clone()],
            ..Default::default()
        });
        graph.node.push(NodeProto {
            name: out.clone(),
            op_type: "Relu".into(),
            input: vec![product],
            output: vec![out.clone()],
            ..Default::default()
        });
        previous = out;
    }
    write_graph(path, graph, 17);
}

/// Every file of a package (or any folder), relative path → bytes.
#[allow(dead_code)]
pub fn files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}
