//! `edgec verify`: does the emitted package compute what the source ONNX model computes?
//!
//! The package is run by edgec's ML Program interpreter (from the files on disk), the ONNX model
//! by the reference runtime (tract, behind the `reference` feature), on the same deterministic
//! or user-given inputs, and every output is compared:
//! - fp32 packages pass when the largest absolute error is at most 1e-4 of the output's scale
//!   (its largest magnitude);
//! - fp16 packages run with fp16 rounding, as a device would, and pass when the cosine
//!   similarity is at least 0.9999.

use crate::coreml::inspect::read_package;
use crate::error::{Error, Result};
use crate::npy::{ArrayData, NdArray};
use crate::proto::coreml::{array_feature_type::ArrayDataType, feature_type};
use crate::Precision;
use std::collections::HashMap;
use std::path::Path;

/// fp32: largest |error| over the largest |reference|.
pub const FP32_MAX_RELATIVE_ERROR: f64 = 1e-4;
/// fp16: cosine similarity of the flattened outputs.
pub const FP16_MIN_COSINE: f64 = 0.9999;

/// How one output compares.
#[derive(Clone, Debug)]
pub struct OutputComparison {
    pub name: String,
    pub max_abs_error: f64,
    /// `max_abs_error` over the reference's largest magnitude.
    pub max_relative_error: f64,
    pub cosine: f64,
    pub pass: bool,
}

/// Compare one output; shapes must agree (a scalar may come back as `[1]`).
pub fn compare(name: &str, reference: &NdArray, actual: &NdArray, precision: Precision) -> OutputComparison {
    let same_shape = reference.shape == actual.shape || (reference.shape.is_empty() && actual.shape == [1]);
    let (r, a) = (reference.data.to_f64_vec(), actual.data.to_f64_vec());
    if !same_shape || r.len() != a.len() {
        return OutputComparison {
            name: name.to_string(),
            max_abs_error: f64::INFINITY,
            max_relative_error: f64::INFINITY,
            cosine: 0.0,
            pass: false,
        };
    }
    let max_abs_error = r.iter().zip(&a).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = r.iter().map(|x| x.abs()).fold(0.0, f64::max);
    let max_relative_error = if scale > 0.0 {
        max_abs_error / scale
    } else {
        max_abs_error
    };
    let dot: f64 = r.iter().zip(&a).map(|(x, y)| x * y).sum();
    let norms = r.iter().map(|x| x * x).sum::<f64>().sqrt() * a.iter().map(|y| y * y).sum::<f64>().sqrt();
    // Two all-zero outputs are identical.
    let cosine = if norms > 0.0 {
        dot / norms
    } else if max_abs_error == 0.0 {
        1.0
    } else {
        0.0
    };
    let pass = match precision {
        Precision::Fp32 => max_relative_error <= FP32_MAX_RELATIVE_ERROR,
        Precision::Fp16 => cosine >= FP16_MIN_COSINE,
    } && !max_abs_error.is_nan();
    OutputComparison {
        name: name.to_string(),
        max_abs_error,
        max_relative_error,
        cosine,
        pass,
    }
}

/// A small deterministic generator (SplitMix64), so inputs are the same on every machine.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// The precision a package was compiled with (from its metadata; fp32 if it does not say).
pub fn package_precision(package: &Path) -> Result<Precision> {
    let pkg = read_package(package)?;
    let precision = pkg
        .model
        .description
        .as_ref()
        .and_then(|d| d.metadata.as_ref())
        .and_then(|m| m.user_defined.get("com.edgec.precision").cloned());
    Ok(if precision.as_deref() == Some("fp16") {
        Precision::Fp16
    } else {
        Precision::Fp32
    })
}

/// Integers are generated in `0..GENERATED_INT_LIMIT` unless they index a smaller table.
pub const GENERATED_INT_LIMIT: usize = 10;

/// The most elements one generated input may have (1 GiB of fp32): a 2048x2048 RGB image has
/// 12.6 M, while a package's declared shapes are not to be trusted with more.
pub const MAX_GENERATED_INPUT_ELEMENTS: u64 = 1 << 28;

