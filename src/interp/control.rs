//! MIL control flow: `cond` runs one of its two blocks; `while_loop` runs its condition block,
//! then while that gives true its body block, over its loop variables. Blocks read the
//! enclosing scope by name, so the values such an op reads include what its blocks read from
//! outside (`coreml::scope::block_reads`), and a block runs over just those plus its own inputs.

use super::eval::{self, Env, OpCtx};
use super::tensor::{Buf, Tensor};
use super::weights::WeightStore;
use super::InterpOptions;
use crate::coreml::scope::block_reads;
use crate::proto::coreml::mil_spec::{Block, Operation};

/// The most iterations a `while_loop` may run before the interpreter calls it endless.
const MAX_ITERATIONS: usize = 1 << 20;

/// Run a control-flow op over `env`; its results (checked against its declared types by the
/// caller).
pub(crate) fn run(
    op: &Operation,
    env: &Env,
    weights: &WeightStore,
    options: &InterpOptions,
) -> Result<Vec<Tensor>, String> {
    let ctx = OpCtx::new(op, env, weights);
    match (op.r#type.as_str(), op.blocks.as_slice()) {
        ("cond", [then_block, else_block]) => {
            let pred = truth(&ctx.get("pred")?).map_err(|e| format!("pred: {e}"))?;
            let block = if pred { then_block } else { else_block };
            eval::run_block(block, scope(block, env, &[])?, weights, options)
        }
        ("while_loop", [cond_block, body_block]) => {
            let mut vars = ctx.tuple("loop_vars")?;
            for iteration in 0.. {
                let keep_going = eval::run_block(cond_block, scope(cond_block, env, &vars)?, weights, options)?;
                match keep_going.as_slice() {
                    [c] if truth(c).map_err(|e| format!("the condition block: {e}"))? => {}
                    [_] => break,
                    _ => return Err("the condition block must give one value".into()),
                }
                if iteration >= MAX_ITERATIONS {
                    return Err(format!("ran more than {MAX_ITERATIONS} iterations (an endless loop?)"));
                }
                vars = eval::run_block(body_block, scope(body_block, env, &vars)?, weights, options)?;
            }
            Ok(vars)
        }
        (other, blocks) => Err(format!(
            "{other} with {} blocks is not control flow the interpreter knows",
            blocks.len()
        )),
    }
}

/// The environment `block` runs in: what it reads of `env`, and `inputs` bound to its inputs.
fn scope(block: &Block, env: &Env, inputs: &[Tensor]) -> Result<Env, String> {
    if block.inputs.len() != inputs.len() {
        return Err(format!(
            "a block takes {} inputs, given {}",
            block.inputs.len(),
            inputs.len()
        ));
    }
    let mut scope: Env = block_reads(block)
        .into_iter()
        .filter_map(|name| env.get(name).map(|t| (name.to_string(), t.clone())))
        .collect();
    for (input, value) in block.inputs.iter().zip(inputs) {
        scope.insert(input.name.clone(), value.clone());
    }
    Ok(scope)
}

/// The one bool of a condition.
fn truth(t: &Tensor) -> Result<bool, String> {
    match &t.buf {
        Buf::B(v) if v.len() == 1 => Ok(v[0]),
        _ => Err(format!("a condition must be one bool, got {}", t.type_string())),
    }
}
