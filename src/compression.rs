//! `--weights [SELECTOR=]SCHEME`: parsing the rules, checking them against the deployment
//! target, and the weight report's text and JSON. The algorithms are in
//! `edgec_passes::compress`, the pass in `edgec_passes::passes::compress_weights`, the emission
//! in `coreml::lower::compressed`.

use crate::coreml::DeploymentTarget;
pub use edgec_passes::compressed::{Family, Scheme, Selector, WeightReport, WeightRule};

/// Parse one `--weights` value.
pub fn parse_rule(text: &str) -> Result<WeightRule, String> {
    let (selector, scheme) = match text.rsplit_once('=') {
        Some((sel, scheme)) => (parse_selector(sel)?, scheme),
        None => (Selector::All, text),
    };
    Ok(WeightRule {
        selector,
        scheme: parse_scheme(scheme)?,
    })
}

fn parse_selector(text: &str) -> Result<Selector, String> {
    Ok(match text {
        "conv" => Selector::Family(Family::Conv),
        "linear" => Selector::Family(Family::Linear),
        "matmul" => Selector::Family(Family::Matmul),
        "embedding" => Selector::Family(Family::Embedding),
        _ => match text.strip_prefix("name:") {
            Some(glob) if !glob.is_empty() => Selector::Name(glob.to_string()),
            _ => {
                return Err(format!(
                    "unknown weight selector {text:?}: use conv, linear, matmul, embedding or name:GLOB"
                ))
            }
        },
    })
}

fn parse_scheme(text: &str) -> Result<Scheme, String> {
    let bad = || {
        format!(
            "unknown weight scheme {text:?}: use fp16, fp32, palettize:N (N in 1,2,3,4,6,8), palettize:N:gG, int8, int8:bB or int4:bB"
        )
    };
    let number = |s: &str, prefix: char| -> Result<usize, String> {
        s.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .ok_or_else(bad)
    };
    let parts: Vec<&str> = text.split(':').collect();
    Ok(match parts.as_slice() {
        ["fp16"] | ["fp32"] => Scheme::Dense,
        ["palettize", n] | ["palettize", n, _] => {
            let bits: u32 = n.parse().map_err(|_| bad())?;
            if ![1, 2, 3, 4, 6, 8].contains(&bits) {
                return Err(format!("palettize:{bits}: Core ML LUTs have 1, 2, 3, 4, 6 or 8 bits"));
            }
            let group = match parts.get(2) {
                Some(g) => Some(number(g, 'g')?),
                None => None,
            };
            Scheme::Palettize { bits, group }
        }
        ["int8"] => Scheme::Linear { bits: 8, block: None },
        ["int8", b] => Scheme::Linear {
            bits: 8,
            block: Some(number(b, 'b')?),
        },
        ["int4", b] => Scheme::Linear {
            bits: 4,
            block: Some(number(b, 'b')?),
        },
        ["int4"] => return Err("int4 is block-wise: give a block size, e.g. int4:b32".into()),
        _ => return Err(bad()),
    })
}

/// The oldest deployment target that can hold `scheme`.
pub fn needed_target(scheme: Scheme) -> DeploymentTarget {
    match scheme {
        Scheme::Dense => DeploymentTarget::Ios15,
        Scheme::Palettize { bits: 3, .. } | Scheme::Palettize { group: Some(_), .. } => DeploymentTarget::Ios18,
        Scheme::Palettize { .. } => DeploymentTarget::Ios16,
        Scheme::Linear { bits: 8, block: None } => DeploymentTarget::Ios16,
        Scheme::Linear { .. } => DeploymentTarget::Ios18,
        // Block-wise codes need iOS 18; compress_weights checks that per weight.
        Scheme::FromModel { .. } => DeploymentTarget::Ios16,
    }
}

/// A rule the target cannot hold, as an error message naming the target it needs.
pub fn check_target(rules: &[WeightRule], target: DeploymentTarget) -> Result<(), String> {
    for rule in rules {
        let needed = needed_target(rule.scheme);
        if target < needed {
            return Err(format!(
                "--weights {}: needs --deployment-target {needed} or later (the target is {target})",
                rule.scheme
            ));
        }
    }
    Ok(())
}

