//! What long work (a compile, its calibration and compression guard, a verify) tells whoever
//! runs it while it runs: the stage it is in, for a progress line, and notes worth a line of
//! their own. The library never prints; the CLI draws a spinner on a terminal, and a build
//! script may forward notes to cargo.

/// One report from running work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Work moved on to this stage ("import", a pass name, "compression guard: run 3").
    Stage(&'a str),
    /// Something the user may want to read afterwards (a calibration round's decision).
    Note(&'a str),
}

/// Ignores every report.
pub fn silent(_: Progress<'_>) {}
