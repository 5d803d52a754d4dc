//! Deployment targets: which OS release the package must load on, and so which Core ML
//! specification version and MIL opset it declares.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum DeploymentTarget {
    /// iOS 15 / macOS 12: the first release with ML Programs.
    Ios15,
    /// iOS 16 / macOS 13 (the default).
    #[default]
    Ios16,
    /// iOS 17 / macOS 14.
    Ios17,
    /// iOS 18 / macOS 15.
    Ios18,
}

impl DeploymentTarget {
    pub const ALL: [DeploymentTarget; 4] = [Self::Ios15, Self::Ios16, Self::Ios17, Self::Ios18];

    /// `Model.specificationVersion`.
    pub fn spec_version(self) -> i32 {
        match self {
            Self::Ios15 => 6,
            Self::Ios16 => 7,
            Self::Ios17 => 8,
            Self::Ios18 => 9,
        }
    }

    /// `Function.opset`, which must agree with the spec version.
    pub fn opset(self) -> &'static str {
        match self {
            Self::Ios15 => "CoreML5",
            Self::Ios16 => "CoreML6",
            Self::Ios17 => "CoreML7",
            Self::Ios18 => "CoreML8",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ios15 => "ios15",
            Self::Ios16 => "ios16",
            Self::Ios17 => "ios17",
            Self::Ios18 => "ios18",
        }
    }
}

impl fmt::Display for DeploymentTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeploymentTarget {
    type Err = String;

    /// Accepts `ios15`..`ios18` and the matching `macos12`..`macos15`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ios15" | "macos12" => Self::Ios15,
            "ios16" | "macos13" => Self::Ios16,
            "ios17" | "macos14" => Self::Ios17,
            "ios18" | "macos15" => Self::Ios18,
            _ => {
                return Err(format!(
                    "unknown deployment target {s:?} (expected ios15, ios16, ios17, ios18 or macos12..macos15)"
                ))
            }
        })
    }
}
