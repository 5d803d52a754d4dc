//! Einsum with one or two operands, lowered to existing IR ops: a diagonal (an index repeated in
//! one operand) is a transpose, a reshape and a gather; an index in no other place is summed
//! out; two operands meet in one batched matmul, each transposed to `[batch.., free.., summed..]`
//! (or `[batch.., summed.., free..]` when that needs no transpose) and flattened to 2-D
//! matrices per batch, and the product is unflattened and transposed to the output's order.

use super::{Importer, NodeCx};
use edgec_passes::ir::{Tensor, ValueId};
use edgec_passes::op::{Op, ReduceKind};

pub const OPS: &[(&str, Importer)] = &[("Einsum", einsum)];

/// An index of the equation: one of the axes an ellipsis stands for (numbered from the left of
/// the broadcast ellipsis shape), or a letter. Ellipsis axes sort first, as in the implicit
/// output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Ellipsis(usize),
    Letter(char),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Ellipsis(k) => write!(f, "ellipsis axis {k}"),
            Label::Letter(c) => write!(f, "{c}"),
        }
    }
}

/// A term of the equation before the ellipsis is expanded.
#[derive(Clone, Copy, PartialEq)]
enum Term {
    Letter(char),
    Ellipsis,
}

/// The equation with every ellipsis expanded and the output made explicit.
struct Equation {
    inputs: Vec<Vec<Label>>,
    output: Vec<Label>,
}

/// One op still to add: its input is the previous step's result, followed by `extra`.
struct Step {
    op: Op,
    extra: Vec<ValueId>,
    suffix: String,
}

/// An operand being rewritten: its labels and shape after the planned steps.
struct Operand {
    value: ValueId,
    labels: Vec<Label>,
    shape: Vec<usize>,
    steps: Vec<Step>,
    name: &'static str,
}

impl Operand {
    fn push(&mut self, op: Op, extra: Vec<ValueId>, what: &str) {
        let suffix = format!("{}_{what}", self.name);
        self.steps.push(Step { op, extra, suffix });
    }

    fn transpose(&mut self, perm: Vec<usize>) {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return;
        }
        self.labels = perm.iter().map(|&p| self.labels[p]).collect();
        self.shape = perm.iter().map(|&p| self.shape[p]).collect();
        self.push(Op::Transpose { perm }, Vec::new(), "transposed");
    }

    /// Reshape without relabelling (the caller sets the labels).
    fn reshape(&mut self, shape: Vec<usize>, what: &str) {
        if shape != self.shape {
            self.shape = shape.clone();
            self.push(Op::Reshape { shape }, Vec::new(), what);
        }
    }

    fn position(&self, label: Label) -> Option<usize> {
        self.labels.iter().position(|&l| l == label)
    }
}

/// Einsum (opset 12): the equation is parsed with its implicit output form and ellipses; one or
/// two operands, any index repeated within an operand taken as a diagonal. Float operands only
/// (the matmul and the reductions are float ops).
fn einsum(cx: &mut NodeCx) -> Result<Vec<ValueId>, String> {
    let equation = cx.attr_string("equation", "")?;
    einsum_equation(cx, &equation).map_err(|e| format!("equation {equation:?}: {e}"))
}

fn einsum_equation(cx: &mut NodeCx, equation: &str) -> Result<Vec<ValueId>, String> {
    let values = (0..cx.input_count())
        .map(|i| cx.required_input(i))
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() || values.len() > 2 {
        return Err(format!("{} operands are not supported (one or two only)", values.len()));
    }
    let dtype = cx.ty(values[0]).dtype;
    for &v in &values {
        let t = cx.ty(v);
        if !t.dtype.is_float() || t.dtype != dtype {
            return Err(format!("operands must share one float type, got {t}"));
        }
    }
    let ranks: Vec<usize> = values.iter().map(|&v| cx.ty(v).rank()).collect();
    let eq = parse(equation, &ranks)?;
    let names = ["lhs", "rhs"];
    let mut operands = Vec::with_capacity(values.len());
    for (k, (&value, labels)) in values.iter().zip(eq.inputs).enumerate() {
        let mut op = Operand {
            value,
            labels,
            shape: cx.ty(value).shape.clone(),
            steps: Vec::new(),
            name: names[k],
        };
        take_diagonals(cx, &mut op)?;
        operands.push(op);
    }
    match operands.len() {
        1 => {
            let mut a = operands.remove(0);
            sum_out(&mut a, |l| eq.output.contains(&l));
            let perm = eq
                .output
                .iter()
                .map(|&l| a.position(l).ok_or("an output index is missing from the operand"))
                .collect::<Result<Vec<_>, _>>()?;
            a.transpose(perm);
            emit(cx, a.value, a.steps, true).map(|v| vec![v])
        }
        _ => {
            let b = operands.remove(1);
            let a = operands.remove(0);
            contract(cx, a, b, &eq.output).map(|v| vec![v])
        }
    }
}

