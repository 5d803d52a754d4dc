//! ONNX conformance: every node test case of the pinned `onnx` package (its backend test
//! suite) is compiled with edgec, the emitted package is checked by coremltools and run by
//! edgec's ML Program interpreter, and the outputs are compared with the expected ones.
//!
//! The outcome of every case is kept in `tests/conformance/expected.tsv`; the test fails on
//! any change (a regression, or a newly passing case that should be recorded). Refresh it,
//! and `docs/conformance.md`, with `EDGEC_BLESS=1 cargo test --test conformance`.
//!
//! While working on ops, `EDGEC_CONFORMANCE_OPS=Gather,Slice cargo test --release --test
//! conformance -- --nocapture` runs only those op types' cases and prints each outcome
//! (without comparing or blessing).

mod common;

use edgec::coreml::DeploymentTarget;
use edgec::interp::{run_package, InterpOptions};
use edgec::npy::{read_npz, ArrayData, NdArray};
use edgec::proto::onnx::{tensor_proto::DataType, ModelProto, TensorProto};
use prost::Message;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tolerances for fp32 packages: the interpreter computes in f32 with different summation
/// orders than the ONNX reference, so ONNX's own atol (1e-7) is too tight for convolutions.
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-5;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
    Skipped(String),
}

impl Outcome {
    fn kind(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::Skipped(_) => "skipped",
        }
    }

    fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Unsupported(r) | Outcome::Skipped(r) => r,
        }
    }
}

struct Case {
    name: String,
    op_type: String,
    /// Float outputs computed from float data (integer and bool inputs are parameters).
    float: bool,
    /// Every input and output is a float tensor.
    all_float: bool,
    /// A function-body expansion: it exercises the expansion's ops, not `op_type` itself.
    expanded: bool,
    skipped: Option<String>,
}

fn generate(dir: &Path) -> Vec<Case> {
    let status = Command::new(common::python())
        .arg(common::repo_root().join("scripts/conformance/generate.py"))
        .arg(dir)
        .status()
        .expect("the conformance generator runs");
    assert!(status.success(), "scripts/conformance/generate.py failed");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    index
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["case"].as_str().unwrap().to_string(),
            op_type: c["op_type"].as_str().unwrap_or("?").to_string(),
            float: c["float"].as_bool().unwrap_or(false),
            all_float: c["all_float"].as_bool().unwrap_or(false),
            expanded: c["expanded"].as_bool().unwrap_or(false),
            skipped: c["skipped"].as_str().map(str::to_string),
        })
        .collect()
}

fn is_float(a: &NdArray) -> bool {
    matches!(a.data, ArrayData::F32(_) | ArrayData::F16(_) | ArrayData::F64(_))
}

