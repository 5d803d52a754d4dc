//! The caps edgec puts on what an ONNX file may declare, so that a corrupt or hostile file is
//! refused with an error naming the file and the node or tensor, instead of making edgec
//! allocate without bound or recurse without end.
//!
//! Each cap is far above what real models need: the largest models of the corpus (gpt2_medium,
//! bert_large) and a 7B-parameter LLM (a 32000×4096 embedding, 11008×4096 MLP weights, 10+ GB
//! of external data) pass with room to spare. Declared sizes are never trusted for allocation:
//! a tensor's data must be present in the file (or its external data file) before it is read,
//! so allocation follows the bytes given, and computed constants are capped separately
//! ([`MAX_COMPUTED_CONSTANT_BYTES`]).
//!
//! [`check_model`] walks a decoded model once, before import; the shape caps are also applied
//! to every shape import computes ([`check_shape`]).

use crate::error::{Error, Result};
use crate::proto::onnx::{
    attribute_proto::AttributeType, tensor_shape_proto::dimension, type_proto, AttributeProto, GraphProto, ModelProto,
    NodeProto, TensorProto, ValueInfoProto,
};
use std::path::Path;

/// One cap: its value, what it counts and why it is set where it is.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: u64,
    /// What is counted, as the error says it ("rank", "elements", ...).
    pub what: &'static str,
    pub reason: &'static str,
}

impl Limit {
    /// `Ok` when `actual` is within the cap, else the message for the error.
    pub fn check(&self, actual: u64) -> std::result::Result<(), String> {
        if actual <= self.max {
            Ok(())
        } else {
            Err(format!(
                "{} {actual} is more than edgec's limit of {} ({})",
                self.what, self.max, self.reason
            ))
        }
    }
}

/// Dimensions of one tensor.
pub const MAX_RANK: Limit = Limit {
    max: 16,
    what: "rank",
    reason: "Core ML runs tensors of rank 5 at most and real models stay within 6",
};

/// Size of one dimension.
pub const MAX_DIM: Limit = Limit {
    max: i32::MAX as u64,
    what: "dimension",
    reason: "Core ML indexes tensors in int32",
};

/// Elements of one tensor (declared, inferred or given with --input-shape).
pub const MAX_ELEMENTS: Limit = Limit {
    max: 1 << 32,
    what: "element count",
    reason: "4x the largest weight of a 70B-parameter LLM (a 128256x8192 embedding)",
};

/// Nodes of one graph.
pub const MAX_NODES: Limit = Limit {
    max: 1 << 18,
    what: "node count",
    reason: "over 10x an unrolled 80-layer transformer export",
};

/// Initializers of one graph.
pub const MAX_INITIALIZERS: Limit = Limit {
    max: 1 << 18,
    what: "initializer count",
    reason: "over 10x an unrolled 80-layer transformer export",
};

/// Bytes of one name (node, value, initializer, attribute, domain, dim_param).
pub const MAX_NAME_BYTES: Limit = Limit {
    max: 4096,
    what: "name length in bytes",
    reason: "exporters' longest names are a few hundred bytes; names are copied into every message and the package",
};

/// Bytes of one string: string attributes, doc strings, metadata values.
pub const MAX_STRING_BYTES: Limit = Limit {
    max: 1 << 20,
    what: "string length in bytes",
    reason: "exporters' doc strings (stack traces, licences) are a few KB",
};

/// Elements of one list attribute (`ints`, `floats`, `strings`, `tensors`).
pub const MAX_ATTRIBUTE_ELEMENTS: Limit = Limit {
    max: 1 << 20,
    what: "attribute list length",
    reason: "list attributes hold axes, pads and small tables; large data belongs in tensors",
};

/// Graphs nested in graphs (the bodies of If, Loop, Scan).
pub const MAX_SUBGRAPH_DEPTH: Limit = Limit {
    max: 16,
    what: "subgraph nesting depth",
    reason: "exported control flow nests a few levels; the walk over a model must stay bounded",
};

/// Bytes of external data one tensor may take. Offsets are not capped (only checked against
/// the file's length), so one data file can hold a model of any size.
pub const MAX_EXTERNAL_TENSOR_BYTES: Limit = Limit {
    max: 1 << 34,
    what: "external data length in bytes",
    reason: "4x the largest fp32 weight of a 70B-parameter LLM",
};

/// Bytes of one constant edgec computes at compile time (ConstantOfShape, Range, folding).
/// Unlike initializers, whose bytes must be present in the file, these are allocated from a
/// few declared numbers, so they have their own cap.
pub const MAX_COMPUTED_CONSTANT_BYTES: Limit = Limit {
    max: 1 << 30,
    what: "computed constant size in bytes",
    reason: "a 16384x16384 fp32 attention mask is 1 GiB; a larger constant is a mistake or an attack",
};