/// Inputs for every package input, keyed by ONNX name, from `seed`: standard normal floats;
/// integers in 0..10 (token ids and indices for small vocabularies), or below the size of the
/// smallest table an input indexes (a `token_type_ids` read by a 2-row embedding gets 0 and 1;
/// GatherND's index tuples stay below each indexed axis).
pub fn deterministic_inputs(package: &Path, seed: u64) -> Result<Vec<(String, NdArray)>> {
    let pkg = read_package(package)?;
    let bounds = match &pkg.model.r#type {
        Some(crate::proto::coreml::model::Type::MlProgram(program)) => index_bounds(program),
        _ => HashMap::new(),
    };
    let description = pkg.model.description.as_ref().ok_or_else(|| Error::Package {
        path: package.to_path_buf(),
        message: "the model has no description".into(),
    })?;
    let io_names: Vec<(String, String)> = description
        .metadata
        .as_ref()
        .and_then(|m| m.user_defined.get("com.edgec.io_names"))
        .and_then(|j| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(j).ok())
        .map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut rng = SplitMix(seed);
    let mut inputs = Vec::new();
    for f in &description.input {
        let Some(feature_type::Type::MultiArrayType(a)) = f.r#type.as_ref().and_then(|t| t.r#type.as_ref()) else {
            return Err(Error::Package {
                path: package.to_path_buf(),
                message: format!("input {:?} is not a multi-array", f.name),
            });
        };
        let shape: Vec<usize> = a
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::Package {
                path: package.to_path_buf(),
                message: format!("input {:?} has a negative dimension in its shape {:?}", f.name, a.shape),
            })?;
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&c| c as u64 <= MAX_GENERATED_INPUT_ELEMENTS)
            .ok_or_else(|| Error::Package {
                path: package.to_path_buf(),
                message: format!(
                    "input {:?} of shape {:?} has more than {MAX_GENERATED_INPUT_ELEMENTS} elements, too many to generate (give the inputs)",
                    f.name, a.shape
                ),
            })?;
        let data = match ArrayDataType::try_from(a.data_type) {
            Ok(ArrayDataType::Int32) => {
                let limits: Vec<usize> = match bounds.get(f.name.as_str()) {
                    // Per position along the last axis when it has as many; else the smallest.
                    Some(b) if b.len() == 1 || shape.last() == Some(&b.len()) => b.clone(),
                    Some(b) => vec![b.iter().copied().min().unwrap_or(0)],
                    None => vec![GENERATED_INT_LIMIT],
                };
                let limits: Vec<u64> = limits.iter().map(|&b| b.clamp(1, GENERATED_INT_LIMIT) as u64).collect();
                ArrayData::I32(
                    (0..count)
                        .map(|e| (rng.next() % limits[e % limits.len()]) as i32)
                        .collect(),
                )
            }
            _ => ArrayData::F32((0..count).map(|_| rng.normal() as f32).collect()),
        };
        let onnx_name = io_names
            .iter()
            .find(|(_, mil)| mil == &f.name)
            .map_or(f.name.clone(), |(onnx, _)| onnx.clone());
        inputs.push((onnx_name, NdArray { shape, data }));
    }
    Ok(inputs)
}

/// For each function input that indexes a table (constant or not: shapes are static), the
/// bounds its values must keep: one for every element, or one per position along its last axis.
/// The walk from each gather goes back through casts, reshapes, transposes and slices (the
/// table's size along the gathered axis), and through GatherND's flattening (`mul` by strides, `reduce_sum`, `add`), where
/// only edgec's negative-index guard `select(idx < 0, idx + dims, idx)` tells the sizes again:
/// its `dims` are the bounds. The smallest bound wins where tables share an input.
fn index_bounds(program: &crate::proto::coreml::mil_spec::Program) -> HashMap<String, Vec<usize>> {
    use crate::plan::program::ProgramView;
    let view = ProgramView::new(program);
    let mut bounds: HashMap<String, Vec<usize>> = HashMap::new();
    for op in &view.ops {
        // Scatters index their data as gathers index their table.
        let table_param = match op.r#type.as_str() {
            "gather" | "gather_along_axis" => "x",
            "scatter_along_axis" | "scatter_nd" => "data",
            _ => continue,
        };
        let (Some(table), Some(mut indices)) = (view.input(op, table_param), view.input(op, "indices")) else {
            continue;
        };
        let Some(shape) = view.types.get(table).map(|t| &t.shape) else {
            continue;
        };
        let first_bound = if op.r#type == "scatter_nd" {
            // Each index tuple (the last axis) names leading coordinates of the data.
            let depth = view
                .types
                .get(indices)
                .and_then(|t| t.shape.last().copied())
                .unwrap_or(0);
            match shape.get(..depth) {
                Some(dims) if depth > 0 => dims.to_vec(),
                _ => continue,
            }
        } else {
            let axis = view.ints(op, "axis").and_then(|a| a.first().copied()).unwrap_or(0);
            let axis = if axis < 0 { axis + shape.len() as i64 } else { axis };
            let Some(&size) = usize::try_from(axis).ok().and_then(|a| shape.get(a)) else {
                continue;
            };
            vec![size]
        };
        // None once the walk has passed arithmetic that no guard has bounded again.
        let mut bound = Some(first_bound);
        for _ in 0..16 {
            if view.function_inputs.contains(indices) {
                if let Some(new) = bound {
                    bounds
                        .entry(indices.to_string())
                        .and_modify(|old| *old = tighter(old, &new))
                        .or_insert(new);
                }
                break;
            }
            let Some(&producer) = view.producer.get(indices) else {
                break;
            };
            let producer = view.ops[producer];
            let constant = |param: &str| view.input(producer, param).is_some_and(|v| view.is_constant(v));
            let through = match producer.r#type.as_str() {
                "cast" | "reshape" | "expand_dims" | "squeeze" | "identity" => "x",
                // A subset or a permutation of the input's values: the bound holds for all of
                // them, but no longer position by position.
                "transpose" | "slice_by_index" | "slice_by_size" => {
                    bound = bound.map(|b| vec![b.iter().copied().min().unwrap_or(0)]);
                    "x"
                }
                "select" => {
                    let guard_sizes = view
                        .input(producer, "a")
                        .and_then(|a| view.producer.get(a))
                        .map(|&p| view.ops[p])
                        .filter(|add| add.r#type == "add")
                        .and_then(|add| view.ints(add, "y"))
                        .and_then(|dims| dims.iter().map(|&d| usize::try_from(d).ok()).collect());
                    if guard_sizes.is_some() {
                        bound = guard_sizes;
                    }
                    "b"
                }
                "reduce_sum" => {
                    bound = None;
                    "x"
                }
                "mul" | "add" if constant("y") => {
                    bound = None;
                    "x"
                }
                "mul" | "add" if constant("x") => {
                    bound = None;
                    "y"
                }
                _ => break,
            };
            match view.input(producer, through) {
                Some(next) => indices = next,
                None => break,
            }
        }
    }
    bounds
}

