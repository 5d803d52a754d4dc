//! The compute-unit plan: a prediction, per non-const MIL op, of where Core ML will run it (the
//! Neural Engine, the GPU or the CPU), from published facts (`docs/placement.md`), without a Mac.
//!
//! The planner reads the final MIL program (after lowering and weight compression), so it plans
//! exactly what a package holds, whether edgec just wrote it or it is read back from disk:
//!
//! 1. every rule of [`rules::RULES`] is checked per op (and per model); a rule rules a unit out
//!    of the op's supported set, marks it not preferred, or notes an uncertainty;
//! 2. connected groups of ANE-eligible ops doing less work than the size floor go to the CPU
//!    (Core ML prefers the CPU for work too small to pay for an ANE dispatch), and off-ANE groups
//!    choose between the GPU and the CPU by the same kind of floor;
//! 3. segments (maximal connected groups of ops on one unit) and transitions (tensors crossing
//!    units) are counted, and each op's share of the estimated cost ([`cost`]) is summed per unit.
//!
//! It is a prediction, per chip family and OS, not a measurement; the format follows Apple's
//! `MLComputePlan` (op, preferred unit, supported units, cost share) so the two can be compared.

pub mod cost;
pub mod pin;
pub mod program;
pub mod report;
pub mod rules;
#[cfg(test)]
mod tests;

use program::{is_constant_op, op_name, ProgramView};
use rules::{Check, Effect, ModelContext, OpContext, RULES};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A Core ML compute unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    Ane,
    Gpu,
    Cpu,
}

impl Unit {
    pub const ALL: [Unit; 3] = [Unit::Ane, Unit::Gpu, Unit::Cpu];

    /// The name in plan.json.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ane => "ane",
            Unit::Gpu => "gpu",
            Unit::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Unit::Ane => "ANE",
            Unit::Gpu => "GPU",
            Unit::Cpu => "CPU",
        }
    }

    pub fn from_name(name: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.name() == name)
    }
}

/// `MLModelConfiguration.computeUnits`: the units Core ML may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ComputeUnits {
    #[default]
    All,
    CpuAndNeuralEngine,
    CpuAndGpu,
    CpuOnly,
}

impl ComputeUnits {
    pub const ALL: [ComputeUnits; 4] = [
        ComputeUnits::All,
        ComputeUnits::CpuAndNeuralEngine,
        ComputeUnits::CpuAndGpu,
        ComputeUnits::CpuOnly,
    ];

    pub fn units(self) -> &'static [Unit] {
        match self {
            ComputeUnits::All => &[Unit::Ane, Unit::Gpu, Unit::Cpu],
            ComputeUnits::CpuAndNeuralEngine => &[Unit::Ane, Unit::Cpu],
            ComputeUnits::CpuAndGpu => &[Unit::Gpu, Unit::Cpu],
            ComputeUnits::CpuOnly => &[Unit::Cpu],
        }
    }

    /// The `MLComputeUnits` case an app sets (metadata `com.edgec.compute_units`, plan.json).
    pub fn core_ml_name(self) -> &'static str {
        match self {
            ComputeUnits::All => "all",
            ComputeUnits::CpuAndNeuralEngine => "cpuAndNeuralEngine",
            ComputeUnits::CpuAndGpu => "cpuAndGPU",
            ComputeUnits::CpuOnly => "cpuOnly",
        }
    }

    /// The `--compute-units` spelling.
    pub fn cli_name(self) -> &'static str {
        match self {
            ComputeUnits::All => "all",
            ComputeUnits::CpuAndNeuralEngine => "cpu-and-ne",
            ComputeUnits::CpuAndGpu => "cpu-and-gpu",
            ComputeUnits::CpuOnly => "cpu-only",
        }
    }

    /// Either spelling.
    pub fn from_name(name: &str) -> Option<ComputeUnits> {
        ComputeUnits::ALL
            .into_iter()
            .find(|c| c.core_ml_name() == name || c.cli_name() == name)
    }
}

