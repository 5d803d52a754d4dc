//! Op counts in the one vocabulary `analyze`, `compile` and `inspect` all print:
//! "N ONNX nodes → M MIL ops (+K constants)", and sizes in MB.

use crate::proto::coreml::mil_spec::Program;
use std::fmt;

/// How big a program is: its source's node count (when known), its MIL ops (those the compute
/// plan places), and its constants (`const`, and the `constexpr_*` ops of compressed weights).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub onnx_nodes: Option<usize>,
    pub mil_ops: usize,
    pub constants: usize,
}

impl OpCounts {
    /// The counts of every function's main block of `program`.
    pub fn of_program(program: &Program, onnx_nodes: Option<usize>) -> OpCounts {
        let ops = program
            .functions
            .values()
            .filter_map(|f| f.block_specializations.get(&f.opset))
            .flat_map(|b| &b.operations);
        let (mut mil_ops, mut constants) = (0, 0);
        for op in ops {
            if op.r#type == "const" || op.r#type.starts_with("constexpr_") {
                constants += 1;
            } else {
                mil_ops += 1;
            }
        }
        OpCounts {
            onnx_nodes,
            mil_ops,
            constants,
        }
    }
}

impl fmt::Display for OpCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(nodes) = self.onnx_nodes {
            write!(f, "{nodes} ONNX nodes → ")?;
        }
        write!(f, "{} MIL ops (+{} constants)", self.mil_ops, self.constants)
    }
}

/// `bytes` for people: "812 B", "4.2 kB", "13.4 MB", "1.32 GB" (decimal units, as Finder shows).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    let b = bytes as f64;
    for (unit, size) in UNITS {
        if b >= size {
            let value = b / size;
            return if value >= 100.0 {
                format!("{value:.0} {unit}")
            } else if value >= 10.0 {
                format!("{value:.1} {unit}")
            } else {
                format!("{value:.2} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(4_200), "4.20 kB");
        assert_eq!(human_size(13_412_000), "13.4 MB");
        assert_eq!(human_size(1_320_000_000), "1.32 GB");
        assert_eq!(human_size(250_000_000), "250 MB");
    }

    #[test]
    fn counts_say_nodes_ops_and_constants() {
        let counts = OpCounts {
            onnx_nodes: Some(102),
            mil_ops: 88,
            constants: 385,
        };
        assert_eq!(counts.to_string(), "102 ONNX nodes → 88 MIL ops (+385 constants)");
        let package_only = OpCounts {
            onnx_nodes: None,
            ..counts
        };
        assert_eq!(package_only.to_string(), "88 MIL ops (+385 constants)");
    }
}