/// Parse `equation` for operands of `ranks`: letters `a-zA-Z`, at most one `...` per term,
/// spaces ignored. Without `->`, the output is the ellipsis axes followed by the letters that
/// appear exactly once, in alphabetical order.
fn parse(equation: &str, ranks: &[usize]) -> Result<Equation, String> {
    let compact: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match compact.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (compact.as_str(), None),
    };
    let terms = lhs.split(',').map(parse_term).collect::<Result<Vec<_>, _>>()?;
    if terms.len() != ranks.len() {
        return Err(format!("{} operand terms for {} inputs", terms.len(), ranks.len()));
    }
    // Axes each operand's ellipsis stands for, and their broadcast count.
    let mut ellipsis_ranks = Vec::with_capacity(terms.len());
    for (k, (term, &rank)) in terms.iter().zip(ranks).enumerate() {
        let letters = term.iter().filter(|t| **t != Term::Ellipsis).count();
        let has_ellipsis = term.contains(&Term::Ellipsis);
        if letters > rank || (!has_ellipsis && letters != rank) {
            return Err(format!(
                "operand {k} has rank {rank} but its term has {letters} indices"
            ));
        }
        ellipsis_ranks.push(rank - letters);
    }
    let ellipsis = ellipsis_ranks.iter().copied().max().unwrap_or(0);
    let expand = |term: &[Term], own: usize| -> Vec<Label> {
        let mut labels = Vec::new();
        for t in term {
            match *t {
                Term::Letter(c) => labels.push(Label::Letter(c)),
                Term::Ellipsis => labels.extend((ellipsis - own..ellipsis).map(Label::Ellipsis)),
            }
        }
        labels
    };
    let inputs: Vec<Vec<Label>> = terms
        .iter()
        .zip(&ellipsis_ranks)
        .map(|(t, &own)| expand(t, own))
        .collect();
    let output = match rhs {
        Some(r) => {
            let output = expand(&parse_term(r)?, ellipsis);
            for (i, l) in output.iter().enumerate() {
                if output[..i].contains(l) {
                    return Err(format!("output index {l} appears twice"));
                }
                if !inputs.iter().any(|labels| labels.contains(l)) {
                    return Err(format!("output index {l} appears in no operand"));
                }
            }
            output
        }
        None => {
            let mut letters: Vec<Label> = inputs
                .iter()
                .flatten()
                .copied()
                .filter(|l| matches!(l, Label::Letter(_)))
                .collect();
            letters.sort_unstable();
            let once = |l: &Label| letters.iter().filter(|m| *m == l).count() == 1;
            let mut output: Vec<Label> = (0..ellipsis).map(Label::Ellipsis).collect();
            output.extend(letters.iter().copied().filter(once));
            output
        }
    };
    Ok(Equation { inputs, output })
}

fn parse_term(term: &str) -> Result<Vec<Term>, String> {
    let mut out = Vec::new();
    let mut rest = term;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("...") {
            if out.contains(&Term::Ellipsis) {
                return Err(format!("term {term:?} has more than one ellipsis"));
            }
            out.push(Term::Ellipsis);
            rest = after;
        } else if c.is_ascii_alphabetic() {
            out.push(Term::Letter(c));
            rest = &rest[1..];
        } else {
            return Err(format!("unexpected {c:?} in term {term:?}"));
        }
    }
    Ok(out)
}