/// What the planner needs besides the program.
#[derive(Clone, Debug, Default)]
pub struct PlanContext {
    /// Whether the program computes in fp16 (`com.edgec.precision`).
    pub fp16_program: bool,
    /// MIL op name → why edgec keeps it in fp32 (`com.edgec.fp32_ops`).
    pub fp32_pins: HashMap<String, String>,
    /// MIL op name → the ONNX nodes it computes: its own first, then those fused into it.
    pub onnx_nodes: HashMap<String, Vec<String>>,
    /// Size of the weight file.
    pub weight_bytes: u64,
    /// Inputs with a flexible shape and how (`range`, `enumerated`).
    pub flexible_inputs: Vec<(String, &'static str)>,
    pub compute_units: ComputeUnits,
}

/// Why a unit was ruled out, not preferred, or is uncertain for an op.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub rule: &'static str,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpPlan {
    /// The op's name (its first output).
    pub name: String,
    pub op_type: String,
    /// The predicted (preferred) unit.
    pub unit: Unit,
    /// The units that could run it under the chosen compute units.
    pub supported: Vec<Unit>,
    pub reasons: Vec<Reason>,
    pub cost: cost::Cost,
    /// Share of the whole program's estimated cost, in [0, 1].
    pub cost_share: f64,
    /// The ONNX nodes it computes: its own first, then those fused into it.
    pub onnx_nodes: Vec<String>,
}

/// A maximal connected group of ops on one unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub unit: Unit,
    /// Its first and last op in program order.
    pub first_op: String,
    pub last_op: String,
    pub ops: usize,
    pub cost_share: f64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub ops: usize,
    /// Ops per unit, in [`Unit::ALL`] order.
    pub unit_ops: [usize; 3],
    pub unit_cost_share: [f64; 3],
    pub segments: usize,
    /// Tensors that cross from one unit to another (each value counted once per destination
    /// unit).
    pub transitions: usize,
}

impl Summary {
    pub fn ops_on(&self, unit: Unit) -> usize {
        self.unit_ops[unit as usize]
    }

