//! Malformed and unsupported inputs: each must fail with a clear message naming the file (and
//! the node and op where there is one), exit with status 1, and leave no package behind.

mod common;

use std::path::Path;
use std::process::Command;

fn compile_bad(model: &Path, extra: &[&str]) -> (i32, String, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.mlpackage");
    let result = Command::new(env!("CARGO_BIN_EXE_edgec"))
        .arg("compile")
        .arg(model)
        .args(["--target", "metal", "-o"])
        .arg(&out)
        .args(extra)
        .output()
        .expect("edgec runs");
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    // No package, and no temporary directory left beside it.
    let leftovers = std::fs::read_dir(tmp.path()).unwrap().count();
    (
        result.status.code().unwrap_or(-1),
        stderr,
        out.exists() || leftovers > 0,
    )
}

fn bad(name: &str) -> std::path::PathBuf {
    common::repo_root().join("testdata/bad").join(name)
}

fn assert_fails(model: &Path, extra: &[&str], expected: &[&str]) {
    let (code, stderr, left_output) = compile_bad(model, extra);
    assert_eq!(code, 1, "{}: exit code {code}, stderr: {stderr}", model.display());
    assert!(!left_output, "{}: output left behind", model.display());
    assert!(!stderr.contains("panicked"), "{}: panicked: {stderr}", model.display());
    let file = model.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(file.as_ref()),
        "error does not name the file {file}: {stderr}"
    );
    for e in expected {
        assert!(stderr.contains(e), "{}: expected {e:?} in: {stderr}", model.display());
    }
}

#[test]
fn truncated_file() {
    assert_fails(&bad("truncated.onnx"), &[], &["not a valid ONNX model"]);
}

#[test]
fn not_protobuf() {
    assert_fails(&bad("not_protobuf.onnx"), &[], &["not a valid ONNX model"]);
}

#[test]
fn unknown_ops_are_all_listed_with_their_nodes() {
    assert_fails(
        &bad("unknown_op.onnx"),
        &[],
        &[
            "2 unsupported ONNX op(s)",
            "FancyOp (node \"fancy_1\")",
            "NonMaxSuppression (node \"nms\")",
        ],
    );
}

#[test]
fn missing_initializer_names_node_and_input() {
    assert_fails(
        &bad("missing_initializer.onnx"),
        &[],
        &[
            "node",
            "input \"",
            "is not a graph input, an initializer or any node's output",
        ],
    );
}

#[test]
fn cycle_names_the_nodes() {
    assert_fails(&bad("cycle.onnx"), &[], &["cycle"]);
}

#[test]
fn external_data_outside_the_model_folder() {
    assert_fails(&bad("external_escape.onnx"), &[], &["outside the model's folder"]);
}

#[test]
fn external_data_file_missing() {
    assert_fails(&bad("external_missing.onnx"), &[], &["cannot be opened"]);
}

#[test]
fn duplicate_output_names_both_nodes() {
    assert_fails(&bad("duplicate_output.onnx"), &[], &["is also produced by node"]);
}

#[test]
fn absurd_shape() {
    assert_fails(&bad("absurd_shape.onnx"), &[], &["more than edgec's limit"]);
}

#[test]
fn dynamic_dims_need_input_shape() {
    let model = common::repo_root().join("testdata/models/dynamic_batch.onnx");
    assert_fails(&model, &[], &["--input-shape", "\"input\" dim 0 (batch)"]);
}

#[test]
fn input_shape_that_disagrees_with_the_model() {
    let model = common::repo_root().join("testdata/models/dynamic_batch.onnx");
    assert_fails(
        &model,
        &["--input-shape", "input=1x4x8x8"],
        &["does not match the model's shape [batch, 3, 8, 8]"],
    );
}

#[test]
fn input_shape_for_an_unknown_input() {
    let model = common::repo_root().join("testdata/models/dynamic_batch.onnx");
    let (code, stderr, left) = compile_bad(&model, &["--input-shape", "nope=1x3x8x8"]);
    assert_eq!(code, 1);
    assert!(!left);
    assert!(
        stderr.contains("\"nope\", which is not an input of the model"),
        "{stderr}"
    );
}

#[test]
fn missing_model_file() {
    let (code, stderr, left) = compile_bad(Path::new("/nonexistent/model.onnx"), &[]);
    assert_eq!(code, 1);
    assert!(!left);
    assert!(stderr.contains("/nonexistent/model.onnx"), "{stderr}");
}

#[test]
fn output_that_is_not_a_package_is_not_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("precious.mlpackage");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("notes.txt"), "keep me").unwrap();
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let result = Command::new(env!("CARGO_BIN_EXE_edgec"))
        .arg("compile")
        .arg(&model)
        .arg("-o")
        .arg(&victim)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(victim.join("notes.txt")).unwrap(), "keep me");
}

/// `model` with its default-domain opset replaced, written next to nothing else.
fn with_opset(model: &Path, opset: i64, dir: &Path) -> std::path::PathBuf {
    use edgec::proto::onnx::ModelProto;
    use prost::Message;
    let mut proto = ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    for import in proto
        .opset_import
        .iter_mut()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
    {
        import.version = opset;
    }
    let path = dir.join(format!("opset{opset}.onnx"));
    std::fs::write(&path, proto.encode_to_vec()).unwrap();
    path
}

