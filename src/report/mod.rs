//! Compile reports, `edgec compile --report FILE.json|FILE.html`: what a compile did, in one
//! file. [`Report`] gathers it from a [`CompileReport`] and the options (the summary, pass
//! timings, op counts, the weights table with the compression guard's result, the compute
//! plan); [`json`] writes it as a versioned JSON document, [`html`] as one self-contained page
//! (docs/reports.md describes both).

pub mod html;
pub mod json;

pub use crate::coreml::human_size;
use crate::coreml::OpCounts;
use crate::driver::{CompileOptions, CompileReport, Target};
use crate::error::{Error, Result};
use edgec_passes::compressed::Scheme;
use edgec_passes::Precision;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A report's format, by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
}

/// `--report FILE`: where the report goes and in which format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFile {
    pub path: PathBuf,
    pub format: Format,
}

impl ReportFile {
    /// The format from the extension, in any case: `.json`, or `.html`/`.htm`. Anything else is
    /// refused, so that a typo is caught before a long compile rather than after it.
    pub fn new(path: impl Into<PathBuf>) -> std::result::Result<ReportFile, String> {
        let path = path.into();
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let format = match extension.as_str() {
            "json" => Format::Json,
            "html" | "htm" => Format::Html,
            _ => {
                return Err(format!(
                    "{}: a report is FILE.json or FILE.html (the extension chooses the format)",
                    path.display()
                ))
            }
        };
        Ok(ReportFile { path, format })
    }

    /// For clap's `value_parser`.
    pub fn parse(text: &str) -> std::result::Result<ReportFile, String> {
        ReportFile::new(text)
    }

    /// Write `report` in this file's format.
    pub fn write(&self, report: &Report) -> Result<()> {
        let text = match self.format {
            Format::Json => json::to_string(report),
            Format::Html => html::render(report),
        };
        std::fs::write(&self.path, text).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Everything a report shows, borrowed from the compile it describes.
pub struct Report<'a> {
    /// The ONNX model, as given.
    pub model: &'a Path,
    /// The package written.
    pub package: &'a Path,
    pub options: &'a CompileOptions,
    pub compile: &'a CompileReport,
}

impl<'a> Report<'a> {
    pub fn new(model: &'a Path, package: &'a Path, options: &'a CompileOptions, compile: &'a CompileReport) -> Self {
        Report {
            model,
            package,
            options,
            compile,
        }
    }

    pub fn op_counts(&self) -> OpCounts {
        self.compile.op_counts()
    }

    /// The whole compile: the sum of its steps.
    pub fn duration(&self) -> Duration {
        self.compile.steps.iter().map(|s| s.duration).sum()
    }

    pub fn weight_sizes(&self) -> WeightSizes {
        let rows = &self.compile.weights;
        WeightSizes {
            tensors: rows.len(),
            compressed: rows.iter().filter(|r| r.scheme != Scheme::Dense).count(),
            dense_bytes: rows.iter().map(|r| r.bytes_before as u64).sum(),
            stored_bytes: rows.iter().map(|r| r.bytes_after as u64).sum(),
            weight_file_bytes: self.compile.package.weight_bytes,
        }
    }

    pub fn target_name(&self) -> &'static str {
        match self.options.target {
            Target::Metal => "metal",
        }
    }

    /// `fp16`, `fp32`, or `auto` (fp16 with the ops calibration keeps in fp32).
    pub fn precision_name(&self) -> &'static str {
        match (self.options.precision, self.options.auto_precision.is_some()) {
            (Precision::Fp16, true) => "auto",
            (Precision::Fp16, false) => "fp16",
            (Precision::Fp32, _) => "fp32",
        }
    }

    pub fn source_sha256(&self) -> Option<&str> {
        Some(self.compile.source_sha256.as_str()).filter(|s| !s.is_empty())
    }

    /// The model for titles: its file name with its folder's (`mobilenet_v2/model.onnx`), since
    /// exported models are often all called `model.onnx`.
    pub fn model_name(&self) -> String {
        short_name(self.model)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightSizes {
    /// Rows of the weight report (float constants in the weight file).
    pub tensors: usize,
    pub compressed: usize,
    /// Those tensors dense at the program's precision, and as stored.
    pub dense_bytes: u64,
    pub stored_bytes: u64,
    /// The package's weight.bin.
    pub weight_file_bytes: u64,
}

/// The last two components of `path`.
fn short_name(path: &Path) -> String {
    let mut parts: Vec<_> = path.components().rev().take(2).collect();
    parts.reverse();
    parts.iter().collect::<PathBuf>().display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_chooses_the_format_in_any_case() {
        assert_eq!(ReportFile::new("out/r.json").unwrap().format, Format::Json);
        assert_eq!(ReportFile::new("R.JSON").unwrap().format, Format::Json);
        assert_eq!(ReportFile::new("r.Html").unwrap().format, Format::Html);
        assert_eq!(ReportFile::new("r.htm").unwrap().format, Format::Html);
        for bad in ["report", "r.txt", "r.json.gz", ".json"] {
            let e = ReportFile::new(bad).unwrap_err();
            assert!(e.contains("FILE.json or FILE.html"), "{bad}: {e}");
        }
    }

    #[test]
    fn titles_name_the_model_by_its_folder_too() {
        assert_eq!(
            short_name(Path::new("/corpus/mobilenet_v2/model.onnx")),
            "mobilenet_v2/model.onnx"
        );
        assert_eq!(short_name(Path::new("tiny_cnn.onnx")), "tiny_cnn.onnx");
    }
}