/// The bytes all constants computed for one model may take together: one
/// [`MAX_COMPUTED_CONSTANT_BYTES`], plus this many times the bytes of the model's initializers
/// (folding a Transpose or a Cast of every weight, as some exporters' graphs need, stays well
/// inside). Past it, foldable nodes stay ops and ConstantOfShape/Range are errors.
pub const COMPUTED_BYTES_PER_INITIALIZER_BYTE: u64 = 4;

/// The computed-constant budget of a model whose initializers hold `initializer_bytes`.
pub fn computed_constant_budget(initializer_bytes: u64) -> u64 {
    MAX_COMPUTED_CONSTANT_BYTES
        .max
        .saturating_add(initializer_bytes.saturating_mul(COMPUTED_BYTES_PER_INITIALIZER_BYTE))
}

/// Every limit, for documentation and tests.
pub const ALL: [(&str, Limit); 11] = [
    ("MAX_RANK", MAX_RANK),
    ("MAX_DIM", MAX_DIM),
    ("MAX_ELEMENTS", MAX_ELEMENTS),
    ("MAX_NODES", MAX_NODES),
    ("MAX_INITIALIZERS", MAX_INITIALIZERS),
    ("MAX_NAME_BYTES", MAX_NAME_BYTES),
    ("MAX_STRING_BYTES", MAX_STRING_BYTES),
    ("MAX_ATTRIBUTE_ELEMENTS", MAX_ATTRIBUTE_ELEMENTS),
    ("MAX_SUBGRAPH_DEPTH", MAX_SUBGRAPH_DEPTH),
    ("MAX_EXTERNAL_TENSOR_BYTES", MAX_EXTERNAL_TENSOR_BYTES),
    ("MAX_COMPUTED_CONSTANT_BYTES", MAX_COMPUTED_CONSTANT_BYTES),
];

/// Check a static shape: rank, each dimension (non-negative) and the element count.
pub fn check_shape(dims: &[i64]) -> std::result::Result<Vec<usize>, String> {
    MAX_RANK
        .check(dims.len() as u64)
        .map_err(|e| format!("shape {}: {e}", short(dims)))?;
    let mut count: u64 = 1;
    let mut shape = Vec::with_capacity(dims.len());
    for &d in dims {
        if d < 0 {
            return Err(format!("negative dimension {d} in {}", short(dims)));
        }
        MAX_DIM
            .check(d as u64)
            .map_err(|e| format!("shape {}: {e}", short(dims)))?;
        count = count.saturating_mul(d as u64);
        shape.push(d as usize);
    }
    MAX_ELEMENTS
        .check(count)
        .map_err(|e| format!("shape {}: {e}", short(dims)))?;
    Ok(shape)
}

/// Check a shape import computed (an op's output) against the same caps.
pub fn check_computed_shape(shape: &[usize]) -> std::result::Result<(), String> {
    let dims: Vec<i64> = shape.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect();
    check_shape(&dims).map(|_| ())
}

/// `dims` for a message: at most the first 8.
fn short(dims: &[i64]) -> String {
    if dims.len() <= 8 {
        format!("{dims:?}")
    } else {
        format!("{:?} (and {} more)", &dims[..8], dims.len() - 8)
    }
}

/// Walks a model, naming where it is as it goes.
struct Walk<'a> {
    path: &'a Path,
}

