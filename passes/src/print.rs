//! The stable text form of a [`Graph`], read by reviewers in golden-test diffs.
//!
//! Values are renumbered in order of appearance (inputs, then nodes in order, with each constant
//! numbered where it is first used), so adding or removing a node only changes nearby lines.
//! Constants print their type, first values and an FNV-1a hash of their bytes, so a change to
//! folded weights shows up in a diff without dumping megabytes.

use crate::ir::{DType, Graph, Tensor, ValueDef, ValueId};
use std::collections::HashMap;
use std::fmt::Write;

pub fn print_graph(graph: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph {:?} {{", graph.name);
    print_body(graph, "  ", &mut out);
    out.push_str("}\n");
    out
}

/// `graph`'s lines at `indent`; the bodies of control-flow ops follow their op, one level
/// deeper, each numbering its values afresh (a body reads only its own inputs).
fn print_body(graph: &Graph, indent: &str, out: &mut String) {
    let mut numbers: HashMap<ValueId, usize> = HashMap::new();
    let number = |v: ValueId, numbers: &mut HashMap<ValueId, usize>| -> (usize, bool) {
        let next = numbers.len();
        match numbers.entry(v) {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => (*e.insert(next), true),
        }
    };
    for &input in &graph.inputs {
        let (n, _) = number(input, &mut numbers);
        let v = graph.value(input);
        let _ = writeln!(out, "{indent}input %{n} {:?}: {}", v.name, v.ty);
    }
    for &node_id in &graph.order {
        let node = graph.node(node_id);
        for &input in &node.inputs {
            if let ValueDef::Const(t) = &graph.value(input).def {
                let (n, fresh) = number(input, &mut numbers);
                if fresh {
                    let _ = writeln!(
                        out,
                        "{indent}const %{n} {:?}: {} = {}",
                        graph.value(input).name,
                        t.ty,
                        summarize(t)
                    );
                }
            }
        }
        let args: Vec<String> = node
            .inputs
            .iter()
            .map(|v| format!("%{}", numbers.get(v).copied().unwrap_or(usize::MAX)))
            .collect();
        let results: Vec<String> = node
            .outputs
            .iter()
            .map(|&o| {
                let (n, _) = number(o, &mut numbers);
                format!("%{n}: {}", graph.ty(o))
            })
            .collect();
        let origin = if node.origin.is_empty() {
            String::new()
        } else {
            format!("  # {:?}", node.origin)
        };
        let (op, attrs) = (node.op.name(), node.op.attributes());
        let pin = match &node.keep_fp32 {
            Some(reason) => format!(" [fp32: {reason}]"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{indent}{} = {op}({}){attrs}{pin}{origin}",
            results.join(", "),
            args.join(", ")
        );
        let region_names: &[&str] = match node.op {
            crate::op::Op::If(_) => &["then", "else"],
            _ => &["cond", "body"],
        };
        for (region, name) in node.op.regions().into_iter().zip(region_names) {
            let _ = writeln!(out, "{indent}  {name} {{");
            print_body(region, &format!("{indent}    "), out);
            let _ = writeln!(out, "{indent}  }}");
        }
    }
    for o in &graph.outputs {
        let n = match numbers.get(&o.value) {
            Some(n) => format!("%{n}"),
            None => match &graph.value(o.value).def {
                ValueDef::Const(t) => format!("const {} = {}", t.ty, summarize(t)),
                _ => "%?".to_string(),
            },
        };
        let _ = writeln!(out, "{indent}output {:?} = {n}", o.name);
    }
    for decision in &graph.precision_log {
        let _ = writeln!(out, "{indent}# precision: {decision}");
    }
}

/// First few elements plus a content hash.
pub fn summarize(t: &Tensor) -> String {
    const SHOWN: usize = 4;
    let count = t.ty.num_elements();
    let head: Vec<String> = if t.ty.dtype.is_float() {
        let bytes = SHOWN.min(count) * t.ty.dtype.size_in_bytes();
        let head = Tensor {
            ty: crate::ir::TensorType::new(t.ty.dtype, vec![SHOWN.min(count)]),
            data: t.data.slice(..bytes),
        };
        head.to_f32_vec().iter().map(|v| format!("{v:.6}")).collect()
    } else if t.ty.dtype == DType::Bool {
        t.data.iter().take(SHOWN).map(|&b| (b != 0).to_string()).collect()
    } else {
        t.to_i64_vec().iter().take(SHOWN).map(|v| v.to_string()).collect()
    };
    let more = if count > SHOWN { ", ..." } else { "" };
    if count <= SHOWN {
        format!("[{}]", head.join(", "))
    } else {
        format!("[{}{more}] fnv={:016x}", head.join(", "), fnv1a(&t.data))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
