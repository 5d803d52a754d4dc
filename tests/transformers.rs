//! Dynamic exports: `edgec analyze` finds what needs fixing, shape subgraphs fold away
//! completely once shapes are given, and int64 token inputs are published as int32 with a note.

mod common;

use common::edgec;
use edgec::coreml::inspect::read_package;
use edgec::proto::coreml::{array_feature_type::ArrayDataType, feature_type};

fn model() -> String {
    common::repo_root()
        .join("testdata/models/tiny_bert_dynamic.onnx")
        .to_string_lossy()
        .into_owned()
}

const SHAPES: [&str; 4] = ["--input-shape", "input_ids=2x6", "--input-shape", "attention_mask=2x6"];

/// Nodes of the test model that compute only from shapes (head shapes, positions, the causal
/// mask): none may survive into a package.
const SHAPE_ONLY: [&str; 6] = ["Shape", "Range", "Concat", "Expand", "LessOrEqual", "Equal"];

#[test]
fn analyze_lists_dynamic_dims_and_the_shapes_to_give() {
    let (code, stdout, stderr) = edgec(&["analyze", &model()]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "batch        input_ids dim 0, attention_mask dim 0",
        "sequence     input_ids dim 1, attention_mask dim 1",
        "--input-shape input_ids=BATCHxSEQUENCE --input-shape attention_mask=BATCHxSEQUENCE",
        "INT64    [batch, sequence]  (int32 in the package)",
        "all supported",
        "trial compile: skipped",
    ] {
        assert!(
            stdout.contains(expected),
            "analyze output lacks {expected:?}:\n{stdout}"
        );
    }
}

/// The "as ops" column of `analyze` for `op_type`.
fn remaining(report: &str, op_type: &str) -> Option<usize> {
    report.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[2] == op_type).then(|| f[1].parse().ok()).flatten()
    })
}

#[test]
fn shape_subgraphs_fold_away_once_shapes_are_given() {
    let mut args = vec!["analyze".to_string(), model()];
    args.extend(SHAPES.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = edgec(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("trial compile: ok"), "{stdout}");
    for op in SHAPE_ONLY {
        assert_eq!(remaining(&stdout, op), Some(0), "{op} survived:\n{stdout}");
    }
    // Of six Unsqueezes only the attention mask's (runtime data) remains, as a reshape; of four
    // Gathers only the token embedding lookup (the position lookup is constant).
    assert_eq!(remaining(&stdout, "Unsqueeze"), Some(1), "{stdout}");
    assert_eq!(remaining(&stdout, "Gather"), Some(1), "{stdout}");
    // The real work stays.
    assert_eq!(remaining(&stdout, "LayerNormalization"), Some(2), "{stdout}");
    assert_eq!(remaining(&stdout, "Softmax"), Some(1), "{stdout}");
}

#[test]
fn token_ids_are_published_as_int32_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bert.mlpackage");
    let mut args = vec![
        "compile".to_string(),
        model(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
    ];
    args.extend(SHAPES.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = edgec(&args);
    assert_eq!(code, 0, "{stderr}");
    let pkg = read_package(&out).unwrap();
    let description = pkg.model.description.unwrap();
    let ids = description.input.iter().find(|f| f.name == "input_ids").unwrap();
    let Some(feature_type::Type::MultiArrayType(array)) = ids.r#type.as_ref().and_then(|t| t.r#type.as_ref()) else {
        panic!("input_ids is not a multi-array: {ids:?}")
    };
    assert_eq!(array.data_type, ArrayDataType::Int32 as i32);
    assert_eq!(array.shape, [2, 6]);
    assert!(
        ids.short_description.contains("int64 in the ONNX model, int32 here"),
        "{ids:?}"
    );
    let top = description.output.iter().find(|f| f.name == "top_feature").unwrap();
    assert!(top.short_description.contains("int64 in the ONNX model"), "{top:?}");
    let hidden = description
        .output
        .iter()
        .find(|f| f.name == "last_hidden_state")
        .unwrap();
    assert_eq!(hidden.short_description, "", "float outputs need no note");
}

#[test]
fn a_static_input_named_by_input_shape_must_agree() {
    let tiny = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.mlpackage");
    let (code, _, stderr) = edgec(&[
        "compile",
        tiny.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--input-shape",
        "input=1x3x64x64",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("does not match the model's shape"), "{stderr}");
    assert!(!out.exists(), "no package on error");
}
