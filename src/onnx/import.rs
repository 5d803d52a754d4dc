//! ONNX graph → IR [`Graph`]: initializers become constants, inputs get static shapes, nodes are
//! checked for order and imported one by one through the op registry in [`super::ops`].

use super::ops::{self, NodeCx};
use super::tensor::{self, ExternalData};
use super::OnnxModel;
use crate::error::{Error, Result, UnsupportedOp};
use crate::proto::onnx::{tensor_shape_proto::dimension, type_proto, GraphProto, NodeProto, ValueInfoProto};
use edgec_passes::ir::{Graph, GraphOutput, TensorType, ValueId};
use std::collections::{HashMap, HashSet, VecDeque};

/// The default-domain opsets edgec imports: from 6 (which dropped the legacy `consumed_inputs`
/// attributes; importers check the opset-6 forms they meet, such as Clip's attribute bounds and
/// broadcast attributes) to the newest the pinned `onnx` package defines (1.23: opset 28).
pub const SUPPORTED_OPSETS: std::ops::RangeInclusive<i64> = 6..=28;

/// Values given by the user for model inputs (`--input-value sr=16000`): each such input
/// becomes a constant, and the package does not take it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputValues(pub Vec<(String, Vec<f64>)>);

/// Static shapes given by the user for model inputs (`--input-shape NAME=1x3x224x224`).
#[derive(Clone, Debug, Default)]
pub struct InputShapes(pub Vec<(String, Vec<usize>)>);

impl InputShapes {
    fn get(&self, name: &str) -> Option<&[usize]> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| s.as_slice())
    }
}

/// Import `model` into the IR, freezing input shapes with `shapes`.
pub fn import(model: &OnnxModel, shapes: &InputShapes, values: &InputValues) -> Result<Graph> {
    let path = &model.path;
    let model_err = |message: String| Error::Model {
        path: path.clone(),
        message,
    };
    let proto = model
        .proto
        .graph
        .as_ref()
        .ok_or_else(|| model_err("the model has no graph".into()))?;
    let opset = model
        .opset()
        .ok_or_else(|| model_err("the model imports no version of the default ONNX domain".into()))?;
    if !SUPPORTED_OPSETS.contains(&opset) {
        return Err(model_err(format!(
            "it imports ONNX opset {opset}; edgec reads opsets {} to {} ({})",
            SUPPORTED_OPSETS.start(),
            SUPPORTED_OPSETS.end(),
            if opset < *SUPPORTED_OPSETS.start() {
                "before 6, ops carry legacy attributes such as consumed_inputs; re-export with a newer opset"
            } else {
                "newer ones may change what an op means; re-export with an older opset"
            }
        )));
    }

    // onnxruntime's dynamic quantization chains, each fused into its MatMulInteger/ConvInteger.
    let fused_nodes = super::dynamic_quant::fuse(proto);
    check_supported(model, fused_nodes.as_deref().unwrap_or(&proto.node))?;

    let mut graph = Graph::new(if proto.name.is_empty() {
        "main"
    } else {
        proto.name.as_str()
    });
    let mut env: HashMap<String, ValueId> = HashMap::new();

    let mut external = ExternalData::new(&model.dir());
    for init in &proto.initializer {
        let t = tensor::to_tensor(init, &mut external).map_err(|message| Error::Initializer {
            path: path.clone(),
            tensor: init.name.clone(),
            message,
        })?;
        if env.contains_key(&init.name) {
            return Err(model_err(format!("initializer {:?} is defined twice", init.name)));
        }
        let id = graph.add_const(init.name.clone(), t);
        env.insert(init.name.clone(), id);
    }
    let initializer_bytes: usize = graph
        .values
        .iter()
        .filter_map(|v| match &v.def {
            edgec_passes::ir::ValueDef::Const(t) => Some(t.data.len()),
            _ => None,
        })
        .sum();
    graph.fold_budget = usize::try_from(super::limits::computed_constant_budget(initializer_bytes as u64)).ok();
    if !proto.sparse_initializer.is_empty() {
        return Err(model_err("sparse initializers are not supported".into()));
    }

    import_inputs(model, proto, shapes, values, &mut graph, &mut env)?;

    let fused;
    let proto = match fused_nodes {
        Some(node) => {
            fused = GraphProto {
                node,
                name: proto.name.clone(),
                input: proto.input.clone(),
                output: proto.output.clone(),
                ..Default::default()
            };
            &fused
        }
        None => proto,
    };

    let mut state = ImportState {
        model,
        opset,
        graph: &mut graph,
        env: &mut env,
        external: &mut external,
        used: used_names(proto),
    };
    import_nodes(&mut state, proto)?;

    for out in &proto.output {
        let value = *env
            .get(&out.name)
            .ok_or_else(|| model_err(format!("graph output {:?} is produced by no node", out.name)))?;
        if graph.ty(value).num_elements() == 0 {
            return Err(model_err(format!(
                "graph output {:?} is empty ({}); Core ML model outputs cannot be empty",
                out.name,
                graph.ty(value)
            )));
        }
        graph.outputs.push(GraphOutput {
            name: out.name.clone(),
            value,
        });
    }
    if graph.outputs.is_empty() {
        return Err(model_err("the graph has no outputs".into()));
    }
    Ok(graph)
}