/// The elementwise smaller of two bounds of one input (one for all elements, or per position
/// along the last axis); bounds of other lengths fall back to the single smallest.
fn tighter(a: &[usize], b: &[usize]) -> Vec<usize> {
    match (a.len(), b.len()) {
        (x, y) if x == y => a.iter().zip(b).map(|(&p, &q)| p.min(q)).collect(),
        (1, _) => b.iter().map(|&q| q.min(a[0])).collect(),
        (_, 1) => a.iter().map(|&p| p.min(b[0])).collect(),
        _ => vec![a.iter().chain(b).copied().min().unwrap_or(0)],
    }
}

/// Run the package and the ONNX reference on `inputs` (ONNX names) and compare every output.
#[cfg(feature = "reference")]
pub fn verify(model: &Path, package: &Path, inputs: &[(String, NdArray)]) -> Result<Vec<OutputComparison>> {
    use crate::interp::{run_package, InterpOptions};
    let precision = package_precision(package)?;
    let onnx = crate::onnx::load(model)?;
    let reference = crate::reference::run_onnx(&onnx, inputs)?;
    let options = InterpOptions {
        fp16_rounding: precision == Precision::Fp16,
    };
    let actual = run_package(package, inputs, &options)?;
    if actual.len() != reference.len() {
        return Err(Error::Package {
            path: package.to_path_buf(),
            message: format!(
                "the package has {} outputs, the ONNX model {}",
                actual.len(),
                reference.len()
            ),
        });
    }
    Ok(reference
        .iter()
        .zip(&actual)
        .map(|((name, r), (_, a))| compare(name, r, a, precision))
        .collect())
}

/// Where an fp16 package first departs from its fp32 program.
#[derive(Clone, Debug)]
pub struct DivergencePoint {
    /// The MIL op (its output's name) and type.
    pub op: String,
    pub op_type: String,
    /// The ONNX node it comes from.
    pub node: String,
    pub kind: edgec_passes::precision::Divergence,
    /// What fp16 did there, with the fp32 and fp16 value ranges.
    pub detail: String,
    /// The flag that fixes it.
    pub suggestion: String,
}

impl std::fmt::Display for DivergencePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fp16 first departs from fp32 at MIL op {:?} ({}) from ONNX node {:?}: {}: {}\n  fix: {}",
            self.op,
            self.op_type,
            self.node,
            self.kind.name(),
            self.detail,
            self.suggestion
        )
    }
}

/// A metadata value of the package.
fn metadata(package: &Path, key: &str) -> Result<Option<String>> {
    let pkg = read_package(package)?;
    Ok(pkg
        .model
        .description
        .as_ref()
        .and_then(|d| d.metadata.as_ref())
        .and_then(|m| m.user_defined.get(key).cloned()))
}

