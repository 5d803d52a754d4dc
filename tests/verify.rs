//! `edgec verify`: passes on correct packages, fails (exit 1) on a package whose weights were
//! tampered with, and its comparison follows the documented criteria.

mod common;

use common::edgec;

use edgec::npy::{ArrayData, NdArray};
use edgec::verify::compare;
use edgec::Precision;

#[test]
fn verify_passes_for_compiled_models_in_both_precisions() {
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    for precision in ["fp32", "fp16"] {
        let (code, stdout, stderr) = edgec(&["verify", model.to_str().unwrap(), "--precision", precision]);
        assert_eq!(code, 0, "{precision}: {stdout}{stderr}");
        assert_eq!(stdout.matches("PASS").count(), 2, "{stdout}");
    }
}

/// tract, verify's ONNX reference, has no Loop (and cannot run two run-time Ifs in one graph):
/// verify says so and what to do instead.
#[test]
fn verify_says_what_to_do_when_tract_cannot_run_the_model() {
    let model = common::repo_root().join("testdata/models/loop_runtime.onnx");
    let (code, stdout, stderr) = edgec(&["verify", model.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("loop_runtime.onnx") && stderr.contains("does not implement") && stderr.contains("edgec run"),
        "{stderr}"
    );
}

#[test]
fn verify_catches_a_tampered_package() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("m.mlpackage");
    let model = common::repo_root().join("testdata/models/tiny_cnn.onnx");
    let options = edgec::CompileOptions {
        precision: Precision::Fp32,
        ..Default::default()
    };
    edgec::compile(&model, &pkg, &options).unwrap();
    // Flip the sign of the first conv weights (the first blob's payload starts at byte 128).
    let weights = pkg.join("Data/com.apple.CoreML/weights/weight.bin");
    let mut bytes = std::fs::read(&weights).unwrap();
    for i in 0..16 {
        bytes[128 + 4 * i + 3] ^= 0x80;
    }
    std::fs::write(&weights, bytes).unwrap();
    let (code, stdout, stderr) = edgec(&["verify", model.to_str().unwrap(), pkg.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stderr.contains("differ from the ONNX model beyond tolerance"),
        "{stderr}"
    );
}

#[test]
fn criteria_follow_the_precision() {
    let reference = NdArray {
        shape: vec![4],
        data: ArrayData::F32(vec![1.0, -2.0, 3.0, 4.0]),
    };
    let close = NdArray {
        shape: vec![4],
        data: ArrayData::F32(vec![1.0, -2.0, 3.0, 4.0002]),
    };
    let rough = NdArray {
        shape: vec![4],
        data: ArrayData::F32(vec![1.01, -2.0, 3.0, 4.02]),
    };
    // 2e-4 absolute on a scale of 4 is 5e-5 relative: inside fp32's 1e-4.
    assert!(compare("y", &reference, &close, Precision::Fp32).pass);
    // 2e-2 on 4 is 5e-3 relative: too far for fp32, fine for fp16 (cosine ~0.99998).
    assert!(!compare("y", &reference, &rough, Precision::Fp32).pass);
    assert!(compare("y", &reference, &rough, Precision::Fp16).pass);
    let flipped = NdArray {
        shape: vec![4],
        data: ArrayData::F32(vec![-1.0, 2.0, 3.0, 4.0]),
    };
    assert!(!compare("y", &reference, &flipped, Precision::Fp16).pass);
    let wrong_shape = NdArray {
        shape: vec![2, 2],
        data: ArrayData::F32(vec![1.0, -2.0, 3.0, 4.0]),
    };
    assert!(!compare("y", &reference, &wrong_shape, Precision::Fp32).pass);
}

#[test]
fn generated_inputs_are_deterministic_and_use_onnx_names() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("w.mlpackage");
    edgec::compile(
        &common::repo_root().join("testdata/models/weird_names.onnx"),
        &pkg,
        &Default::default(),
    )
    .unwrap();
    let a = edgec::verify::deterministic_inputs(&pkg, 7).unwrap();
    let b = edgec::verify::deterministic_inputs(&pkg, 7).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0].0, "input.1");
    assert_ne!(a, edgec::verify::deterministic_inputs(&pkg, 8).unwrap());
}