/// What importing a graph (and the If branches inlined into it) works on.
pub(super) struct ImportState<'a> {
    pub model: &'a OnnxModel,
    pub opset: i64,
    pub graph: &'a mut Graph,
    pub env: &'a mut HashMap<String, ValueId>,
    pub external: &'a mut ExternalData,
    /// Every name any node reads, in any subgraph, or a graph publishes.
    pub used: HashSet<String>,
}

/// Import `proto`'s nodes (the model's graph, or an If branch) in dependency order, binding
/// their outputs in the environment.
pub(super) fn import_nodes(state: &mut ImportState<'_>, proto: &GraphProto) -> Result<()> {
    let model = state.model;
    let order = topological_order(model, proto, state.env)?;
    for index in order {
        let node = &proto.node[index];
        let node_err = |message: String| node_error(model, node, message);
        match node.op_type.as_str() {
            "If" => {
                super::control_flow::import_if(state, node)?;
                continue;
            }
            "Loop" => {
                super::control_flow::import_loop(state, node)?;
                continue;
            }
            _ => {}
        }
        let importer = ops::lookup(&node.op_type).ok_or_else(|| node_err("unsupported op".into()))?;
        let mut cx = NodeCx::new(node, state.opset, state.graph, state.env, state.external);
        let mut outputs = importer(&mut cx).map_err(node_err)?;
        // An empty tensor has one possible value, whatever computes it: edgec keeps empty
        // values only as constants (Core ML has no zero-sized tensors).
        for v in &mut outputs {
            if state.graph.constant(*v).is_none() && state.graph.ty(*v).num_elements() == 0 {
                let empty = edgec_passes::ir::Tensor::empty(state.graph.ty(*v).clone());
                let constant = state.graph.add_const(state.graph.value(*v).name.clone(), empty);
                state.graph.replace_all_uses(*v, constant);
                if let Some(producer) = state.graph.producer(*v) {
                    let outputs = &state.graph.node(producer).outputs;
                    if outputs.iter().all(|&o| state.graph.ty(o).num_elements() == 0) {
                        state.graph.remove_nodes(&[producer]);
                    }
                }
                *v = constant;
            }
        }
        for (i, name) in node.output.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            match outputs.get(i) {
                Some(&v) => {
                    state.env.insert(name.clone(), v);
                }
                None => {
                    // Optional outputs we do not produce (e.g. Dropout's mask) must be unused.
                    if state.used.contains(name) {
                        return Err(node_err(format!("output {i} ({name:?}) is not supported")));
                    }
                }
            }
        }
    }

    Ok(())
}

