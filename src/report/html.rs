//! The report as one self-contained HTML page (`--report FILE.html`): inline CSS and script, no
//! fonts, images or requests, so it opens anywhere, offline, years later.
//!
//! Everything visible is rendered here, so the page reads without JavaScript: the summary, the
//! per-unit cost bar, the segment timeline, and the op, weight and pass tables. The page also
//! embeds the JSON report (`<script type="application/json" id="edgec-report">`, the document
//! `--report FILE.json` writes); `report.js` reads it to sort the tables (a click on a header)
//! and to filter the op table by unit or name. Every string from the model is escaped: text and
//! attributes as HTML, the embedded JSON with `<`, `>` and `&` as `\u` escapes, so no name can
//! close the script element.

use super::{human_size, json, Report};
use crate::plan::{Plan, Unit};
use edgec_passes::compressed::Scheme;
use std::fmt::{self, Write};

const TEMPLATE: &str = include_str!("report.html");
const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// The page.
pub fn render(report: &Report) -> String {
    let mut body = String::new();
    // Writing to a String cannot fail.
    let _ = write_body(&mut body, report);
    let title = format!("{} · edgec report", report.model_name());
    fill(
        TEMPLATE,
        &[
            ("title", &escape(&title)),
            ("style", STYLE),
            ("body", &body),
            ("data", &script_json(&json::to_json(report))),
            ("script", SCRIPT),
        ],
    )
}

fn write_body(out: &mut String, report: &Report) -> fmt::Result {
    header(out, report)?;
    summary(out, report)?;
    plan(out, &report.compile.plan)?;
    ops(out, &report.compile.plan)?;
    weights(out, report)?;
    steps(out, report)?;
    precision(out, report)?;
    writeln!(
        out,
        "<footer>Written by edgec {}. The compute plan is a prediction from published facts \
         (docs/placement.md), not a measurement on a device.</footer>",
        env!("CARGO_PKG_VERSION")
    )
}

fn header(out: &mut String, report: &Report) -> fmt::Result {
    let options = report.options;
    writeln!(out, "<header>")?;
    writeln!(out, "<p class=\"eyebrow\">edgec compile report</p>")?;
    writeln!(out, "<h1>{}</h1>", Text(&report.model_name()))?;
    writeln!(
        out,
        "<p class=\"path\">{} <span class=\"arrow\">→</span> {}</p>",
        Text(&report.model.display().to_string()),
        Text(&report.package.display().to_string())
    )?;
    writeln!(out, "<ul class=\"tags\">")?;
    for (name, value) in [
        ("target", report.target_name().to_string()),
        ("deployment target", options.deployment_target.to_string()),
        ("precision", report.precision_name().to_string()),
        (
            "compute units",
            report.compile.plan.compute_units.core_ml_name().to_string(),
        ),
    ] {
        writeln!(out, "<li><span>{name}</span> {}</li>", Text(&value))?;
    }
    writeln!(out, "</ul>\n</header>")
}

