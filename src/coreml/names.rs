//! MIL identifiers from ONNX names: `[A-Za-z_][A-Za-z0-9_]*`, unique, deterministic.
//!
//! Every character outside the identifier set becomes `_`; a name starting with a digit gets a
//! `var_` prefix; a clash gets the smallest free `_N` suffix. The same input names in the same
//! order always give the same result.

use std::collections::HashSet;

pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.is_empty() {
        out.push_str("var");
    } else if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "var_");
    }
    out
}

/// Hands out unique identifiers.
#[derive(Default)]
pub struct NameTable {
    used: HashSet<String>,
}

impl NameTable {
    /// A unique identifier derived from `name`.
    pub fn claim(&mut self, name: &str) -> String {
        let base = sanitize(name);
        if self.used.insert(base.clone()) {
            return base;
        }
        let unique = (1..)
            .map(|n| format!("{base}_{n}"))
            .find(|c| !self.used.contains(c))
            .unwrap_or(base);
        self.used.insert(unique.clone());
        unique
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_onnx_names() {
        assert_eq!(sanitize("input.1"), "input_1");
        assert_eq!(sanitize("/conv/Conv_output_0"), "_conv_Conv_output_0");
        assert_eq!(sanitize("123"), "var_123");
        assert_eq!(sanitize("a:b"), "a_b");
        assert_eq!(sanitize(""), "var");
    }

    #[test]
    fn claims_are_unique_and_deterministic() {
        let mut t = NameTable::default();
        assert_eq!(t.claim("x.y"), "x_y");
        assert_eq!(t.claim("x_y"), "x_y_1");
        assert_eq!(t.claim("x:y"), "x_y_2");
        let mut again = NameTable::default();
        assert_eq!(["x.y", "x_y", "x:y"].map(|n| again.claim(n)), ["x_y", "x_y_1", "x_y_2"]);
    }
}