/// `roots` and every graph nested in their nodes' attributes, at any depth.
pub(super) fn nested_graphs<'a>(roots: impl IntoIterator<Item = &'a GraphProto>) -> Vec<&'a GraphProto> {
    let mut all = Vec::new();
    let mut pending: Vec<&GraphProto> = roots.into_iter().collect();
    while let Some(g) = pending.pop() {
        for node in &g.node {
            pending.extend(subgraphs(node));
        }
        all.push(g);
    }
    all
}

/// The graphs among `node`'s attributes (If's branches, Loop's body).
fn subgraphs(node: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    node.attribute.iter().flat_map(|a| a.g.iter().chain(&a.graphs))
}

/// The names read by `proto`'s nodes, its subgraphs' nodes, and published by any of them.
fn used_names(proto: &GraphProto) -> HashSet<String> {
    let mut used = HashSet::new();
    for g in nested_graphs([proto]) {
        used.extend(g.output.iter().map(|o| o.name.clone()));
        for node in &g.node {
            used.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
        }
    }
    used
}

/// The outer names `node`'s subgraphs read (If and Loop bodies see the enclosing scope).
fn captured_names(node: &NodeProto) -> Vec<&str> {
    nested_graphs(subgraphs(node))
        .into_iter()
        .flat_map(|g| &g.node)
        .flat_map(|n| n.input.iter().filter(|i| !i.is_empty()).map(String::as_str))
        .collect()
}

/// One error listing every node whose op has no importer.
fn check_supported(model: &OnnxModel, nodes: &[NodeProto]) -> Result<()> {
    let unsupported: Vec<UnsupportedOp> = nodes
        .iter()
        .filter(|n| {
            !(n.domain.is_empty() || n.domain == "ai.onnx")
                || (ops::lookup(&n.op_type).is_none() && !ops::CONTROL_FLOW.contains(&n.op_type.as_str()))
        })
        .map(|n| UnsupportedOp {
            domain: n.domain.clone(),
            op_type: n.op_type.clone(),
            node: n.name.clone(),
        })
        .collect();
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(Error::Unsupported {
            path: model.path.clone(),
            ops: unsupported,
        })
    }
}