fn summary(out: &mut String, report: &Report) -> fmt::Result {
    let counts = report.op_counts();
    let sizes = report.weight_sizes();
    let plan = &report.compile.plan.summary;
    writeln!(out, "<div id=\"summary\" class=\"cards\">")?;
    let card = |out: &mut String, label: &str, value: &str, detail: &str| {
        writeln!(
            out,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{}</div><div class=\"detail\">{}</div></div>",
            Text(value),
            Text(detail)
        )
    };
    card(out, "ops", &format!("{} MIL ops", counts.mil_ops), &counts.to_string())?;
    card(
        out,
        "weights",
        &human_size(sizes.stored_bytes),
        &format!(
            "from {} dense; {} of {} tensors compressed; weight.bin {}",
            human_size(sizes.dense_bytes),
            sizes.compressed,
            sizes.tensors,
            human_size(sizes.weight_file_bytes)
        ),
    )?;
    card(
        out,
        "on the Neural Engine",
        &percent(plan.share_on(Unit::Ane)),
        &format!(
            "of the estimated cost; {} of {} ops; {} segment(s), {} transition(s)",
            plan.ops_on(Unit::Ane),
            plan.ops,
            plan.segments,
            plan.transitions
        ),
    )?;
    card(
        out,
        "compile time",
        &seconds(report.duration().as_secs_f64()),
        &format!("{} steps", report.compile.steps.len()),
    )?;
    writeln!(out, "</div>")?;
    writeln!(out, "<dl class=\"facts\">")?;
    let sha = report.source_sha256().unwrap_or("not recorded");
    for (term, value) in [
        ("model", report.model.display().to_string()),
        ("package", report.package.display().to_string()),
        ("source SHA-256", sha.to_string()),
        ("edgec", env!("CARGO_PKG_VERSION").to_string()),
    ] {
        writeln!(out, "<dt>{term}</dt><dd><code>{}</code></dd>", Text(&value))?;
    }
    writeln!(out, "</dl>")
}

/// `850 ms`, `12.34 s`.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn unit_class(unit: Unit) -> &'static str {
    unit.name()
}

fn unit_title(unit: Unit) -> &'static str {
    match unit {
        Unit::Ane => "Neural Engine",
        Unit::Gpu => "GPU",
        Unit::Cpu => "CPU",
    }
}

const ROUNDING: f64 = 1e-9;

/// `12.3%`; `<0.1%` and `>99.9%` for shares that would round to all or nothing but are not.
fn percent(share: f64) -> String {
    match share {
        // Shares are sums of per-op shares: within rounding of 0 or 1 is exactly that.
        s if s <= ROUNDING => "0%".into(),
        s if s < 0.001 => "<0.1%".into(),
        s if s > 0.999 && s < 1.0 - ROUNDING => ">99.9%".into(),
        s => format!("{:.1}%", s * 100.0),
    }
}

fn plan(out: &mut String, plan: &Plan) -> fmt::Result {
    let s = &plan.summary;
    writeln!(out, "<section id=\"plan\">\n<h2>Compute plan</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Where Core ML is predicted to run each op under computeUnits = <code>{}</code>, \
         with each unit's share of the estimated cost (rules version {}). A prediction, not a measurement.</p>",
        plan.compute_units.core_ml_name(),
        crate::plan::rules::RULES_VERSION
    )?;
    writeln!(out, "<div class=\"costbar\" id=\"cost-bar\">")?;
    for unit in Unit::ALL.into_iter().filter(|&u| s.share_on(u) > 0.0) {
        let share = s.share_on(unit);
        writeln!(
            out,
            "<div class=\"part {}\" style=\"width:{:.4}%\" title=\"{}: {} of the cost, {} ops\"><span>{} {}</span></div>",
            unit_class(unit),
            share * 100.0,
            unit_title(unit),
            percent(share),
            s.ops_on(unit),
            unit.label(),
            percent(share)
        )?;
    }
    writeln!(out, "</div>\n<ul class=\"legend\">")?;
    for unit in Unit::ALL {
        writeln!(
            out,
            "<li><i class=\"swatch {}\"></i>{} <b>{}</b> of cost · {} op{}</li>",
            unit_class(unit),
            unit_title(unit),
            percent(s.share_on(unit)),
            s.ops_on(unit),
            if s.ops_on(unit) == 1 { "" } else { "s" }
        )?;
    }
    writeln!(out, "</ul>")?;
    timeline(out, plan)?;
    writeln!(out, "</section>")
}

/// A timeline block is labelled when it holds at least 1/LABEL_MIN_SHARE of the ops.
const LABEL_MIN_SHARE: usize = 16;

