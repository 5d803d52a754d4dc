//! The evaluation loop: run a block's operations in order over an environment of named values.
//!
//! Each op is looked up in the registry ([`super::ops`]) and handed an [`OpCtx`] that resolves
//! its parameters by name. After each op the results are checked against the types the
//! program declares (a mismatch means the package contradicts MIL semantics, which is exactly
//! what this interpreter exists to catch), fp16 results are optionally rounded, and values
//! past their last use are dropped so peak memory stays near the live set.

use super::ops;
use super::tensor::{round_to_fp16, Buf, DType, OpResult, Tensor};
use super::value::{declared_type, decode};
use super::weights::WeightStore;
use super::InterpOptions;
use crate::proto::coreml::mil_spec::{argument::binding, Argument, Block, Operation};
use std::collections::HashMap;
use std::sync::Arc;

/// The most elements one value may be declared with (1 GiB of f32): a 7B LLM's logits over
/// 4096 positions ([1, 4096, 32000]) have 131 M. Results must match their declared types, so
/// checking the declarations before an op runs bounds what a package can make it allocate.
pub(crate) const MAX_VALUE_ELEMENTS: u64 = 1 << 28;

/// Named values visible to the ops of a block.
pub(crate) type Env = HashMap<String, Tensor>;

/// What an op implementation sees: its parameters, resolved, and its declared output types.
pub(crate) struct OpCtx<'a> {
    pub op: &'a Operation,
    env: &'a Env,
    weights: &'a WeightStore,
}

impl<'a> OpCtx<'a> {
    pub(crate) fn new(op: &'a Operation, env: &'a Env, weights: &'a WeightStore) -> Self {
        OpCtx { op, env, weights }
    }

    /// The argument bound to parameter `name`. iOS16/17 `constexpr_*` ops carry their
    /// parameters as attributes rather than inputs, so attributes are the fallback.
    fn argument(&self, name: &str) -> Option<&Argument> {
        self.op.inputs.get(name)
    }

    fn resolve(&self, b: &crate::proto::coreml::mil_spec::argument::Binding) -> OpResult<Tensor> {
        match &b.binding {
            Some(binding::Binding::Name(n)) => self
                .env
                .get(n)
                .cloned()
                .ok_or_else(|| format!("value {n:?} is not defined (or was used after its last use)")),
            // iOS18 constexpr ops bind literal data (immediates or blobs) inline.
            Some(binding::Binding::Value(v)) => decode(v, self.weights),
            None => Err("empty binding".into()),
        }
    }