impl Walk<'_> {
    fn error(&self, subject: impl Into<String>, message: String) -> Error {
        Error::Limit {
            path: self.path.to_path_buf(),
            subject: subject.into(),
            message,
        }
    }

    fn name(&self, subject: &dyn Fn() -> String, name: &str) -> Result<()> {
        MAX_NAME_BYTES
            .check(name.len() as u64)
            .map_err(|e| self.error(subject(), format!("name {:?}...: {e}", prefix(name))))
    }

    fn string(&self, subject: &dyn Fn() -> String, what: &str, s: &[u8]) -> Result<()> {
        MAX_STRING_BYTES
            .check(s.len() as u64)
            .map_err(|e| self.error(subject(), format!("{what}: {e}")))
    }

    fn graph(&self, graph: &GraphProto, depth: u64) -> Result<()> {
        let here = || {
            if depth == 0 {
                "the graph".to_string()
            } else {
                format!("subgraph {:?}", graph.name)
            }
        };
        MAX_SUBGRAPH_DEPTH.check(depth).map_err(|e| self.error(here(), e))?;
        self.name(&here, &graph.name)?;
        self.string(&here, "doc_string", graph.doc_string.as_bytes())?;
        MAX_NODES
            .check(graph.node.len() as u64)
            .map_err(|e| self.error(here(), e))?;
        MAX_INITIALIZERS
            .check(graph.initializer.len() as u64)
            .map_err(|e| self.error(here(), e))?;
        for init in &graph.initializer {
            self.tensor(&|| format!("initializer {:?}", prefix(&init.name)), init)?;
        }
        for (kind, infos) in [
            ("input", &graph.input),
            ("output", &graph.output),
            ("value_info", &graph.value_info),
        ] {
            for info in infos {
                self.value_info(&|| format!("{kind} {:?}", prefix(&info.name)), info)?;
            }
        }
        for node in &graph.node {
            self.node(node, depth)?;
        }
        Ok(())
    }

    fn node(&self, node: &NodeProto, depth: u64) -> Result<()> {
        let here = || format!("node {:?} ({})", prefix(&node.name), prefix(&node.op_type));
        for name in [&node.name, &node.op_type, &node.domain]
            .into_iter()
            .chain(&node.input)
            .chain(&node.output)
        {
            self.name(&here, name)?;
        }
        self.string(&here, "doc_string", node.doc_string.as_bytes())?;
        for attr in &node.attribute {
            let at = || format!("{} attribute {:?}", here(), prefix(&attr.name));
            self.attribute(&at, attr, depth)?;
        }
        Ok(())
    }

    fn attribute(&self, at: &dyn Fn() -> String, attr: &AttributeProto, depth: u64) -> Result<()> {
        self.name(at, &attr.name)?;
        self.string(at, "string value", &attr.s)?;
        let lists = [
            attr.ints.len(),
            attr.floats.len(),
            attr.strings.len(),
            attr.tensors.len(),
            attr.graphs.len(),
        ];
        for len in lists {
            MAX_ATTRIBUTE_ELEMENTS
                .check(len as u64)
                .map_err(|e| self.error(at(), e))?;
        }
        for s in &attr.strings {
            self.string(at, "string value", s)?;
        }
        for t in attr.t.iter().chain(&attr.tensors) {
            self.tensor(at, t)?;
        }
        if attr.r#type == AttributeType::Graph as i32 || attr.g.is_some() || !attr.graphs.is_empty() {
            for g in attr.g.iter().chain(&attr.graphs) {
                self.graph(g, depth + 1)?;
            }
        }
        Ok(())
    }

    fn tensor(&self, subject: &dyn Fn() -> String, t: &TensorProto) -> Result<()> {
        check_shape(&t.dims).map_err(|e| self.error(subject(), e))?;
        for entry in &t.external_data {
            self.name(subject, &entry.key)?;
            self.string(subject, "external data entry", entry.value.as_bytes())?;
        }
        Ok(())
    }

    fn value_info(&self, subject: &dyn Fn() -> String, info: &ValueInfoProto) -> Result<()> {
        self.name(subject, &info.name)?;
        let Some(type_proto::Value::TensorType(t)) = info.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Ok(());
        };
        let Some(shape) = &t.shape else { return Ok(()) };
        MAX_RANK
            .check(shape.dim.len() as u64)
            .map_err(|e| self.error(subject(), e))?;
        let mut count: u64 = 1;
        for d in &shape.dim {
            match &d.value {
                Some(dimension::Value::DimValue(v)) if *v > 0 => {
                    MAX_DIM.check(*v as u64).map_err(|e| self.error(subject(), e))?;
                    count = count.saturating_mul(*v as u64);
                }
                Some(dimension::Value::DimParam(p)) => self.name(subject, p)?,
                _ => {}
            }
        }
        MAX_ELEMENTS.check(count).map_err(|e| self.error(subject(), e))
    }
}

/// The first bytes of `name` (on a character boundary), for messages about huge names.
fn prefix(name: &str) -> &str {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Check every cap that a decoded model's declarations can break.
pub fn check_model(path: &Path, model: &ModelProto) -> Result<()> {
    let walk = Walk { path };
    let model_level = || "the model".to_string();
    walk.string(&model_level, "doc_string", model.doc_string.as_bytes())?;
    for import in &model.opset_import {
        walk.name(&model_level, &import.domain)?;
    }
    for entry in &model.metadata_props {
        walk.name(&model_level, &entry.key)?;
        walk.string(&model_level, "metadata value", entry.value.as_bytes())?;
    }
    for function in &model.functions {
        let here = || format!("function {:?}", prefix(&function.name));
        walk.name(&here, &function.name)?;
        MAX_NODES
            .check(function.node.len() as u64)
            .map_err(|e| walk.error(here(), e))?;
        for node in &function.node {
            walk.node(node, 1)?;
        }
    }
    match &model.graph {
        Some(graph) => walk.graph(graph, 0),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_model_shapes_pass() {
        // A 7B LLM's embedding and MLP weights, gpt2_medium's embedding, a 70B LLM's embedding.
        for dims in [[32000, 4096], [11008, 4096], [50257, 1024], [128256, 8192]] {
            check_shape(&dims).unwrap();
        }
    }

    #[test]
    fn shape_caps() {
        assert!(check_shape(&[1; 17]).unwrap_err().contains("rank 17"));
        assert!(check_shape(&[1 << 31]).unwrap_err().contains("dimension 2147483648"));
        let e = check_shape(&[1 << 20, 1 << 20]).unwrap_err();
        assert!(
            e.contains("element count 1099511627776 is more than edgec's limit"),
            "{e}"
        );
        assert!(check_shape(&[2, -1]).unwrap_err().contains("negative"));
    }
}