/// The segments in program order, each as wide as its op count, linking to its first op.
fn timeline(out: &mut String, plan: &Plan) -> fmt::Result {
    let index_of = |name: &str| plan.ops.iter().position(|o| o.name == name);
    writeln!(
        out,
        "<h3>Segments <span class=\"count\">{}</span></h3>\n<p class=\"note\">Connected groups of ops on one unit, \
         in program order, as wide as their op count; a click goes to the first op. {} transition(s) between units.</p>",
        plan.segments.len(),
        plan.summary.transitions
    )?;
    writeln!(out, "<div class=\"timeline\" id=\"timeline\">")?;
    for (i, g) in plan.segments.iter().enumerate() {
        let target = index_of(&g.first_op).map(|k| format!("#op-{k}")).unwrap_or_default();
        let title = format!(
            "segment {}: {} · {} op{} · {} of cost · {} … {}",
            i + 1,
            unit_title(g.unit),
            g.ops,
            if g.ops == 1 { "" } else { "s" },
            percent(g.cost_share),
            g.first_op,
            g.last_op
        );
        // A label only where it fits: the tooltip says the rest.
        let label = if g.ops * LABEL_MIN_SHARE >= plan.ops.len() {
            format!("<span>{} {}</span>", g.unit.label(), g.ops)
        } else {
            String::new()
        };
        writeln!(
            out,
            "<a class=\"block {}\" href=\"{target}\" style=\"flex-grow:{}\" title=\"{}\">{label}</a>",
            unit_class(g.unit),
            g.ops,
            Text(&title),
        )?;
    }
    writeln!(out, "</div>")?;
    let open = if plan.segments.len() <= 12 { " open" } else { "" };
    writeln!(
        out,
        "<details{open}><summary>The segments as a table</summary>\n<table class=\"segments\">\n<thead><tr><th class=\"num\">#</th><th>unit</th><th class=\"num\">ops</th><th class=\"num\">cost</th><th>first op</th><th>last op</th></tr></thead>\n<tbody>"
    )?;
    for (i, g) in plan.segments.iter().enumerate() {
        writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            i + 1,
            unit_badge(g.unit),
            g.ops,
            percent(g.cost_share),
            Text(&g.first_op),
            Text(&g.last_op)
        )?;
    }
    writeln!(out, "</tbody>\n</table>\n</details>")
}

fn unit_badge(unit: Unit) -> String {
    format!(
        "<span class=\"unit {}\" title=\"{}\">{}</span>",
        unit_class(unit),
        unit_title(unit),
        unit.label()
    )
}

/// A header the script can sort by `key` (a field of the table's JSON rows, or one report.js
/// derives).
fn sortable(label: &str, key: &str, numeric: bool) -> String {
    let class = if numeric { " class=\"num\"" } else { "" };
    format!("<th{class} data-key=\"{key}\">{label}</th>")
}

