//! Back-to-back data movement folds into one op: a transpose of a transpose becomes one
//! transpose with the composed permutation (nothing, if that is the identity), and a reshape
//! of a reshape one reshape. The inner op must have no other use (otherwise it stays and
//! nothing is saved).

use crate::ir::{Graph, ValueDef};
use crate::op::Op;
use crate::pass::{Pass, PassError, PassOptions};

pub struct FoldTransposeReshape;

impl Pass for FoldTransposeReshape {
    fn name(&self) -> &'static str {
        "fold_transpose_reshape"
    }

    fn run(&self, graph: &mut Graph, _options: &PassOptions) -> Result<(), PassError> {
        let mut uses = graph.use_counts();
        let mut folded = 0;
        graph.rewrite_nodes(|graph, id| {
            let node = graph.node(id);
            let Some(inner_id) = node.inputs.first().and_then(|&v| graph.producer(v)) else {
                return Ok::<_, PassError>(None);
            };
            let inner = graph.node(inner_id);
            let private = uses.get(node.inputs[0].index()) == Some(&1) && !graph.is_graph_output(node.inputs[0]);
            if !private {
                return Ok(None);
            }
            let source = inner.inputs[0];
            let op = match (&inner.op, &node.op) {
                (Op::Transpose { perm: first }, Op::Transpose { perm: second }) => {
                    // out[i] = mid[second[i]] = source[first[second[i]]].
                    let perm: Vec<usize> = second.iter().map(|&p| first[p]).collect();
                    if perm.iter().enumerate().all(|(i, &p)| i == p) {
                        let output = node.outputs[0];
                        if graph.is_graph_output(output) {
                            // The source takes over the published name, unless it has its own.
                            let published = matches!(graph.value(source).def, ValueDef::Node { .. })
                                && !graph.is_graph_output(source);
                            if !published {
                                return Ok(None);
                            }
                            let name = graph.value(output).name.clone();
                            graph.value_mut(source).name = name;
                        }
                        folded += 1;
                        return Ok(Some(vec![source]));
                    }
                    Op::Transpose { perm }
                }
                (Op::Reshape { .. }, Op::Reshape { shape }) => Op::Reshape { shape: shape.clone() },
                _ => return Ok(None),
            };
            let old_out = node.outputs[0];
            let (name, origin) = (graph.value(old_out).name.clone(), node.origin.clone());
            let out = graph
                .add_node(op, vec![source], &[name], origin.clone())
                .map_err(|e| PassError {
                    pass: "fold_transpose_reshape",
                    origin,
                    message: e.0,
                })?;
            uses.resize(graph.values.len(), 0);
            uses[out[0].index()] = uses[old_out.index()];
            uses[source.index()] += 1;
            folded += 1;
            Ok(Some(out))
        })?;
        graph.count_rewrites("transposes/reshapes folded", folded);
        super::dead_code::remove_dead_nodes(graph);
        Ok(())
    }
}