/// The consumer family of a report row.
fn family(row: &WeightReport) -> Option<Family> {
    Some(match row.consumer.as_str() {
        "conv" | "conv_transpose" => Family::Conv,
        "linear" => Family::Linear,
        "matmul" => Family::Matmul,
        "gather" => Family::Embedding,
        _ => return None,
    })
}

/// Warnings for rules that select no weight.
pub fn unmatched_rules(rules: &[WeightRule], report: &[WeightReport]) -> Vec<String> {
    rules
        .iter()
        .filter(|r| {
            !report
                .iter()
                .any(|row| family(row).is_some_and(|f| r.selector.matches(f, &row.name)))
        })
        .map(|r| {
            let selector = match &r.selector {
                Selector::All => "every weight".to_string(),
                Selector::Family(f) => f.name().to_string(),
                Selector::Name(g) => format!("name:{g}"),
            };
            format!("--weights rule {selector}={} selects no weight", r.scheme)
        })
        .collect()
}

/// Weights a rule asks to compress that stayed dense for a reason other than the thresholds
/// (rank 1, at most `min_elements` elements): their `note` says why (a second reader, axes the
/// consumers disagree on, the compression guard).
pub fn skipped_weights<'a>(
    rules: &[WeightRule],
    report: &'a [WeightReport],
    min_elements: usize,
) -> Vec<&'a WeightReport> {
    report
        .iter()
        .filter(|row| row.scheme == Scheme::Dense && row.shape.len() >= 2)
        .filter(|row| row.shape.iter().product::<usize>() > min_elements)
        .filter(|row| {
            let requested = family(row).and_then(|f| rules.iter().rev().find(|r| r.selector.matches(f, &row.name)));
            requested.is_some_and(|r| r.scheme != Scheme::Dense)
        })
        .collect()
}

/// `weights 9.8 MB -> 2.6 MB (4 of 12 tensors compressed; worst SNR 31.2 dB: conv1.weight)`.
pub fn summary(report: &[WeightReport]) -> String {
    let before: usize = report.iter().map(|r| r.bytes_before).sum();
    let after: usize = report.iter().map(|r| r.bytes_after).sum();
    let compressed: Vec<&WeightReport> = report.iter().filter(|r| r.scheme != Scheme::Dense).collect();
    let mb = |b: usize| b as f64 / 1e6;
    let mut text = format!(
        "weights {:.2} MB -> {:.2} MB ({} of {} tensors compressed",
        mb(before),
        mb(after),
        compressed.len(),
        report.len()
    );
    if let Some(worst) = compressed.iter().min_by(|a, b| a.snr_db.total_cmp(&b.snr_db)) {
        text.push_str(&format!("; worst SNR {:.1} dB: {}", worst.snr_db, worst.name));
    }
    text.push(')');
    text
}