/// Why checking `package` against `model` may not mean what the user thinks: the package was
/// compiled from another file (its recorded source SHA-256 differs), or with settings other
/// than those given on the command line (`given`: setting name and value as spelled, e.g.
/// `("precision", "fp32")`), which verify cannot apply to a package already written. Settings
/// the package does not record are reported as ignored.
pub fn package_mismatches(model: &Path, package: &Path, given: &[(&str, String)]) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    if let Some(recorded) = metadata(package, "com.edgec.source_sha256")?.filter(|h| !h.is_empty()) {
        let actual = crate::onnx::sha256_hex(&std::fs::read(model).map_err(|source| Error::Io {
            path: model.to_path_buf(),
            source,
        })?);
        if actual != recorded {
            let source = metadata(package, "com.edgec.source")?.unwrap_or_default();
            warnings.push(format!(
                "{} was compiled from another file ({source}, sha256 {}…), not {} (sha256 {}…): the comparison may not mean what you expect",
                package.display(),
                &recorded[..recorded.len().min(12)],
                model.display(),
                &actual[..12]
            ));
        }
    }
    for (setting, value) in given {
        let key = format!("com.edgec.{setting}");
        match metadata(package, &key)? {
            Some(recorded) if &recorded == value => {}
            Some(recorded) => warnings.push(format!(
                "--{} {value} is ignored: {} was compiled with {recorded}, and verify checks the package as it is",
                setting.replace('_', "-"),
                package.display()
            )),
            None => warnings.push(format!(
                "--{} is ignored: verify checks the package as it was compiled",
                setting.replace('_', "-")
            )),
        }
    }
    Ok(warnings)
}

/// The compile options that reproduce the fp16 `package` from `model`: its deployment target,
/// and the package's input shapes for every ONNX input with dynamic dims.
fn options_of(model: &Path, package: &Path) -> Result<crate::CompileOptions> {
    use crate::proto::onnx::{tensor_shape_proto::dimension, type_proto};
    let deployment_target = match metadata(package, "com.edgec.deployment_target")? {
        Some(t) => t.parse().map_err(Error::Usage)?,
        None => crate::DeploymentTarget::default(),
    };
    let onnx = crate::onnx::load(model)?;
    let package_inputs = deterministic_inputs(package, 0)?;
    let mut shapes = Vec::new();
    for input in onnx.proto.graph.iter().flat_map(|g| &g.input) {
        let dynamic = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().is_none_or(|s| {
                s.dim
                    .iter()
                    .any(|d| !matches!(d.value, Some(dimension::Value::DimValue(v)) if v > 0))
            }),
            _ => false,
        };
        if let Some((_, array)) = package_inputs
            .iter()
            .find(|(n, _)| n == &input.name)
            .filter(|_| dynamic)
        {
            shapes.push((input.name.clone(), array.shape.clone()));
        }
    }
    Ok(crate::CompileOptions {
        deployment_target,
        input_shapes: crate::onnx::InputShapes(shapes),
        ..Default::default()
    })
}

/// For an fp16 `package` of `model`: run the fp32 program it was made from beside an fp16
/// emulation with the package's own fp32 ops (`com.edgec.fp32_ops`), on `inputs`, and name the
/// first op where fp16 goes wrong. `None` when fp16 emulation shows no op departing.
pub fn locate_fp16_divergence(
    model: &Path,
    package: &Path,
    inputs: &[(String, NdArray)],
) -> Result<Option<DivergencePoint>> {
    let fp32_ops: std::collections::HashSet<String> = metadata(package, "com.edgec.fp32_ops")?
        .and_then(|j| serde_json::from_str::<Vec<serde_json::Value>>(&j).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|o| o.get("op").and_then(|v| v.as_str()).map(str::to_string))
        .collect();
    let options = options_of(model, package)?;
    let probe = crate::driver::compile_probe(model, &options)?;
    let trace = crate::interp::emulate::trace_fp16(&probe.reference, &probe.fp16, inputs, &|op| fp32_ops.contains(op))?;
    let Some(origin) = crate::mixed_precision::origin(&trace) else {
        return Ok(None);
    };
    let (kind, detail) = crate::mixed_precision::describe(origin);
    Ok(Some(DivergencePoint {
        op: origin.op.clone(),
        op_type: origin.op_type.clone(),
        node: probe.origins.get(&origin.op).cloned().unwrap_or_default(),
        kind,
        detail,
        suggestion: "compile with --precision auto --calibration INPUTS.npz (these inputs) to keep the ops fp16 \
                     breaks in fp32, or --precision fp32"
            .into(),
    }))
}