fn import_inputs(
    model: &OnnxModel,
    proto: &GraphProto,
    shapes: &InputShapes,
    values: &InputValues,
    graph: &mut Graph,
    env: &mut HashMap<String, ValueId>,
) -> Result<()> {
    let path = &model.path;
    let real_inputs: Vec<&ValueInfoProto> = proto.input.iter().filter(|i| !env.contains_key(&i.name)).collect();
    // Each flag names each input once, and only inputs the model has.
    let named = [
        ("--input-value", values.0.iter().map(|(n, _)| n).collect::<Vec<_>>()),
        ("--input-shape", shapes.0.iter().map(|(n, _)| n).collect()),
    ];
    for (flag, names) in named {
        for (k, name) in names.iter().enumerate() {
            if names[..k].contains(name) {
                return Err(Error::Usage(format!("{flag} gives {name:?} more than once")));
            }
            if !real_inputs.iter().any(|i| &i.name == *name) {
                let known: Vec<&str> = real_inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(Error::Model {
                    path: path.clone(),
                    message: format!("{flag} names {name:?}, which is not an input of the model (inputs: {known:?})"),
                });
            }
        }
    }
    let mut unresolved = Vec::new();
    // Named dims fixed by --input-shape: name -> (value, input, dim index). Inputs that share a
    // dim name (`batch`, `sequence`) must be given the same value.
    let mut named_dims: HashMap<String, (usize, String, usize)> = HashMap::new();
    for input in real_inputs {
        let err = |message: String| Error::Model {
            path: path.clone(),
            message: format!("input {:?}: {message}", input.name),
        };
        let Some(type_proto::Value::TensorType(t)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(err("only tensor inputs are supported".into()));
        };
        // Core ML has no f64: a double input is published as fp32 (as initializers are narrowed).
        let dtype = if t.elem_type == crate::proto::onnx::tensor_proto::DataType::Double as i32 {
            edgec_passes::DType::F32
        } else {
            tensor::dtype_of(t.elem_type).map_err(err)?
        };
        let dims: Vec<Option<i64>> = t
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(dimension::Value::DimValue(v)) if v >= 0 => Some(v),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let symbol = |i: usize| match t.shape.as_ref().and_then(|s| s.dim[i].value.as_ref()) {
            Some(dimension::Value::DimParam(p)) if !p.is_empty() => p.clone(),
            _ => "?".to_string(),
        };
        let shape: Vec<i64> = match shapes.get(&input.name) {
            Some(given) => {
                let agrees = given.len() == dims.len()
                    && dims.iter().zip(given).all(|(d, &g)| d.is_none_or(|d| d as usize == g));
                if t.shape.is_some() && !agrees {
                    let model_dims: Vec<String> = dims
                        .iter()
                        .enumerate()
                        .map(|(i, d)| d.map_or_else(|| symbol(i), |v| v.to_string()))
                        .collect();
                    return Err(Error::Model {
                        path: path.clone(),
                        message: format!(
                            "--input-shape {}={} does not match the model's shape [{}] for that input",
                            input.name,
                            given.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"),
                            model_dims.join(", ")
                        ),
                    });
                }
                for (i, &value) in given.iter().enumerate() {
                    let name = symbol(i);
                    if dims[i].is_some() || name == "?" {
                        continue;
                    }
                    match named_dims.get(&name) {
                        Some((other, other_input, other_dim)) if *other != value => {
                            return Err(Error::Model {
                                path: path.clone(),
                                message: format!(
                                    "--input-shape gives the dim named {name:?} two values: {other} for input {other_input:?} (dim {other_dim}) and {value} for input {:?} (dim {i}); inputs that share a dim name must agree",
                                    input.name
                                ),
                            });
                        }
                        Some(_) => {}
                        None => {
                            named_dims.insert(name, (value, input.name.clone(), i));
                        }
                    }
                }
                given.iter().map(|&d| d as i64).collect()
            }
            None => {
                if t.shape.is_none() {
                    unresolved.push(format!("{:?} (rank unknown)", input.name));
                    continue;
                }
                let missing: Vec<String> = dims
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.is_none())
                    .map(|(i, _)| format!("dim {i} ({})", symbol(i)))
                    .collect();
                if !missing.is_empty() {
                    unresolved.push(format!("{:?} {}", input.name, missing.join(", ")));
                    continue;
                }
                dims.iter().map(|d| d.unwrap_or(0)).collect()
            }
        };
        let shape = tensor::checked_shape(&shape).map_err(err)?;
        let ty = TensorType::new(dtype, shape);
        if let Some((_, given)) = values.0.iter().find(|(n, _)| n == &input.name) {
            let constant = fixed_value(&input.name, &ty, given)?;
            graph.warnings.push(format!(
                "input {:?} is fixed by --input-value: the package does not take it",
                input.name
            ));
            let id = graph.add_const(input.name.clone(), constant);
            env.insert(input.name.clone(), id);
            graph.fixed_inputs.insert(input.name.clone(), given.clone());
            continue;
        }
        if ty.num_elements() == 0 {
            // An empty tensor has one possible value, so it is a constant; Core ML inputs
            // cannot be empty anyway.
            graph.warnings.push(format!(
                "input {:?} ({ty}) is empty: it holds no data, so the package does not take it; edgec compiles it as a constant",
                input.name
            ));
            let id = graph.add_const(input.name.clone(), edgec_passes::ir::Tensor::empty(ty));
            env.insert(input.name.clone(), id);
            graph.fixed_inputs.insert(input.name.clone(), Vec::new());
            continue;
        }
        let id = graph.add_input(input.name.clone(), ty);
        env.insert(input.name.clone(), id);
    }
    if !unresolved.is_empty() {
        return Err(Error::Model {
            path: path.clone(),
            message: format!(
                "dynamic input dimensions need static values; pass --input-shape NAME=DIMxDIMx... for: {} (`edgec analyze` on this model prints the flags to fill in)",
                unresolved.join("; ")
            ),
        });
    }
    Ok(())
}