/// The per-tensor table `-v` prints.
pub fn table(report: &[WeightReport]) -> String {
    let mut out = format!(
        "{:<40} {:<14} {:<18} {:<14} {:>12} {:>12} {:>10} {:>10} {:>8}  layout / note\n",
        "weight", "consumer", "shape", "scheme", "bytes", "stored", "mse", "max abs", "snr dB"
    );
    for r in report {
        let shape = format!("{:?}", r.shape);
        let extra = [r.layout.as_str(), r.note.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str(&format!(
            "{:<40} {:<14} {:<18} {:<14} {:>12} {:>12} {:>10.3e} {:>10.3e} {:>8.1}  {extra}\n",
            r.name,
            r.consumer,
            shape,
            r.scheme.to_string(),
            r.bytes_before,
            r.bytes_after,
            r.mse,
            r.max_abs,
            r.snr_db
        ));
    }
    out
}

/// The report as the package's `Data/com.edgec/weights.json` (deterministic: program order,
/// fixed key order).
pub fn to_json(report: &[WeightReport]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = report
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "consumer": r.consumer,
                "node": r.origin,
                "shape": r.shape,
                "scheme": r.scheme.to_string(),
                "layout": r.layout,
                "bytes_before": r.bytes_before,
                "bytes_after": r.bytes_after,
                "mse": r.mse,
                "max_abs_error": r.max_abs,
                "snr_db": if r.snr_db.is_finite() { serde_json::json!(r.snr_db) } else { serde_json::json!("inf") },
                "note": r.note,
            })
        })
        .collect();
    serde_json::json!({
        "description": "edgec weight report: one row per float constant in the weight file",
        "weights": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_refuse_clearly() {
        let r = parse_rule("palettize:4:g16").unwrap();
        assert_eq!(r.selector, Selector::All);
        assert_eq!(
            r.scheme,
            Scheme::Palettize {
                bits: 4,
                group: Some(16)
            }
        );
        let r = parse_rule("embedding=int8").unwrap();
        assert_eq!(r.selector, Selector::Family(Family::Embedding));
        let r = parse_rule("name:*lm_head*=fp16").unwrap();
        assert_eq!(r.selector, Selector::Name("*lm_head*".into()));
        assert_eq!(r.scheme, Scheme::Dense);
        assert!(parse_rule("palettize:5").unwrap_err().contains("1, 2, 3, 4, 6 or 8"));
        assert!(parse_rule("zip").unwrap_err().contains("unknown weight scheme"));
        assert!(parse_rule("bias=int8").unwrap_err().contains("unknown weight selector"));
        assert!(parse_rule("int4").unwrap_err().contains("block-wise"));
        assert!(parse_rule("int8:b0").is_err());
    }

    #[test]
    fn skipped_weights_are_those_a_rule_compresses_that_stayed_dense_over_the_thresholds() {
        let row = |name: &str, consumer: &str, shape: &[usize], scheme: Scheme| WeightReport {
            name: name.into(),
            consumer: consumer.into(),
            origin: String::new(),
            shape: shape.to_vec(),
            scheme,
            layout: String::new(),
            bytes_before: 0,
            bytes_after: 0,
            mse: 0.0,
            max_abs: 0.0,
            snr_db: f64::INFINITY,
            note: String::new(),
        };
        let report = [
            row("compressed", "conv", &[64, 64], Scheme::Linear { bits: 8, block: None }),
            row("shared", "conv", &[64, 64], Scheme::Dense),
            row("bias", "conv", &[4096], Scheme::Dense),
            row("small", "conv", &[32, 64], Scheme::Dense),
            row("table", "gather", &[64, 64], Scheme::Dense),
            row("plain", "add", &[64, 64], Scheme::Dense),
        ];
        let rules = [parse_rule("conv=int8").unwrap(), parse_rule("embedding=fp16").unwrap()];
        let names = |rules: &[WeightRule]| -> Vec<String> {
            skipped_weights(rules, &report, 2048)
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        assert_eq!(names(&rules), ["shared"]);
        // A later rule that keeps it dense wins.
        assert!(names(&[rules[0].clone(), parse_rule("name:shared=fp16").unwrap()]).is_empty());
        assert_eq!(names(&[parse_rule("int8").unwrap()]), ["shared", "table"]);
    }

    #[test]
    fn targets_are_checked_never_downgraded() {
        let rules = [parse_rule("palettize:4:g16").unwrap()];
        let e = check_target(&rules, DeploymentTarget::Ios17).unwrap_err();
        assert!(e.contains("needs --deployment-target ios18"), "{e}");
        assert!(check_target(&rules, DeploymentTarget::Ios18).is_ok());
        assert!(check_target(&[parse_rule("int8").unwrap()], DeploymentTarget::Ios15).is_err());
        assert!(check_target(&[parse_rule("palettize:3").unwrap()], DeploymentTarget::Ios16).is_err());
        assert!(check_target(&[parse_rule("palettize:8").unwrap()], DeploymentTarget::Ios16).is_ok());
    }
}
