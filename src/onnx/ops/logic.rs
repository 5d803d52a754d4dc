//! Comparisons, boolean connectives and Where: Equal, Less, LessOrEqual, Greater,
//! GreaterOrEqual, Not, And, Or, Xor, Where.
//!
//! MIL's comparisons take numeric operands only, so bool operands are compared as int32.

use super::{Importer, NodeCx};
use edgec_passes::ir::{DType, ValueId};
use edgec_passes::op::{broadcast_shapes, CompareOp, LogicalOp, Op};

pub const OPS: &[(&str, Importer)] = &[
    ("Equal", equal),
    ("Less", less),
    ("LessOrEqual", less_equal),
    ("Greater", greater),
    ("GreaterOrEqual", greater_equal),
    ("Not", not),
    ("And", and),
    ("Or", or),
    ("Xor", xor),
    ("Where", where_),
];

fn compare(cx: &mut NodeCx, op: CompareOp) -> Result<Vec<ValueId>, String> {
    let mut a = cx.required_input(0)?;
    let mut b = cx.required_input(1)?;
    if cx.ty(a).dtype == DType::Bool {
        a = cx.add_step(Op::Cast { to: DType::I32 }, vec![a], "a_int")?;
    }
    if cx.ty(b).dtype == DType::Bool {
        b = cx.add_step(Op::Cast { to: DType::I32 }, vec![b], "b_int")?;
    }
    cx.add(Op::Compare(op), vec![a, b])
}

fn equal(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    compare(cx, CompareOp::Equal)
}

fn less(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    compare(cx, CompareOp::Less)
}

fn less_equal(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    compare(cx, CompareOp::LessEqual)
}

fn greater(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    compare(cx, CompareOp::Greater)
}

fn greater_equal(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    compare(cx, CompareOp::GreaterEqual)
}

fn not(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let x = cx.required_input(0)?;
    cx.add(Op::Not, vec![x])
}

fn logical(cx: &mut NodeCx, op: LogicalOp) -> Result<Vec<ValueId>, String> {
    let a = cx.required_input(0)?;
    let b = cx.required_input(1)?;
    cx.add(Op::Logical(op), vec![a, b])
}

fn and(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    logical(cx, LogicalOp::And)
}

fn or(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    logical(cx, LogicalOp::Or)
}

fn xor(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    logical(cx, LogicalOp::Xor)
}

/// Where → `select`. MIL types the result as `a` and `b` broadcast, so when only the condition
/// carries the full shape, `a` is broadcast to it first (a constant `a` folds).
fn where_(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let cond = cx.required_input(0)?;
    let mut a = cx.required_input(1)?;
    let b = cx.required_input(2)?;
    let operands = broadcast_shapes(&cx.ty(a).shape, &cx.ty(b).shape).map_err(|e| e.0)?;
    let full = broadcast_shapes(&cx.ty(cond).shape, &operands).map_err(|e| e.0)?;
    if full != operands {
        a = super::shape::broadcast_to(cx, a, &full, "a_full")?;
    }
    cx.add(Op::Select, vec![cond, a, b])
}
