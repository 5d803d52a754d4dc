//! What the command line shows while it works: a spinner with the current stage and the
//! elapsed time, drawn only on a terminal and only once work has taken longer than about a
//! second (so quick compiles, pipes, build scripts and CI logs never see it), and notes and
//! status lines printed above it. `-q` silences all of it.

use edgec::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Work shorter than this shows no spinner at all.
const SPINNER_DELAY: Duration = Duration::from_millis(800);

pub struct Status {
    quiet: bool,
    /// `None` when stderr is not a terminal or `-q` was given.
    spinner: Option<ProgressBar>,
}

impl Status {
    pub fn new(quiet: bool) -> Status {
        let interactive = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let spinner = interactive.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            let delayed = bar.clone();
            std::thread::spawn(move || {
                std::thread::sleep(SPINNER_DELAY);
                if !delayed.is_finished() {
                    delayed.set_draw_target(ProgressDrawTarget::stderr());
                    delayed.enable_steady_tick(Duration::from_millis(100));
                }
            });
            bar
        });
        Status { quiet, spinner }
    }

    /// A report from the library: a stage moves the spinner on, a note gets its own line.
    pub fn progress(&self, progress: Progress<'_>) {
        match progress {
            Progress::Stage(stage) => {
                if let Some(bar) = &self.spinner {
                    bar.set_message(stage.to_string());
                }
            }
            Progress::Note(note) => self.line(&format!("  {note}")),
        }
    }

    /// A status line on stderr, above the spinner; nothing with `-q`.
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.spinner {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Runs `print` (writing to stdout or stderr) with the spinner out of the way.
    pub fn suspend<T>(&self, print: impl FnOnce() -> T) -> T {
        match &self.spinner {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    /// Removes the spinner (before the final summary is printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}