#[test]
fn opsets_outside_the_supported_range_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    assert_fails(&with_opset(&model, 99, tmp.path()), &[], &["opset 99", "opsets 6 to"]);
    assert_fails(&with_opset(&model, 5, tmp.path()), &[], &["opset 5", "legacy"]);
    // The newest supported opset compiles.
    let newest = *edgec::onnx::SUPPORTED_OPSETS.end();
    let (code, stderr, _) = compile_bad(&with_opset(&model, newest, tmp.path()), &[]);
    assert_eq!(code, 0, "opset {newest}: {stderr}");
}

#[test]
fn a_repeated_input_shape_is_an_error() {
    let model = common::repo_root().join("testdata/models/dynamic_batch.onnx");
    let (code, stderr, left) = compile_bad(
        &model,
        &["--input-shape", "input=1x3x8x8", "--input-shape", "input=2x3x8x8"],
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(!left);
    assert!(stderr.contains("\"input\" more than once"), "{stderr}");
}

/// tiny_bert_dynamic's input_ids and attention_mask are both [batch, sequence].
#[test]
fn inputs_sharing_a_dim_name_must_be_given_the_same_value() {
    let model = common::repo_root().join("testdata/models/tiny_bert_dynamic.onnx");
    assert_fails(
        &model,
        &["--input-shape", "input_ids=2x6", "--input-shape", "attention_mask=2x7"],
        &[
            "\"sequence\"",
            "6 for input \"input_ids\"",
            "7 for input \"attention_mask\"",
            "must agree",
        ],
    );
    let (code, stderr, _) = compile_bad(
        &model,
        &["--input-shape", "input_ids=2x6", "--input-shape", "attention_mask=2x6"],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_dynamic_dims_error_points_to_analyze() {
    let model = common::repo_root().join("testdata/models/dynamic_batch.onnx");
    assert_fails(&model, &[], &["edgec analyze"]);
}

/// A compile killed while writing leaves `.NAME.edgec-tmp-PID` beside its output; the next
/// compile to that output removes it once that process is gone, and leaves a live one's alone.
#[test]
#[cfg(target_os = "linux")]
fn temp_folders_of_dead_compiles_are_removed_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.mlpackage");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = tmp.path().join(format!(".out.mlpackage.edgec-tmp-{dead}"));
    let live = tmp
        .path()
        .join(format!(".out.mlpackage.edgec-tmp-{}", std::process::id()));
    for dir in [&stale, &live] {
        std::fs::create_dir_all(dir.join("Data")).unwrap();
        std::fs::write(dir.join("Data/weight.bin"), [0u8; 64]).unwrap();
    }
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let status = Command::new(env!("CARGO_BIN_EXE_edgec"))
        .args(["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(out.is_dir());
    assert!(!stale.exists(), "the dead compile's temp folder is still there");
    assert!(live.exists(), "a running process's temp folder was removed");
}

#[test]
fn recurrent_layer_errors_name_the_node() {
    assert_fails(
        &bad("lstm_bad_activations.onnx"),
        &[],
        &["\"lstm\"", "LSTM", "must list 3 functions"],
    );
    assert_fails(
        &bad("rnn_too_long_to_unroll.onnx"),
        &[],
        &["\"rnn\"", "RNN", "clip", "5000 steps exceed the limit of 4096"],
    );
}

#[test]
fn arithmetic_on_bool_is_refused_with_its_node() {
    // MIL's maximum and reduce_argmax take fp16, fp32 or int32: a bool operand would make a
    // package Core ML refuses (found by the graph_gen fuzzer).
    assert_fails(
        &bad("bool_arithmetic.onnx"),
        &[],
        &["(ArgMax)", "needs a numeric input, got bool[2,3]"],
    );
}

#[test]
fn reflect_pad_wider_than_its_axis_is_refused_with_its_node() {
    assert_fails(
        &bad("pad_reflect_too_wide.onnx"),
        &[],
        &["\"mirror\"", "(Pad)", "reflect padding of 4 and 0 on axis 1 of size 4"],
    );
}

#[test]
fn run_time_control_flow_that_core_ml_cannot_type_is_refused_with_its_node() {
    assert_fails(
        &bad("if_branch_shapes_differ.onnx"),
        &[],
        &[
            "\"pick\"",
            "(If)",
            "(from input \"x\")",
            "f32[2,3] in the then branch but f32[3,2] in the else branch",
            "--input-value",
        ],
    );
    assert_fails(
        &bad("loop_carried_shape_changes.onnx"),
        &[],
        &["\"grow\"", "(Loop)", "is f32[1,2] on entry but the body gives f32[1,4]"],
    );
    assert_fails(
        &bad("loop_runtime_scan.onnx"),
        &[],
        &[
            "\"history\"",
            "(Loop)",
            "trip count \"n\" is computed at run time",
            "scan outputs",
        ],
    );
}