/// Generated integer inputs stay below the size of the table they index: an embedding of 3 rows
/// gets ids 0..3, so `verify` with no inputs checks the model instead of reading past the table
/// (the reference used to panic there).
#[test]
fn generated_indices_stay_inside_the_table_they_index() {
    use edgec::proto::onnx::ModelProto;
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let source = common::repo_root().join("testdata/models/compressible.onnx");
    let mut proto = ModelProto::decode(std::fs::read(&source).unwrap().as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let table = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == "embedding.weight")
        .unwrap();
    let width = table.dims[1] as usize;
    table.dims[0] = 3;
    if table.raw_data.is_empty() {
        table.float_data.truncate(3 * width);
    } else {
        table.raw_data.truncate(3 * width * 4);
    }
    let model = dir.path().join("small_table.onnx");
    std::fs::write(&model, proto.encode_to_vec()).unwrap();
    let pkg = dir.path().join("small_table.mlpackage");
    edgec::compile(&model, &pkg, &Default::default()).unwrap();

    let inputs = edgec::verify::deterministic_inputs(&pkg, 0).unwrap();
    let (_, ids) = inputs.iter().find(|(name, _)| name == "ids").unwrap();
    let ArrayData::I32(ids) = &ids.data else {
        panic!("ids are int32")
    };
    assert!(ids.iter().all(|&i| (0..3).contains(&i)), "{ids:?}");
    assert!(ids.contains(&2), "the whole table is used: {ids:?}");
    let (code, stdout, stderr) = edgec(&["verify", model.to_str().unwrap(), pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// GatherND's index tuples reach the gather through a multiply and a sum: each generated
/// coordinate stays below its own axis (found by the graph_gen fuzzer, which used to see the
/// interpreter refuse edgec's package), and the package runs on them.
#[test]
fn generated_gather_nd_tuples_stay_inside_each_indexed_axis() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/gather_nd_runtime.onnx");
    let pkg = dir.path().join("gather_nd.mlpackage");
    edgec::compile(&model, &pkg, &Default::default()).unwrap();
    for seed in 0..4 {
        let inputs = edgec::verify::deterministic_inputs(&pkg, seed).unwrap();
        // idx [2,2] indexes axes 0 and 1 of x [3,4,5]; idx_b [3,2,1] (batch_dims 1) axis 1.
        for (name, sizes) in [("idx", [3, 4].as_slice()), ("idx_b", &[4])] {
            let (_, array) = inputs.iter().find(|(n, _)| n == name).unwrap();
            let ArrayData::I32(values) = &array.data else {
                panic!("{name} is int32")
            };
            for (e, &v) in values.iter().enumerate() {
                let size = sizes[e % sizes.len()];
                assert!(
                    (0..size).contains(&v),
                    "{name}[{e}] = {v} outside 0..{size}: {values:?}"
                );
            }
        }
        let outputs = edgec::interp::run_package(&pkg, &inputs, &Default::default()).unwrap();
        assert_eq!(outputs.len(), 2);
    }
    // `verify` with no inputs generates them the same way and matches onnxruntime.
    let (code, stdout, stderr) = edgec(&["verify", model.to_str().unwrap(), pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// Scatters with indices fed at run time index their data as gathers do: generated indices stay
/// inside it (per tuple component for scatter_nd), and verify passes on them.
#[test]
fn generated_scatter_indices_stay_inside_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::repo_root().join("testdata/models/scatter_runtime.onnx");
    let pkg = dir.path().join("scatter.mlpackage");
    edgec::compile(&model, &pkg, &Default::default()).unwrap();
    let inputs = edgec::verify::deterministic_inputs(&pkg, 0).unwrap();
    let ints = |name: &str| match &inputs.iter().find(|(n, _)| n == name).unwrap().1.data {
        ArrayData::I32(v) => v.clone(),
        other => panic!("{name}: {other:?}"),
    };
    // x is [3, 4]: ScatterElements along axis 1 takes 0..4, ScatterND rows 0..3, pairs (0..3, 0..4).
    assert!(ints("idx").iter().all(|&i| (0..4).contains(&i)), "{:?}", ints("idx"));
    assert!(ints("rows").iter().all(|&i| (0..3).contains(&i)), "{:?}", ints("rows"));
    let pairs = ints("pairs");
    assert!(
        pairs
            .chunks(2)
            .all(|p| (0..3).contains(&p[0]) && (0..4).contains(&p[1])),
        "{pairs:?}"
    );
    let (code, stdout, stderr) = edgec(&["verify", model.to_str().unwrap(), pkg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