    /// Parameter `name`, if given.
    pub(crate) fn opt(&self, name: &str) -> OpResult<Option<Tensor>> {
        match self.argument(name) {
            Some(arg) => match arg.arguments.as_slice() {
                [one] => self
                    .resolve(one)
                    .map(Some)
                    .map_err(|e| format!("parameter {name}: {e}")),
                [] => Ok(None),
                _ => Err(format!(
                    "parameter {name} binds {} values, expected one",
                    arg.arguments.len()
                )),
            },
            None if name != "name" => match self.op.attributes.get(name) {
                Some(v) => decode(v, self.weights)
                    .map(Some)
                    .map_err(|e| format!("attribute {name}: {e}")),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Check a shape an op computed from its parameters against output `index`'s declared type
    /// before allocating it (the result would be refused after anyway).
    pub(crate) fn expect_output_shape(&self, index: usize, shape: &[usize]) -> OpResult<()> {
        let decl = self
            .op
            .outputs
            .get(index)
            .map(|o| declared_type(o.r#type.as_ref()))
            .transpose()?;
        match decl {
            Some(decl) if !decl.matches_shape(shape) => Err(format!(
                "computes an output of shape {shape:?}, but the program declares {}",
                decl.describe()
            )),
            _ => Ok(()),
        }
    }

    /// Required parameter `name`.
    pub(crate) fn get(&self, name: &str) -> OpResult<Tensor> {
        self.opt(name)?
            .ok_or_else(|| format!("required parameter {name} is missing"))
    }

    /// A variadic parameter (e.g. `concat.values`): every bound value, in order.
    pub(crate) fn tuple(&self, name: &str) -> OpResult<Vec<Tensor>> {
        let arg = self
            .argument(name)
            .ok_or_else(|| format!("required parameter {name} is missing"))?;
        arg.arguments
            .iter()
            .map(|b| self.resolve(b).map_err(|e| format!("parameter {name}: {e}")))
            .collect()
    }

    /// A required float scalar parameter (fp16 or fp32).
    pub(crate) fn float(&self, name: &str) -> OpResult<f32> {
        let t = self.get(name)?;
        scalar(t.floats(), name)
    }

    /// A required string scalar parameter.
    pub(crate) fn string(&self, name: &str) -> OpResult<String> {
        let t = self.get(name)?;
        scalar(t.strings(), name)
    }

    /// An integer vector parameter, or `default` when absent.
    pub(crate) fn ints_or(&self, name: &str, default: impl FnOnce() -> Vec<i32>) -> OpResult<Vec<i32>> {
        match self.opt(name)? {
            Some(t) => Ok(t.ints().map_err(|e| format!("parameter {name}: {e}"))?.to_vec()),
            None => Ok(default()),
        }
    }

    /// An integer scalar parameter, or `default` when absent.
    pub(crate) fn int_or(&self, name: &str, default: i32) -> OpResult<i32> {
        match self.opt(name)? {
            Some(t) => scalar(t.ints(), name),
            None => Ok(default),
        }
    }

    pub(crate) fn bool_or(&self, name: &str, default: bool) -> OpResult<bool> {
        match self.opt(name)? {
            Some(t) => scalar(t.bool_values(), name),
            None => Ok(default),
        }
    }

    /// A float scalar parameter (fp16 or fp32), or `default` when absent.
    pub(crate) fn float_or(&self, name: &str, default: f32) -> OpResult<f32> {
        match self.opt(name)? {
            Some(t) => scalar(t.floats(), name),
            None => Ok(default),
        }
    }

    pub(crate) fn string_or(&self, name: &str, default: &str) -> OpResult<String> {
        match self.opt(name)? {
            Some(t) => scalar(t.strings(), name),
            None => Ok(default.to_string()),
        }
    }
}

fn scalar<T: Clone>(values: OpResult<&[T]>, name: &str) -> OpResult<T> {
    match values.map_err(|e| format!("parameter {name}: {e}"))? {
        [v] => Ok(v.clone()),
        v => Err(format!("parameter {name} must be a scalar, got {} values", v.len())),
    }
}

/// For each op of `block`, the names whose last reader it is (block outputs are never freed),
/// so dead values can be dropped early.
pub(crate) fn dead_after(block: &Block) -> Vec<Vec<&str>> {
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (i, op) in block.operations.iter().enumerate() {
        for n in input_names(op) {
            last_use.insert(n, i);
        }
    }
    for out in &block.outputs {
        last_use.insert(out.as_str(), usize::MAX);
    }
    let mut dead_after: Vec<Vec<&str>> = vec![Vec::new(); block.operations.len()];
    for (&name, &i) in &last_use {
        if let Some(list) = dead_after.get_mut(i) {
            list.push(name);
        }
    }
    dead_after
}

/// The names an op reads: its bound parameters, then what its blocks (if it is control flow)
/// read from the enclosing scope.
pub(crate) fn input_names(op: &Operation) -> impl Iterator<Item = &str> {
    crate::coreml::scope::op_reads(op)
}

/// A short label for messages: the op's first output and its type.
pub(crate) fn op_label(op: &Operation) -> String {
    let out_name = op.outputs.first().map_or("<no output>", |o| o.name.as_str());
    format!("op {:?} ({})", out_name, op.r#type)
}

/// Run one op over `env`: its results, checked against the types the program declares (not
/// rounded; the caller decides about fp16 storage).
pub(crate) fn execute(op: &Operation, env: &Env, weights: &WeightStore) -> Result<Vec<Tensor>, String> {
    execute_with(op, env, weights, &InterpOptions::default())
}

/// [`execute`], with `options` for the ops of nested blocks (control flow).
pub(crate) fn execute_with(
    op: &Operation,
    env: &Env,
    weights: &WeightStore,
    options: &InterpOptions,
) -> Result<Vec<Tensor>, String> {
    let fail = |message: String| format!("{}: {message}", op_label(op));
    let declared = op
        .outputs
        .iter()
        .map(|o| declared_type(o.r#type.as_ref()).map_err(|e| fail(format!("output {:?}: {e}", o.name))))
        .collect::<Result<Vec<_>, _>>()?;
    for (decl, out) in declared.iter().zip(&op.outputs) {
        let known = decl
            .dims
            .iter()
            .flatten()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        if known.is_none_or(|count| count > MAX_VALUE_ELEMENTS) {
            return Err(fail(format!(
                "output {:?} is declared as {}, more than the interpreter's limit of {MAX_VALUE_ELEMENTS} elements per value",
                out.name,
                decl.describe()
            )));
        }
    }
    let results = if !op.blocks.is_empty() {
        super::control::run(op, env, weights, options).map_err(fail)?
    } else if op.r#type == "const" {
        let val = op
            .attributes
            .get("val")
            .ok_or_else(|| fail("const without a val attribute".into()))?;
        vec![decode(val, weights).map_err(fail)?]
    } else {
        let f = ops::lookup(&op.r#type).ok_or_else(|| {
            fail(format!(
                "the interpreter does not implement MIL op {:?} (see src/interp/ops/mod.rs)",
                op.r#type
            ))
        })?;
        let ctx = OpCtx { op, env, weights };
        f(&ctx).map_err(fail)?
    };
    if results.len() != op.outputs.len() {
        return Err(fail(format!(
            "computed {} outputs, the program declares {}",
            results.len(),
            op.outputs.len()
        )));
    }
    for ((t, decl), out) in results.iter().zip(&declared).zip(&op.outputs) {
        if t.dtype != decl.dtype || !decl.matches_shape(&t.shape) {
            return Err(fail(format!(
                "output {:?} computes as {}, but the program declares {}",
                out.name,
                t.type_string(),
                decl.describe()
            )));
        }
    }
    Ok(results)
}

/// Round a float tensor's values through IEEE half, copying a shared buffer only if needed.
pub(crate) fn round_tensor_to_fp16(t: &mut Tensor) {
    if let Buf::F(v) = &mut t.buf {
        // A buffer shared with another value (identity, reshape) is usually rounded already;
        // copy it only if it is not.
        if let Some(unique) = Arc::get_mut(v) {
            round_to_fp16(unique);
        } else if !v.iter().all(|&x| half::f16::from_f32(x).to_f32() == x || x.is_nan()) {
            round_to_fp16(Arc::make_mut(v).as_mut_slice());
        }
    }
}

/// Run `block` over `env` (which holds the function inputs); returns the block's outputs.
pub(crate) fn run_block(
    block: &Block,
    mut env: Env,
    weights: &WeightStore,
    options: &InterpOptions,
) -> Result<Vec<Tensor>, String> {
    let dead_after = dead_after(block);
    let profile = std::env::var_os(super::PROFILE_ENV).is_some();
    let mut times: HashMap<&str, (std::time::Duration, usize)> = HashMap::new();

    for (i, op) in block.operations.iter().enumerate() {
        let start = std::time::Instant::now();
        let results = execute_with(op, &env, weights, options)?;
        for (mut t, out) in results.into_iter().zip(&op.outputs) {
            if options.fp16_rounding && t.dtype == DType::Fp16 {
                round_tensor_to_fp16(&mut t);
            }
            env.insert(out.name.clone(), t);
        }
        for name in &dead_after[i] {
            env.remove(*name);
        }
        if profile {
            let e = times.entry(op.r#type.as_str()).or_default();
            e.0 += start.elapsed();
            e.1 += 1;
        }
    }
    if profile {
        let mut rows: Vec<_> = times.into_iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
        for (op, (d, n)) in rows {
            eprintln!("  {op:<24} {n:>5} ops {:>10.3} ms", d.as_secs_f64() * 1e3);
        }
    }
    block
        .outputs
        .iter()
        .map(|name| {
            env.get(name)
                .cloned()
                .ok_or_else(|| format!("block output {name:?} is never defined"))
        })
        .collect()
}

/// Run one op on given parameter tensors, for unit tests of op semantics.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::proto::coreml::mil_spec::argument::Binding;

    pub(crate) fn run_op(op_type: &str, params: Vec<(&str, Tensor)>) -> OpResult<Tensor> {
        run_op_tuples(op_type, params.into_iter().map(|(k, t)| (k, vec![t])).collect())
    }

    /// As [`run_op`], returning every output (e.g. `topk`'s values and indices).
    pub(crate) fn run_op_all(op_type: &str, params: Vec<(&str, Tensor)>) -> OpResult<Vec<Tensor>> {
        run_op_tuples_all(op_type, params.into_iter().map(|(k, t)| (k, vec![t])).collect())
    }

    /// As [`run_op`], with any number of values bound to each parameter (e.g. `concat.values`).
    pub(crate) fn run_op_tuples(op_type: &str, params: Vec<(&str, Vec<Tensor>)>) -> OpResult<Tensor> {
        run_op_tuples_all(op_type, params)?
            .into_iter()
            .next()
            .ok_or_else(|| "no output".to_string())
    }

    fn run_op_tuples_all(op_type: &str, params: Vec<(&str, Vec<Tensor>)>) -> OpResult<Vec<Tensor>> {
        let mut env = Env::new();
        let mut inputs = std::collections::BTreeMap::new();
        for (name, tensors) in params {
            let mut arguments = Vec::new();
            for (i, t) in tensors.into_iter().enumerate() {
                let value_name = format!("param_{name}_{i}");
                env.insert(value_name.clone(), t);
                arguments.push(Binding {
                    binding: Some(binding::Binding::Name(value_name)),
                });
            }
            inputs.insert(name.to_string(), Argument { arguments });
        }
        let op = Operation {
            r#type: op_type.into(),
            inputs,
            ..Default::default()
        };
        let weights = WeightStore::new(std::path::PathBuf::new());
        let ctx = OpCtx {
            op: &op,
            env: &env,
            weights: &weights,
        };
        let f = ops::lookup(op_type).ok_or("no such op")?;
        f(&ctx)
    }

    pub(crate) fn string(s: &str) -> Tensor {
        Tensor {
            dtype: DType::Str,
            shape: Vec::new(),
            buf: Buf::S(Arc::new(vec![s.to_string()])),
        }
    }

    pub(crate) fn floats(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::float(DType::Fp32, shape.to_vec(), v.to_vec())
    }

    pub(crate) fn ints(v: &[i32]) -> Tensor {
        Tensor::int(DType::Int32, vec![v.len()], v.to_vec())
    }

    pub(crate) fn bool_scalar(b: bool) -> Tensor {
        Tensor::bools(Vec::new(), vec![b])
    }
}
