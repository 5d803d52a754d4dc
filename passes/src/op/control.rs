//! Control flow decided at run time: [`IfAttrs`] (MIL `cond`) and [`WhileAttrs`] (MIL
//! `while_loop`). Each holds its bodies as [`Region`]s: graphs of their own.
//!
//! Regions are closed. A body reads nothing of the enclosing graph but its own inputs, which
//! the op passes in as operands (MIL's blocks instead capture outer values by name; the back
//! end turns these inputs back into captures). So a region is an ordinary [`Graph`]: every pass
//! runs on it as on the model's graph ([`crate::pass::apply`]), the verifier checks it alone,
//! and the op's type inference is just its regions' interface.

use super::InferError;
use crate::ir::{DType, Graph, TensorType};
use std::fmt;

/// A body: a graph whose inputs are what its op passes in and whose outputs are what it gives.
#[derive(Clone, Debug)]
pub struct Region(pub Box<Graph>);

/// Two regions are the same only if they are one region: structural equality of whole graphs
/// is never what a pass comparing ops (common subexpressions) means.
impl PartialEq for Region {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Region {
    pub fn new(graph: Graph) -> Self {
        Region(Box::new(graph))
    }

    /// The types of the region's inputs, in order.
    pub fn input_types(&self) -> Vec<&TensorType> {
        self.0.inputs.iter().map(|&v| self.0.ty(v)).collect()
    }

    /// The types of the region's outputs, in order.
    pub fn output_types(&self) -> Vec<&TensorType> {
        self.0.outputs.iter().map(|o| self.0.ty(o.value)).collect()
    }
}

/// `if cond { then } else { else }`; operands: the condition (a bool scalar), then the values
/// both branches take as inputs (the same list for both). Results: the taken branch's outputs,
/// which have one type in both branches.
#[derive(Clone, Debug, PartialEq)]
pub struct IfAttrs {
    pub then_branch: Region,
    pub else_branch: Region,
}

/// `while cond(vars) { vars = body(vars) }`, the condition tested before each iteration
/// (MIL's semantics). Operands: the `carried` loop variables' initial values, then the values
/// both regions take after the loop variables. `cond` maps (variables, extras) to one bool
/// scalar; `body` maps them to the next variables, of the same types. Results: the variables
/// after the last iteration.
#[derive(Clone, Debug, PartialEq)]
pub struct WhileAttrs {
    pub cond: Region,
    pub body: Region,
    pub carried: usize,
}

fn bool_scalar(ty: &TensorType) -> bool {
    ty.dtype == DType::Bool && ty.rank() == 0
}

/// That `region` takes exactly `operands` (its inputs' types, in order).
fn check_inputs(what: &str, region: &Region, operands: &[&TensorType]) -> Result<(), InferError> {
    let inputs = region.input_types();
    if inputs.len() != operands.len() {
        infer_bail!("{what} takes {} inputs, the op passes {}", inputs.len(), operands.len());
    }
    if let Some((k, (a, b))) = inputs.iter().zip(operands).enumerate().find(|(_, (a, b))| a != b) {
        infer_bail!("{what} input {k} is typed {a}, the op passes {b}");
    }
    Ok(())
}

impl IfAttrs {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
        let Some((cond, passed)) = inputs.split_first() else {
            infer_bail!("if needs a condition");
        };
        if !bool_scalar(cond) {
            infer_bail!("if needs a bool scalar condition, got {cond}");
        }
        check_inputs("the then branch", &self.then_branch, passed)?;
        check_inputs("the else branch", &self.else_branch, passed)?;
        let (then_out, else_out) = (self.then_branch.output_types(), self.else_branch.output_types());
        if then_out.len() != else_out.len() {
            infer_bail!("the branches give {} and {} outputs", then_out.len(), else_out.len());
        }
        if let Some((k, (a, b))) = then_out.iter().zip(&else_out).enumerate().find(|(_, (a, b))| a != b) {
            infer_bail!("output {k} is {a} in the then branch but {b} in the else branch");
        }
        Ok(then_out.into_iter().cloned().collect())
    }
}

impl WhileAttrs {
    pub fn infer(&self, inputs: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
        if inputs.len() < self.carried || self.carried == 0 {
            infer_bail!(
                "while_loop carries {} variables, given {} operands",
                self.carried,
                inputs.len()
            );
        }
        check_inputs("the loop condition", &self.cond, inputs)?;
        check_inputs("the loop body", &self.body, inputs)?;
        match self.cond.output_types()[..] {
            [ty] if bool_scalar(ty) => {}
            ref outs => infer_bail!(
                "the loop condition must give one bool scalar, it gives {}",
                outs.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
        let vars = &inputs[..self.carried];
        let next = self.body.output_types();
        if next.len() != vars.len() {
            infer_bail!(
                "the loop body gives {} values for {} loop variables",
                next.len(),
                vars.len()
            );
        }
        if let Some((k, (a, b))) = vars.iter().zip(&next).enumerate().find(|(_, (a, b))| a != b) {
            infer_bail!("loop variable {k} is {a} on entry but the body gives {b}");
        }
        Ok(vars.iter().map(|&t| t.clone()).collect())
    }
}

impl fmt::Display for WhileAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " carried={}", self.carried)
    }
}