/// An initializer holding `a`.
fn tensor_proto(name: &str, a: &NdArray) -> Option<TensorProto> {
    let (data_type, raw): (DataType, Vec<u8>) = match &a.data {
        ArrayData::F32(v) => (DataType::Float, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::F16(v) => (DataType::Float16, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::F64(v) => (DataType::Double, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::I32(v) => (DataType::Int32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::I64(v) => (DataType::Int64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ArrayData::Bool(v) => (DataType::Bool, v.iter().map(|&x| x as u8).collect()),
        ArrayData::U8(v) => (DataType::Uint8, v.clone()),
        ArrayData::I8(v) => (DataType::Int8, v.iter().map(|&x| x as u8).collect()),
    };
    Some(TensorProto {
        name: name.to_string(),
        dims: a.shape.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data: raw.into(),
        ..Default::default()
    })
}

/// How much of a case's inputs to turn into initializers holding the test's values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Freeze {
    /// Scalars only (bounds, ratios).
    Scalars,
    /// Scalars and integer tensors (shapes, axes, indices).
    Integers,
    /// Every input but the first (weights, biases, scales: parameters Core ML wants constant).
    AllButFirst,
}

/// Core ML needs static parameters, so some graph inputs become initializers holding the
/// test's values. Returns the rewritten model and the inputs left to feed.
fn freeze_parameters(case_dir: &Path, data: &[(String, NdArray)], level: Freeze) -> (PathBuf, Vec<(String, NdArray)>) {
    let bytes = std::fs::read(case_dir.join("model.onnx")).unwrap();
    let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let mut inputs = Vec::new();
    let fed = data
        .iter()
        .filter_map(|(key, array)| Some((key.strip_prefix("input:")?, array)));
    for (position, (name, array)) in fed.enumerate() {
        let freeze = match level {
            Freeze::Scalars => array.shape.is_empty(),
            Freeze::Integers => array.shape.is_empty() || !is_float(array),
            Freeze::AllButFirst => position > 0 || array.shape.is_empty(),
        };
        match tensor_proto(name, array) {
            Some(t) if freeze => graph.initializer.push(t),
            _ => inputs.push((name.to_string(), array.clone())),
        }
    }
    let path = case_dir.join(match level {
        Freeze::Scalars => "frozen.onnx",
        Freeze::Integers => "frozen_integers.onnx",
        Freeze::AllButFirst => "frozen_all.onnx",
    });
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    (path, inputs)
}

/// Compile with as few inputs frozen as possible, freezing more on failure; a model left
/// without inputs needs iOS 18.
fn compile_case(dir: &Path, data: &[(String, NdArray)], pkg: &Path) -> Result<Vec<(String, NdArray)>, String> {
    // The reason reported is the last attempt's: it got furthest.
    let mut last_error = String::new();
    for level in [Freeze::Scalars, Freeze::Integers, Freeze::AllButFirst] {
        let (model, mut inputs) = freeze_parameters(dir, data, level);
        // edgec compiles an empty input as a constant: the package does not take it.
        inputs.retain(|(_, array)| !array.shape.contains(&0));
        let deployment_target = if inputs.is_empty() {
            DeploymentTarget::Ios18
        } else {
            DeploymentTarget::Ios16
        };
        let options = edgec::CompileOptions {
            precision: edgec::Precision::Fp32,
            deployment_target,
            ..Default::default()
        };
        match edgec::compile(&model, pkg, &options) {
            Ok(_) => return Ok(inputs),
            Err(e) => {
                let message = e.to_string();
                let reason = message
                    .split_once(": ")
                    .map_or(message.as_str(), |(_, r)| r)
                    .to_string();
                last_error = reason;
            }
        }
    }
    Err(last_error)
}

fn compare(name: &str, actual: &NdArray, expected: &NdArray) -> Result<(), String> {
    // Core ML publishes scalar outputs as shape [1] (see legalize_io).
    let scalar_as_vector = expected.shape.is_empty() && actual.shape == [1];
    if actual.shape != expected.shape && !scalar_as_vector {
        return Err(format!(
            "output {name}: shape {:?}, expected {:?}",
            actual.shape, expected.shape
        ));
    }
    let (a, e) = (actual.data.to_f64_vec(), expected.data.to_f64_vec());
    let mut worst = (0.0f64, 0usize);
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        let same_special = (x.is_nan() && y.is_nan()) || x == y;
        let excess = (x - y).abs() - (ATOL + RTOL * y.abs());
        if !same_special && (excess > worst.0 || excess.is_nan()) {
            worst = (if excess.is_nan() { f64::INFINITY } else { excess }, i);
        }
    }
    if worst.0 > 0.0 {
        let i = worst.1;
        return Err(format!("output {name}: element {i} is {} , expected {}", a[i], e[i]));
    }
    Ok(())
}

/// Compile, run and compare one case; the package stays in `work` for the coremltools check.
fn run_case(root: &Path, work: &Path, case: &Case) -> (Outcome, Option<PathBuf>) {
    if let Some(why) = &case.skipped {
        return (Outcome::Skipped(why.clone()), None);
    }
    let dir = root.join(&case.name);
    let data = match read_npz(&dir.join("data.npz")) {
        Ok(d) => d,
        // Types such as int16 or uint32, which neither edgec nor Core ML has.
        Err(e) => {
            let message = e.to_string();
            let dtype = message
                .find("unsupported dtype")
                .map_or(message.as_str(), |i| &message[i..]);
            return (
                Outcome::Unsupported(dtype.split(" (supported").next().unwrap_or("").to_string()),
                None,
            );
        }
    };
    let pkg = work.join(format!("{}.mlpackage", case.name));
    let inputs = match compile_case(&dir, &data, &pkg) {
        Ok(inputs) => inputs,
        Err(reason) => return (Outcome::Unsupported(reason), None),
    };
    let outputs = match run_package(&pkg, &inputs, &InterpOptions::default()) {
        Ok(o) => o,
        Err(e) => return (Outcome::Fail(format!("interpreter: {e}")), Some(pkg)),
    };
    let expected: Vec<(&str, &NdArray)> = data
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("output:").map(|n| (n, v)))
        .collect();
    if expected.len() != outputs.len() {
        return (
            Outcome::Fail(format!("{} outputs, expected {}", outputs.len(), expected.len())),
            Some(pkg),
        );
    }
    for ((name, want), (_, got)) in expected.iter().zip(&outputs) {
        if let Err(e) = compare(name, got, want) {
            return (Outcome::Fail(e), Some(pkg));
        }
    }
    (Outcome::Pass, Some(pkg))
}

/// Run coremltools over every package; a rejection turns the case into a failure.
fn validate(results: &mut [(String, Outcome, Option<PathBuf>)]) {
    let packages: Vec<&PathBuf> = results.iter().filter_map(|(_, _, p)| p.as_ref()).collect();
    if packages.is_empty() {
        return;
    }
    let out = Command::new(common::python())
        .arg(common::repo_root().join("scripts/validate_package.py"))
        .args(&packages)
        .output()
        .expect("the validator runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| l.starts_with("FAIL ")) {
        for (_, outcome, pkg) in results.iter_mut() {
            if let Some(p) = pkg {
                if line.starts_with(&format!("FAIL {}: ", p.display())) {
                    let why = line.split_once(": ").map_or("", |(_, w)| w);
                    *outcome = Outcome::Fail(format!("coremltools: {why}"));
                }
            }
        }
    }
}

fn one_line(s: &str) -> String {
    let s = s.lines().next().unwrap_or("").replace('|', "\\|");
    if s.len() > 160 {
        format!("{}…", &s[..s.char_indices().nth(157).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

fn write_doc(cases: &[Case], results: &BTreeMap<String, Outcome>) -> String {
    let supported: Vec<&str> = edgec::onnx::supported_op_types();
    let mut by_op: BTreeMap<&str, Vec<(&Case, &Outcome)>> = BTreeMap::new();
    for c in cases {
        by_op
            .entry(c.op_type.as_str())
            .or_default()
            .push((c, &results[&c.name]));
    }
    let all_pass = |v: &Vec<(&Case, &Outcome)>, float: fn(&Case) -> bool| {
        let float: Vec<_> = v.iter().filter(|(c, _)| float(c) && !c.expanded).collect();
        !float.is_empty() && float.iter().all(|(_, o)| **o == Outcome::Pass)
    };
    let all_float_pass = |v: &Vec<(&Case, &Outcome)>| all_pass(v, |c| c.float);
    let passing_ops: Vec<&str> = by_op
        .iter()
        .filter(|(_, v)| all_float_pass(v))
        .map(|(k, _)| *k)
        .collect();
    let passing_all_float = by_op.values().filter(|v| all_pass(v, |c| c.all_float)).count();
    let count = |kind: &str| results.values().filter(|o| o.kind() == kind).count();

    let mut doc = String::new();
    doc.push_str("# ONNX conformance\n\n");
    doc.push_str("Generated by `EDGEC_BLESS=1 cargo test --test conformance`; do not edit by hand.\n\n");
    let _ = writeln!(
        doc,
        "**{} ONNX op types pass all their float node tests** ({}). edgec imports {} op types. \
         Counting only the cases whose every input is a float tensor too, {} op types pass all of theirs.\n",
        passing_ops.len(),
        passing_ops.join(", "),
        supported.len(),
        passing_all_float
    );
    let _ = writeln!(
        doc,
        "Cases: {} from the pinned `onnx` package's backend node tests: {} pass, {} fail, {} unsupported, {} skipped.\n",
        results.len(),
        count("pass"),
        count("fail"),
        count("unsupported"),
        count("skipped")
    );
    doc.push_str(
        "How each case runs: scalar graph inputs (clip bounds, ratios) are frozen into initializers with the \
         test's values, since Core ML needs them static; if the model then does not compile, integer inputs \
         (shapes, axes) are frozen too, and then every input but the first (weights, scales: parameters Core ML \
         takes only as constants). Empty inputs are not fed: edgec compiles them as constants. The model is compiled in fp32 for the default target (iOS16), or iOS18 \
         when no input is left (Core ML accepts input-less models only from iOS 18); coremltools 9 loads the \
         package (milproto loader, full type inference); edgec's ML Program interpreter runs it; outputs must \
         match within |a − e| ≤ 1e-5 + 1e-3·|e|. *Float* cases compute float outputs from float data: every output \
         is a float tensor and so is at least one input (integer and bool inputs are then parameters: axes, \
         shapes, indices, conditions); skipped cases are not float cases. The headline counts them without the `_expanded` cases, which test an op's function body \
         (other ops, listed under their own names here) rather than the op. Skipped cases use types numpy cannot hold or that are not tensors (sequences, optionals, strings).\n\n",
    );
    doc.push_str("## Ops edgec imports\n\n| op | cases | float | pass | fail | unsupported | all float pass |\n|---|---|---|---|---|---|---|\n");
    for op in &supported {
        let v = by_op.get(op).cloned().unwrap_or_default();
        let n = |kind: &str| v.iter().filter(|(_, o)| o.kind() == kind).count();
        let _ = writeln!(
            doc,
            "| {op} | {} | {} | {} | {} | {} | {} |",
            v.len(),
            v.iter().filter(|(c, _)| c.float).count(),
            n("pass"),
            n("fail"),
            n("unsupported"),
            if all_float_pass(&v) {
                "yes"
            } else if v.is_empty() {
                "no cases"
            } else {
                "no"
            }
        );
    }
    doc.push_str("\n## Why cases of those ops do not pass\n\n| case | op | outcome | reason |\n|---|---|---|---|\n");
    for op in &supported {
        for (c, o) in by_op.get(op).cloned().unwrap_or_default() {
            if !matches!(o, Outcome::Pass) {
                let _ = writeln!(doc, "| {} | {op} | {} | {} |", c.name, o.kind(), one_line(o.reason()));
            }
        }
    }
    doc.push_str("\n## Other op types in the suite (not imported yet)\n\n");
    let others: Vec<String> = by_op
        .iter()
        .filter(|(k, _)| !supported.contains(k))
        .map(|(k, v)| format!("{k} ({})", v.len()))
        .collect();
    doc.push_str(&others.join(", "));
    doc.push_str("\n\n");
    doc.push_str(LOWERING_NOTES);
    doc
}

/// The hand-kept section on ops built from several MIL ops, appended to the generated doc.
const LOWERING_NOTES: &str = include_str!("conformance/lowering.md");

#[test]
fn onnx_node_conformance() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases_dir, work) = (tmp.path().join("cases"), tmp.path().join("packages"));
    std::fs::create_dir_all(&work).unwrap();
    let mut cases = generate(&cases_dir);
    let only: Option<Vec<String>> = std::env::var("EDGEC_CONFORMANCE_OPS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(ops) = &only {
        cases.retain(|c| ops.contains(&c.op_type));
    }
    let mut results: Vec<(String, Outcome, Option<PathBuf>)> = cases
        .par_iter()
        .map(|c| {
            let (outcome, pkg) = run_case(&cases_dir, &work, c);
            (c.name.clone(), outcome, pkg)
        })
        .collect();
    validate(&mut results);
    let results: BTreeMap<String, Outcome> = results.into_iter().map(|(n, o, _)| (n, o)).collect();
    if only.is_some() {
        for c in &cases {
            let o = &results[&c.name];
            println!("{}\t{}\t{}\t{}", c.name, c.op_type, o.kind(), one_line(o.reason()));
        }
        return;
    }

    let expected_path = common::repo_root().join("tests/conformance/expected.tsv");
    let mut table = String::from("# case\top_type\toutcome (refresh: EDGEC_BLESS=1 cargo test --test conformance)\n");
    for c in &cases {
        let _ = writeln!(table, "{}\t{}\t{}", c.name, c.op_type, results[&c.name].kind());
    }
    if std::env::var("EDGEC_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
        std::fs::write(&expected_path, &table).unwrap();
        std::fs::write(
            common::repo_root().join("docs/conformance.md"),
            write_doc(&cases, &results),
        )
        .unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    let recorded: BTreeMap<&str, &str> = expected
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.nth(1)?))
        })
        .collect();
    let mut changes = Vec::new();
    for c in &cases {
        let now = &results[&c.name];
        let before = recorded.get(c.name.as_str()).copied().unwrap_or("(new case)");
        if before != now.kind() {
            changes.push(format!(
                "{} ({}): {before} -> {} {}",
                c.name,
                c.op_type,
                now.kind(),
                one_line(now.reason())
            ));
        }
    }
    assert!(
        changes.is_empty(),
        "conformance changed ({} cases); if intended, refresh with EDGEC_BLESS=1 cargo test --test conformance:\n{}",
        changes.len(),
        changes.join("\n")
    );
}