fn ops(out: &mut String, plan: &Plan) -> fmt::Result {
    writeln!(
        out,
        "<section id=\"ops\">\n<h2>Ops <span class=\"count\">{}</span></h2>",
        plan.ops.len()
    )?;
    writeln!(
        out,
        "<p class=\"note\">Every non-constant MIL op in program order with its predicted unit, the units that could \
         run it, its share of the estimated cost, the ONNX nodes it computes and the rules that decided. \
         Click a header to sort.</p>"
    )?;
    // The filters need the script: it shows them.
    writeln!(
        out,
        "<div class=\"toolbar\" id=\"op-filters\" hidden><span class=\"units\"><button type=\"button\" data-unit=\"\" aria-pressed=\"true\">all</button>"
    )?;
    for unit in Unit::ALL.into_iter().filter(|&u| plan.summary.ops_on(u) > 0) {
        writeln!(
            out,
            "<button type=\"button\" data-unit=\"{}\" aria-pressed=\"false\">{} <small>{}</small></button>",
            unit.name(),
            unit.label(),
            plan.summary.ops_on(unit)
        )?;
    }
    writeln!(
        out,
        "</span><input type=\"search\" id=\"op-search\" placeholder=\"filter by op, type or ONNX node\" aria-label=\"filter ops\"><span class=\"shown\" id=\"op-shown\"></span></div>"
    )?;
    writeln!(
        out,
        "<div class=\"scroll\"><table id=\"op-table\" class=\"sortable\" data-rows=\"ops\">"
    )?;
    writeln!(
        out,
        "<thead><tr>{}{}{}{}{}{}{}{}</tr></thead>\n<tbody>",
        sortable("#", "index", true),
        sortable("op", "name", false),
        sortable("type", "type", false),
        sortable("unit", "unit", false),
        sortable("supported", "supported", false),
        sortable("cost", "cost_share", true),
        sortable("ONNX nodes", "onnx_nodes", false),
        sortable("reasons", "reasons", false)
    )?;
    let max_share = plan.ops.iter().map(|o| o.cost_share).fold(0.0, f64::max);
    for (i, op) in plan.ops.iter().enumerate() {
        let supported: Vec<&str> = op.supported.iter().map(|u| u.label()).collect();
        write!(
            out,
            "<tr id=\"op-{i}\" data-i=\"{i}\"><td class=\"num\">{}</td><td class=\"name\"><code>{}</code></td><td>{}</td><td>{}</td><td class=\"supported\">{}</td>",
            i + 1,
            Text(&op.name),
            Text(&op.op_type),
            unit_badge(op.unit),
            supported.join(" ")
        )?;
        write!(
            out,
            "<td class=\"num\">{}{}</td>",
            minibar(op.cost_share, max_share, unit_class(op.unit)),
            percent(op.cost_share)
        )?;
        match op.onnx_nodes.split_first() {
            None => write!(out, "<td class=\"muted\">—</td>")?,
            Some((own, fused)) => {
                write!(out, "<td class=\"name\"><code>{}</code>", Text(own))?;
                if !fused.is_empty() {
                    write!(out, "<div class=\"fused\">+ {}</div>", Text(&fused.join(", ")))?;
                }
                write!(out, "</td>")?;
            }
        }
        if op.reasons.is_empty() {
            writeln!(out, "<td class=\"muted\">—</td></tr>")?;
        } else {
            write!(out, "<td><ul class=\"reasons\">")?;
            for r in &op.reasons {
                write!(out, "<li><code>{}</code> {}</li>", Text(r.rule), Text(&r.text))?;
            }
            writeln!(out, "</ul></td></tr>")?;
        }
    }
    writeln!(out, "</tbody>\n</table></div>\n</section>")
}