    pub fn share_on(&self, unit: Unit) -> f64 {
        self.unit_cost_share[unit as usize]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub compute_units: ComputeUnits,
    /// Every non-const op, in program order.
    pub ops: Vec<OpPlan>,
    /// In order of their first op.
    pub segments: Vec<Segment>,
    pub summary: Summary,
}

impl Plan {
    /// Ops predicted off the Neural Engine (what `--require-ane` refuses).
    pub fn off_ane(&self) -> impl Iterator<Item = &OpPlan> {
        self.ops.iter().filter(|o| o.unit != Unit::Ane)
    }
}

/// Ops through which topk indices keep being indices (their consumers are the index consumers
/// of placement.md §3 row 4).
const INDEX_CARRIERS: &[&str] = &[
    "reshape",
    "expand_dims",
    "squeeze",
    "tile",
    "transpose",
    "cast",
    "concat",
    "slice_by_index",
    "slice_by_size",
    "identity",
];

/// A union-find over planned ops, for connected groups.
struct Groups(Vec<usize>);

impl Groups {
    fn new(n: usize) -> Self {
        Groups((0..n).collect())
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Plan `program` (its `main` function).
pub fn plan(program: &crate::proto::coreml::mil_spec::Program, context: &PlanContext) -> Plan {
    let view = ProgramView::new(program);
    // Planned ops: positions in `view.ops` of the non-constant ones.
    let planned: Vec<usize> = (0..view.ops.len())
        .filter(|&i| !is_constant_op(&view.ops[i].r#type))
        .collect();
    let slot: HashMap<usize, usize> = planned.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let names: Vec<String> = planned.iter().map(|&i| op_name(view.ops[i])).collect();
    // Data edges between planned ops: (producer slot, consumer slot, value).
    let mut edges: Vec<(usize, usize, &str)> = Vec::new();
    for (k, &i) in planned.iter().enumerate() {
        for name in program::input_names(view.ops[i]) {
            if let Some(p) = view.producer.get(name).and_then(|p| slot.get(p)) {
                edges.push((*p, k, name));
            }
        }
    }
    let topk_indices = topk_index_values(&view, &planned, &names);

    let model = ModelContext {
        fp16_program: context.fp16_program,
        weight_bytes: context.weight_bytes,
        flexible_inputs: &context.flexible_inputs,
    };
    let model_findings: Vec<Option<String>> = RULES
        .iter()
        .map(|r| match r.check {
            Check::Model(f) => f(&model),
            _ => None,
        })
        .collect();
    let allowed = context.compute_units.units();
    let excluded: Vec<Unit> = Unit::ALL.into_iter().filter(|u| !allowed.contains(u)).collect();

    let mut supported: Vec<BTreeSet<Unit>> = Vec::with_capacity(planned.len());
    let mut not_preferred: Vec<BTreeSet<Unit>> = Vec::with_capacity(planned.len());
    let mut reasons: Vec<Vec<Reason>> = Vec::with_capacity(planned.len());
    let mut costs = Vec::with_capacity(planned.len());
    for (&i, name) in planned.iter().zip(&names) {
        let op = view.ops[i];
        let ctx = OpContext {
            view: &view,
            op,
            fp16_program: context.fp16_program,
            fp32_pin: context.fp32_pins.get(name).map(String::as_str),
            topk_indices: &topk_indices,
        };
        let mut units: BTreeSet<Unit> = allowed.iter().copied().collect();
        let mut weaker = BTreeSet::new();
        let mut why = Vec::new();
        if !excluded.is_empty() {
            let left_out: Vec<&str> = excluded.iter().map(|u| u.label()).collect();
            why.push(Reason {
                rule: "compute_units",
                text: format!(
                    "--compute-units {} leaves out the {}",
                    context.compute_units.cli_name(),
                    left_out.join(" and the ")
                ),
            });
        }
        for (rule, model_finding) in RULES.iter().zip(&model_findings) {
            let finding = match rule.check {
                Check::Op(f) => f(&ctx),
                Check::OpTypes(types, text) => types.contains(&op.r#type.as_str()).then(|| text.to_string()),
                Check::Model(_) => model_finding.clone(),
                Check::Planner => None,
            };
            let Some(text) = finding else {
                continue;
            };
            // A fact about a unit the user left out changes nothing.
            match rule.effect {
                Effect::RulesOut(u) | Effect::NotPreferred(u) if !allowed.contains(&u) => continue,
                Effect::Uncertain(u) if !allowed.contains(&u) => continue,
                Effect::RulesOut(u) => {
                    units.remove(&u);
                }
                Effect::NotPreferred(u) => {
                    weaker.insert(u);
                }
                Effect::Uncertain(_) => {}
            }
            why.push(Reason { rule: rule.name, text });
        }
        if units.contains(&Unit::Ane)
            && !rules::ANE_KNOWN_OPS.contains(&op.r#type.as_str())
            && !why.iter().any(|r| r.rule != "compute_units")
        {
            why.push(Reason {
                rule: "unlisted_op",
                text: format!(
                    "uncertain: {} is not among the ops known to run on the ANE; planned there by default",
                    op.r#type
                ),
            });
        }
        supported.push(units);
        not_preferred.push(weaker);
        reasons.push(why);
        costs.push(cost::estimate(&view, op));
    }

    let n = planned.len();
    let mut unit: Vec<Option<Unit>> = vec![None; n];
    // The ANE: connected groups of eligible ops above the size floor.
    let ane_eligible: Vec<bool> = (0..n)
        .map(|k| supported[k].contains(&Unit::Ane) && !not_preferred[k].contains(&Unit::Ane))
        .collect();
    for group in groups(n, &edges, |k| ane_eligible[k]) {
        let flops: u64 = group.iter().map(|&k| costs[k].flops).sum();
        if flops >= rules::ANE_MIN_SEGMENT_FLOPS {
            group.iter().for_each(|&k| unit[k] = Some(Unit::Ane));
            continue;
        }
        let text = format!(
            "its connected group of {} ANE-eligible op(s) does {}, under the ANE size floor of {} (a guess: a single 512×512 fp16 matmul is the smallest measured on the ANE)",
            group.len(),
            mflop(flops),
            mflop(rules::ANE_MIN_SEGMENT_FLOPS)
        );
        for &k in &group {
            reasons[k].push(Reason {
                rule: "size_floor",
                text: text.clone(),
            });
        }
    }
    // The rest: the GPU for groups with enough work, else the CPU.
    let gpu_eligible: Vec<bool> = (0..n)
        .map(|k| unit[k].is_none() && supported[k].contains(&Unit::Gpu) && !not_preferred[k].contains(&Unit::Gpu))
        .collect();
    for group in groups(n, &edges, |k| gpu_eligible[k]) {
        let flops: u64 = group.iter().map(|&k| costs[k].flops).sum();
        if flops >= rules::GPU_MIN_SEGMENT_FLOPS {
            group.iter().for_each(|&k| unit[k] = Some(Unit::Gpu));
            continue;
        }
        let text = format!(
            "off the ANE, its connected group of {} op(s) does {}, under the GPU floor of {} (a guess): the CPU",
            group.len(),
            mflop(flops),
            mflop(rules::GPU_MIN_SEGMENT_FLOPS)
        );
        for &k in &group {
            reasons[k].push(Reason {
                rule: "gpu_size_floor",
                text: text.clone(),
            });
        }
    }
    let unit: Vec<Unit> = unit.into_iter().map(|u| u.unwrap_or(Unit::Cpu)).collect();

    let total: u64 = costs.iter().map(|c| c.weight()).sum::<u64>().max(1);
    let share = |w: u64| w as f64 / total as f64;
    let mut ops: Vec<OpPlan> = Vec::with_capacity(n);
    for k in 0..n {
        let op = view.ops[planned[k]];
        ops.push(OpPlan {
            name: names[k].clone(),
            op_type: op.r#type.clone(),
            unit: unit[k],
            supported: supported[k].iter().copied().collect(),
            reasons: std::mem::take(&mut reasons[k]),
            cost: costs[k],
            cost_share: share(costs[k].weight()),
            onnx_nodes: context.onnx_nodes.get(&names[k]).cloned().unwrap_or_default(),
        });
    }

    let segments: Vec<Segment> = groups(
        n,
        &edges
            .iter()
            .filter(|(a, b, _)| unit[*a] == unit[*b])
            .copied()
            .collect::<Vec<_>>(),
        |_| true,
    )
    .into_iter()
    .map(|group| Segment {
        unit: unit[group[0]],
        first_op: names[group[0]].clone(),
        last_op: names[group[group.len() - 1]].clone(),
        ops: group.len(),
        cost_share: share(group.iter().map(|&k| costs[k].weight()).sum()),
    })
    .collect();
    let transitions: HashSet<(&str, Unit)> = edges
        .iter()
        .filter(|(a, b, _)| unit[*a] != unit[*b])
        .map(|(_, b, value)| (*value, unit[*b]))
        .collect();
    let mut summary = Summary {
        ops: n,
        segments: segments.len(),
        transitions: transitions.len(),
        ..Summary::default()
    };
    for k in 0..n {
        summary.unit_ops[unit[k] as usize] += 1;
        summary.unit_cost_share[unit[k] as usize] += share(costs[k].weight());
    }
    Plan {
        compute_units: context.compute_units,
        ops,
        segments,
        summary,
    }
}

/// Connected groups (by data edges) of the ops `member` admits, each in program order, the
/// groups in order of their first op.
fn groups(n: usize, edges: &[(usize, usize, &str)], member: impl Fn(usize) -> bool) -> Vec<Vec<usize>> {
    let mut g = Groups::new(n);
    for &(a, b, _) in edges {
        if member(a) && member(b) {
            g.join(a, b);
        }
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in (0..n).filter(|&k| member(k)) {
        by_root.entry(g.root(k)).or_default().push(k);
    }
    // Roots are each group's smallest member, so the map is already in first-op order.
    by_root.into_values().collect()
}

/// Values that carry topk indices, with the topk they come from.
fn topk_index_values<'a>(view: &ProgramView<'a>, planned: &[usize], names: &[String]) -> HashMap<&'a str, String> {
    let mut found: HashMap<&'a str, String> = HashMap::new();
    for (k, &i) in planned.iter().enumerate() {
        let op = view.ops[i];
        if op.r#type == "topk" {
            if let Some(indices) = op.outputs.get(1) {
                found.insert(indices.name.as_str(), names[k].clone());
            }
        } else if INDEX_CARRIERS.contains(&op.r#type.as_str()) || produces_int32(view, op) {
            // Reshaped, tiled or wrapped around (GatherElements' negative-index fix-up),
            // indices stay indices.
            let source = program::input_names(op).find_map(|n| found.get(n).cloned());
            if let Some(topk) = source {
                for out in &op.outputs {
                    found.insert(out.name.as_str(), topk.clone());
                }
            }
        }
    }
    found
}

fn produces_int32(view: &ProgramView, op: &crate::proto::coreml::mil_spec::Operation) -> bool {
    op.outputs.iter().any(|o| {
        view.types
            .get(o.name.as_str())
            .is_some_and(|t| t.is(crate::proto::coreml::mil_spec::DataType::Int32))
    })
}

fn mflop(flops: u64) -> String {
    format!("{:.1} MFLOP", flops as f64 / 1e6)
}

impl PlanContext {
    /// The context a package's own description gives (precision, fp32 ops, flexible inputs):
    /// the same whether edgec is writing the package or reading it back.
    pub fn for_package(
        program: &crate::proto::coreml::mil_spec::Program,
        description: Option<&crate::proto::coreml::ModelDescription>,
        weight_bytes: u64,
        onnx_nodes: HashMap<String, Vec<String>>,
        compute_units: ComputeUnits,
    ) -> PlanContext {
        use crate::proto::coreml::{array_feature_type::ShapeFlexibility, feature_type};
        let metadata = description.and_then(|d| d.metadata.as_ref()).map(|m| &m.user_defined);
        let precision = metadata.and_then(|m| m.get("com.edgec.precision")).map(String::as_str);
        let fp32_pins = metadata
            .and_then(|m| m.get("com.edgec.fp32_ops"))
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|o| Some((o["op"].as_str()?.to_string(), o["reason"].as_str()?.to_string())))
            .collect();
        let flexible_inputs = description
            .map(|d| d.input.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| match f.r#type.as_ref()?.r#type.as_ref()? {
                feature_type::Type::MultiArrayType(a) => match a.shape_flexibility.as_ref()? {
                    ShapeFlexibility::ShapeRange(_) => Some((f.name.clone(), "range")),
                    ShapeFlexibility::EnumeratedShapes(_) => Some((f.name.clone(), "enumerated")),
                },
                _ => None,
            })
            .collect();
        PlanContext {
            // Without edgec's metadata, fp16 when the program says so in its types.
            fp16_program: precision.map_or_else(|| holds_fp16(program), |p| p != "fp32"),
            fp32_pins,
            onnx_nodes,
            weight_bytes,
            flexible_inputs,
            compute_units,
        }
    }
}

/// Whether any op of `program` produces an fp16 tensor.
fn holds_fp16(program: &crate::proto::coreml::mil_spec::Program) -> bool {
    let view = ProgramView::new(program);
    view.types
        .values()
        .any(|t| t.is(crate::proto::coreml::mil_spec::DataType::Float16))
}

/// The metadata keys a package carries about its plan.
pub fn metadata(plan: &Plan) -> Vec<(String, String)> {
    vec![
        (
            "com.edgec.compute_units".to_string(),
            plan.compute_units.core_ml_name().to_string(),
        ),
        (
            "com.edgec.plan.ane_cost_share".to_string(),
            format!("{:.4}", plan.summary.share_on(Unit::Ane)),
        ),
        ("com.edgec.plan.segments".to_string(), plan.summary.segments.to_string()),
    ]
}

/// Plan a package read back from disk (`edgec plan PACKAGE`): for `compute_units`, or those it
/// was planned for, or `all`. The ONNX nodes come from its plan.json, when it has one.
pub fn plan_package(path: &std::path::Path, compute_units: Option<ComputeUnits>) -> crate::Result<Plan> {
    use crate::proto::coreml::model;
    let pkg = crate::coreml::inspect::read_package(path)?;
    let Some(model::Type::MlProgram(program)) = &pkg.model.r#type else {
        return Err(crate::Error::Package {
            path: path.to_path_buf(),
            message: "not an ML Program: only ML Programs can be planned".into(),
        });
    };
    let (onnx_nodes, planned_for) = pkg.plan.as_ref().map(report::read_json).unwrap_or_default();
    let description = pkg.model.description.as_ref();
    let recorded = description
        .and_then(|d| d.metadata.as_ref())
        .and_then(|m| m.user_defined.get("com.edgec.compute_units"))
        .and_then(|s| ComputeUnits::from_name(s));
    let units = compute_units.or(planned_for).or(recorded).unwrap_or_default();
    let context = PlanContext::for_package(program, description, pkg.weight_bytes, onnx_nodes, units);
    Ok(plan(program, &context))
}