/// The constant an input given by `--input-value` becomes: `given` in its type and shape.
fn fixed_value(name: &str, ty: &TensorType, given: &[f64]) -> Result<edgec_passes::ir::Tensor> {
    let bad = |message: String| Error::Usage(format!("--input-value {name}: {message}"));
    if given.len() != ty.num_elements() {
        return Err(bad(format!(
            "{} value(s) given for {ty}, which holds {}",
            given.len(),
            ty.num_elements()
        )));
    }
    Ok(if ty.dtype.is_float() {
        let v: Vec<f32> = given.iter().map(|&x| x as f32).collect();
        edgec_passes::ir::Tensor::from_f32(ty.shape.clone(), &v).cast(ty.dtype)
    } else {
        if given.iter().any(|x| x.fract() != 0.0) {
            return Err(bad(format!("{ty} takes whole numbers")));
        }
        let v: Vec<i64> = given.iter().map(|&x| x as i64).collect();
        edgec_passes::ir::Tensor::from_i64(ty.shape.clone(), &v).cast(ty.dtype)
    })
}

/// Node indices in an order where every input is defined first. Names a dangling input or the
/// nodes of a cycle when there is no such order.
fn topological_order(model: &OnnxModel, proto: &GraphProto, env: &HashMap<String, ValueId>) -> Result<Vec<usize>> {
    let path = &model.path;
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in proto.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if env.contains_key(out) {
                return Err(node_error(
                    model,
                    node,
                    format!("output {out:?} redefines a graph input or initializer"),
                ));
            }
            if let Some(&other) = producer.get(out.as_str()) {
                return Err(node_error(
                    model,
                    node,
                    format!("output {out:?} is also produced by node {:?}", proto.node[other].name),
                ));
            }
            producer.insert(out, i);
        }
    }
    let mut waiting = vec![0usize; proto.node.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); proto.node.len()];
    for (i, node) in proto.node.iter().enumerate() {
        let mut seen = HashSet::new();
        // A subgraph's reads of this graph's values order its node after their producers;
        // its other reads are its own values or an enclosing scope's.
        for captured in captured_names(node) {
            if let Some(&p) = producer.get(captured) {
                if p != i && seen.insert(p) {
                    waiting[i] += 1;
                    consumers[p].push(i);
                }
            }
        }
        for input in node.input.iter().filter(|n| !n.is_empty()) {
            if env.contains_key(input) {
                continue;
            }
            match producer.get(input.as_str()) {
                Some(&p) => {
                    if seen.insert(p) {
                        waiting[i] += 1;
                        consumers[p].push(i);
                    }
                }
                None => {
                    return Err(node_error(
                        model,
                        node,
                        format!("input {input:?} is not a graph input, an initializer or any node's output"),
                    ))
                }
            }
        }
    }
    // Kahn's algorithm, preferring file order so a well-ordered graph keeps its order.
    let mut ready: VecDeque<usize> = (0..proto.node.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(proto.node.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &c in &consumers[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push_back(c);
            }
        }
    }
    if order.len() != proto.node.len() {
        let stuck: Vec<String> = (0..proto.node.len())
            .filter(|&i| waiting[i] > 0)
            .map(|i| format!("{:?} ({})", proto.node[i].name, proto.node[i].op_type))
            .collect();
        return Err(Error::Model {
            path: path.clone(),
            message: format!(
                "the graph has a cycle: these nodes wait on each other (or on the cycle) and can never run: {}",
                stuck.join(", ")
            ),
        });
    }
    Ok(order)
}

pub(super) fn node_error(model: &OnnxModel, node: &NodeProto, message: String) -> Error {
    Error::Node {
        path: model.path.clone(),
        node: node.name.clone(),
        op: node.op_type.clone(),
        message,
    }
}