/// A bar as long as `value` against `max` (a thin one still shows for tiny values).
/// (`class` may name a unit, to colour it).
fn minibar(value: f64, max: f64, class: &str) -> String {
    let width = if max > 0.0 {
        (value / max * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    format!("<span class=\"minibar {class}\"><i style=\"width:{width:.1}%\"></i></span>")
}

/// The SNR bars' full length (8-bit palettization of testdata's compressible reaches 45 dB, 4-bit 20).
const SNR_SCALE_DB: f64 = 60.0;

fn weights(out: &mut String, report: &Report) -> fmt::Result {
    let rows = &report.compile.weights;
    let sizes = report.weight_sizes();
    writeln!(
        out,
        "<section id=\"weights\">\n<h2>Weights <span class=\"count\">{}</span></h2>",
        rows.len()
    )?;
    writeln!(
        out,
        "<p class=\"note\">One row per float constant in the weight file: how it is stored, its size dense and as \
         stored, and the signal-to-noise ratio of the stored values against the dense ones (higher is closer). \
         {} → {} ({} of {} compressed).</p>",
        human_size(sizes.dense_bytes),
        human_size(sizes.stored_bytes),
        sizes.compressed,
        sizes.tensors
    )?;
    if let Some(guard) = &report.compile.compression_guard {
        let class = match (guard.reached(), guard.left_dense.is_empty()) {
            (false, _) => "warn",
            (true, false) => "acted",
            (true, true) => "ok",
        };
        writeln!(
            out,
            "<div class=\"guard {class}\"><p>{}</p>",
            Text(&crate::compression_guard::summary(guard))
        )?;
        writeln!(
            out,
            "<table class=\"cosines\"><thead><tr><th>output</th><th class=\"num\">cosine, all requested</th><th class=\"num\">cosine, package</th></tr></thead><tbody>"
        )?;
        for ((output, requested), (_, package)) in guard.cosine_requested.iter().zip(&guard.cosine_package) {
            writeln!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{requested:.6}</td><td class=\"num\">{package:.6}</td></tr>",
                Text(output)
            )?;
        }
        writeln!(out, "</tbody></table></div>")?;
    }
    writeln!(
        out,
        "<div class=\"scroll\"><table id=\"weight-table\" class=\"sortable\" data-rows=\"weights\">"
    )?;
    writeln!(
        out,
        "<thead><tr>{}{}{}{}{}{}{}{}{}{}</tr></thead>\n<tbody>",
        sortable("#", "index", true),
        sortable("weight", "name", false),
        sortable("consumer", "consumer", false),
        sortable("shape", "elements", true),
        sortable("scheme", "scheme", false),
        sortable("dense", "bytes_before", true),
        sortable("stored", "bytes_after", true),
        sortable("ratio", "ratio", true),
        sortable("SNR dB", "snr_db", true),
        sortable("layout / note", "note", false)
    )?;
    for (i, r) in rows.iter().enumerate() {
        let scheme_class = if r.scheme == Scheme::Dense {
            "scheme dense"
        } else {
            "scheme"
        };
        let shape: Vec<String> = r.shape.iter().map(usize::to_string).collect();
        let ratio = if r.bytes_after > 0 {
            format!("{:.1}×", r.bytes_before as f64 / r.bytes_after as f64)
        } else {
            "—".into()
        };
        let snr = if r.snr_db.is_finite() {
            format!("{}{:.1}", minibar(r.snr_db, SNR_SCALE_DB, ""), r.snr_db)
        } else {
            "exact".into()
        };
        let note = [r.layout.as_str(), r.note.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        writeln!(
            out,
            "<tr data-i=\"{i}\"><td class=\"num\">{}</td><td class=\"name\"><code>{}</code></td><td>{}<div class=\"fused\">{}</div></td>\
             <td class=\"shape\"><code>{}</code></td><td><span class=\"{scheme_class}\">{}</span></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{ratio}</td><td class=\"num\">{snr}</td><td>{}</td></tr>",
            i + 1,
            Text(&r.name),
            Text(&r.consumer),
            Text(&r.origin),
            shape.join("×"),
            r.scheme,
            human_size(r.bytes_before as u64),
            human_size(r.bytes_after as u64),
            Text(&note)
        )?;
    }
    writeln!(out, "</tbody>\n</table></div>\n</section>")
}

fn steps(out: &mut String, report: &Report) -> fmt::Result {
    let steps = &report.compile.steps;
    writeln!(
        out,
        "<section id=\"steps\">\n<h2>Passes <span class=\"count\">{}</span></h2>",
        steps.len()
    )?;
    writeln!(
        out,
        "<p class=\"note\">Every step of the compile in the order it ran, with the live IR nodes after it \
         (0 for steps outside the IR).</p>"
    )?;
    writeln!(out, "<table id=\"step-table\" class=\"sortable\" data-rows=\"steps\">")?;
    writeln!(
        out,
        "<thead><tr>{}{}{}{}</tr></thead>\n<tbody>",
        sortable("#", "index", true),
        sortable("step", "name", false),
        sortable("time", "seconds", true),
        sortable("nodes after", "nodes_after", true)
    )?;
    let longest = steps.iter().map(|s| s.duration.as_secs_f64()).fold(0.0, f64::max);
    for (i, s) in steps.iter().enumerate() {
        let seconds = s.duration.as_secs_f64();
        writeln!(
            out,
            "<tr data-i=\"{i}\"><td class=\"num\">{}</td><td><code>{}</code></td><td class=\"num\">{}{:.2} ms</td><td class=\"num\">{}</td></tr>",
            i + 1,
            Text(&s.name),
            minibar(seconds, longest, ""),
            seconds * 1e3,
            s.nodes_after
        )?;
    }
    writeln!(out, "</tbody>\n</table>\n</section>")
}

/// fp32 ops, range fixes, calibration and warnings, when there are any.
fn precision(out: &mut String, report: &Report) -> fmt::Result {
    let compile = report.compile;
    let fp32_ops = &compile.package.fp32_ops;
    let decisions = &compile.precision_log;
    if fp32_ops.is_empty() && decisions.is_empty() && compile.calibration.is_none() && compile.warnings.is_empty() {
        return Ok(());
    }
    writeln!(out, "<section id=\"precision\">\n<h2>Precision and warnings</h2>")?;
    for w in &compile.warnings {
        writeln!(out, "<p class=\"warning\">{}</p>", Text(w))?;
    }
    if let Some(c) = &compile.calibration {
        writeln!(
            out,
            "<p>Calibration on {}: {} op(s) kept in fp32 after {} runs; every output at cosine ≥ {} {}.</p>",
            Text(&c.inputs),
            c.calibrated_ops,
            c.runs,
            c.min_cosine,
            if c.reached { "reached" } else { "<b>not reached</b>" }
        )?;
    }
    if !fp32_ops.is_empty() {
        writeln!(
            out,
            "<h3>Ops kept in fp32 <span class=\"count\">{}</span></h3>\n<table><thead><tr><th>op</th><th>ONNX node</th><th>why</th></tr></thead><tbody>",
            fp32_ops.len()
        )?;
        for o in fp32_ops {
            writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                Text(&o.op),
                Text(&o.node),
                Text(&o.reason)
            )?;
        }
        writeln!(out, "</tbody></table>")?;
    }
    if !decisions.is_empty() {
        writeln!(
            out,
            "<h3>fp16 decisions <span class=\"count\">{}</span></h3>\n<ul class=\"decisions\">",
            decisions.len()
        )?;
        for d in decisions {
            writeln!(out, "<li>{}</li>", Text(&d.to_string()))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

/// Text escaped for HTML element content and quoted attribute values.
struct Text<'a>(&'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

fn escape(text: &str) -> String {
    Text(text).to_string()
}

/// JSON that is safe inside a `<script>` element: `<`, `>` and `&` occur in JSON only inside
/// strings, where `\u003c` and friends mean the same characters, so no `</script>` or `<!--`
/// can appear and `JSON.parse` returns the document unchanged.
fn script_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// `template` with every `{{key}}` replaced by its value, in one pass: a value is never
/// scanned for keys itself (a model named `{{data}}` stays a name).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        let key = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match values.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 4 + len]),
        }
        rest = &rest[start + 4 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            escape(r#"</script><b a="x">&'"#),
            "&lt;/script&gt;&lt;b a=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("plain/conv.weight:0 — ü"), "plain/conv.weight:0 — ü");
    }

    #[test]
    fn embedded_json_cannot_close_its_script_and_parses_back() {
        let value = serde_json::json!({ "name": "</script><!-- & -->" });
        let text = script_json(&value);
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), value);
    }

    #[test]
    fn the_template_is_filled_in_one_pass() {
        let filled = fill("<{{a}}|{{b}}|{{c}}>", &[("a", "{{b}}"), ("b", "2")]);
        assert_eq!(filled, "<{{b}}|2|{{c}}>");
    }

    #[test]
    fn shares_too_small_to_print_are_not_zero() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0004), "<0.1%");
        assert_eq!(percent(0.978), "97.8%");
        assert_eq!(percent(0.99996), ">99.9%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(1.0 - 1e-12), "100.0%");
    }
}