/// Replace every index repeated within the operand by its diagonal: the two axes moved last,
/// merged, and every `n+1`-th element gathered.
fn take_diagonals(cx: &mut NodeCx, op: &mut Operand) -> Result<(), String> {
    while let Some((p, q)) = first_repeat(&op.labels) {
        let (label, n) = (op.labels[p], op.shape[p]);
        if op.shape[q] != n {
            return Err(format!(
                "repeated index {label} spans axes of sizes {n} and {}",
                op.shape[q]
            ));
        }
        let rank = op.labels.len();
        let mut perm: Vec<usize> = (0..rank).filter(|&i| i != p && i != q).collect();
        perm.extend([p, q]);
        op.transpose(perm);
        let mut shape = op.shape[..rank - 2].to_vec();
        shape.push(n * n);
        op.reshape(shape.clone(), "square");
        let indices = (0..n)
            .map(|k| i32::try_from(k * (n + 1)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("a diagonal of size {n} is too large"))?;
        let indices = cx.add_const_step(
            Tensor::from_i32(vec![n], &indices),
            &format!("{}_diagonal_indices", op.name),
        );
        op.push(Op::Gather { axis: rank - 2 }, vec![indices], "diagonal");
        shape[rank - 2] = n;
        op.shape = shape;
        op.labels.truncate(rank - 2);
        op.labels.push(label);
    }
    Ok(())
}

fn first_repeat(labels: &[Label]) -> Option<(usize, usize)> {
    (0..labels.len()).find_map(|q| labels[..q].iter().position(|&l| l == labels[q]).map(|p| (p, q)))
}

/// Sum out (without keeping) the axes whose label `keep` refuses.
fn sum_out(op: &mut Operand, keep: impl Fn(Label) -> bool) {
    let axes: Vec<usize> = (0..op.labels.len()).filter(|&i| !keep(op.labels[i])).collect();
    if axes.is_empty() {
        return;
    }
    op.push(
        Op::Reduce {
            kind: ReduceKind::Sum,
            axes: axes.clone(),
            keep_dims: false,
        },
        Vec::new(),
        "summed",
    );
    op.shape = without(&op.shape, &axes);
    op.labels = without(&op.labels, &axes);
}

/// The elements of `v` but those at `axes`.
fn without<T: Copy>(v: &[T], axes: &[usize]) -> Vec<T> {
    (0..v.len()).filter(|i| !axes.contains(i)).map(|i| v[i]).collect()
}

/// Two operands: indices in both and in the output are batch axes (sizes equal or one of them
/// 1, which the matmul broadcasts), in both but not in the output are contracted, and in one only
/// are free (summed out first when the output lacks them).
fn contract(cx: &mut NodeCx, mut a: Operand, mut b: Operand, output: &[Label]) -> Result<ValueId, String> {
    let (a_labels, b_labels) = (a.labels.clone(), b.labels.clone());
    sum_out(&mut a, |l| output.contains(&l) || b_labels.contains(&l));
    sum_out(&mut b, |l| output.contains(&l) || a_labels.contains(&l));
    let in_a = |l: &Label| a.labels.contains(l);
    let in_b = |l: &Label| b.labels.contains(l);
    let batch: Vec<Label> = output.iter().copied().filter(|l| in_a(l) && in_b(l)).collect();
    let left: Vec<Label> = output.iter().copied().filter(|l| in_a(l) && !in_b(l)).collect();
    let right: Vec<Label> = output.iter().copied().filter(|l| !in_a(l) && in_b(l)).collect();
    let summed: Vec<Label> = a
        .labels
        .iter()
        .copied()
        .filter(|l| in_b(l) && !output.contains(l))
        .collect();

    let size = |op: &Operand, l: Label| op.position(l).map_or(1, |p| op.shape[p]);
    let mut batch_shape = Vec::with_capacity(batch.len());
    for &l in &batch {
        let (m, n) = (size(&a, l), size(&b, l));
        if m != n && m != 1 && n != 1 {
            return Err(format!("index {l} has sizes {m} and {n}"));
        }
        batch_shape.push(m.max(n));
    }
    for &l in &summed {
        let (m, n) = (size(&a, l), size(&b, l));
        if m != n {
            return Err(format!("summed index {l} has sizes {m} and {n}"));
        }
    }
    let left_shape: Vec<usize> = left.iter().map(|&l| size(&a, l)).collect();
    let right_shape: Vec<usize> = right.iter().map(|&l| size(&b, l)).collect();
    let k: usize = summed.iter().map(|&l| size(&a, l)).product();
    let (m, n) = (left_shape.iter().product(), right_shape.iter().product());
    let transpose_a = to_matrix(&mut a, &batch, &left, &summed, m, k);
    let transpose_b = to_matrix(&mut b, &batch, &summed, &right, k, n);

    let a_value = emit(cx, a.value, a.steps, false)?;
    let b_value = emit(cx, b.value, b.steps, false)?;
    let mut steps = vec![Step {
        op: Op::MatMul {
            transpose_a,
            transpose_b,
        },
        extra: vec![b_value],
        suffix: "matmul".into(),
    }];
    let mut product_shape = batch_shape.clone();
    product_shape.extend([m, n]);
    let mut shape = batch_shape;
    shape.extend(left_shape);
    shape.extend(right_shape);
    if shape != product_shape {
        steps.push(Step {
            op: Op::Reshape { shape },
            extra: Vec::new(),
            suffix: "unflattened".into(),
        });
    }
    let labels: Vec<Label> = batch.iter().chain(&left).chain(&right).copied().collect();
    let perm = output
        .iter()
        .map(|l| {
            labels
                .iter()
                .position(|m| m == l)
                .ok_or("an output index is missing from the product")
        })
        .collect::<Result<Vec<_>, _>>()?;
    if perm.iter().enumerate().any(|(i, &p)| i != p) {
        steps.push(Step {
            op: Op::Transpose { perm },
            extra: Vec::new(),
            suffix: "transposed".into(),
        });
    }
    emit(cx, a_value, steps, true)
}

/// Transpose and reshape `op` to `[batch.., rows, cols]` (the row indices flattened, then the
/// column ones), or to `[batch.., cols, rows]` when that order needs no transpose and the first
/// does; returns whether it is the swapped form.
fn to_matrix(op: &mut Operand, batch: &[Label], rows: &[Label], cols: &[Label], r: usize, c: usize) -> bool {
    let positions = |groups: [&[Label]; 2]| -> Vec<usize> {
        groups
            .iter()
            .flat_map(|g| g.iter())
            .filter_map(|&l| op.position(l))
            .collect()
    };
    let identity = |perm: &[usize]| perm.iter().enumerate().all(|(i, &p)| i == p);
    let mut straight = positions([batch, rows]);
    straight.extend(positions([cols, &[]]));
    let mut swapped = positions([batch, cols]);
    swapped.extend(positions([rows, &[]]));
    let swap = !identity(&straight) && identity(&swapped);
    op.transpose(if swap { swapped } else { straight });
    let mut shape: Vec<usize> = batch
        .iter()
        .map(|&l| op.position(l).map_or(1, |p| op.shape[p]))
        .collect();
    shape.extend(if swap { [c, r] } else { [r, c] });
    op.reshape(shape, "matrix");
    swap
}

/// Add `steps` starting from `value`; with `last`, the final op produces the node's output (an
/// identity if there are no steps).
fn emit(cx: &mut NodeCx, value: ValueId, steps: Vec<Step>, last: bool) -> Result<ValueId, String> {
    if steps.is_empty() {
        return if last {
            Ok(cx.add(Op::Identity, vec![value])?[0])
        } else {
            Ok(value)
        };
    }
    let count = steps.len();
    let mut value = value;
    for (i, step) in steps.into_iter().enumerate() {
        let mut inputs = vec![value];
        inputs.extend(step.extra);
        value = if last && i + 1 == count {
            cx.add(step.op, inputs)?[0]
        } else {
            cx.add_step(step.op, inputs, &step.suffix)?
        };
    }
    Ok(value)
}
