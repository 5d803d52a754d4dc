#!/usr/bin/env bash
# Run every edgec test: formatting, lints, the Rust test suites (golden dumps, malformed inputs,
# coremltools acceptance of every emitted package, numeric parity, ...), a short run of each fuzz
# target and the Python tooling tests. Creates or refreshes the pinned Python venv first
# (scripts/setup-venv.sh).
#
#   scripts/test.sh            # what CI runs (.ci/run)
#   EDGEC_BLESS=1 scripts/test.sh   # also rewrite golden files; review the diff before committing
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

EDGEC_PYTHON=$(scripts/setup-venv.sh)
export EDGEC_PYTHON

# tests/report.rs renders HTML reports in Debian's headless chromium. Where root can run apt-get
# (CI), install it when missing, and let a failed install stop the run; elsewhere the browser
# checks say "skipped: no chromium".
if [ ! -x /usr/bin/chromium ] && [ -z "${EDGEC_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== apt-get install chromium (for the browser test of HTML reports)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  else
    echo "notice: no /usr/bin/chromium, and no root apt-get to install it: tests/report.rs skips its browser checks"
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The build-script example is its own workspace (its build-override profile applies only in a
# workspace root), built in its own target folder, which tests/build_script.rs reuses with the
# same settings: edgec is compiled for build scripts once. CI builds it with the build-override
# at opt-level 0: the tests check what edgec::Build does, not how fast, and opt-level 3 would
# add about 165 CPU-seconds (docs/performance.md). Offline: its crates are a subset of the
# workspace's.
echo "== examples/build-script"
EXAMPLE=(--manifest-path examples/build-script/Cargo.toml --locked --offline)
cargo fmt --manifest-path examples/build-script/Cargo.toml -- --check
(
    export CARGO_TARGET_DIR=target/build-script-example CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL=0
    cargo clippy "${EXAMPLE[@]}" -- -D warnings
    cargo run "${EXAMPLE[@]}"
)
echo "== cargo test"
cargo test --workspace --locked
# The fuzz targets for a bounded minute each (a notice instead when nightly or cargo-fuzz is
# missing); the inputs they found are replayed above by tests/fuzz_regressions.rs.
echo "== fuzz smoke"
scripts/fuzz.sh smoke 60
echo "== python tooling tests"
"$EDGEC_PYTHON" -m unittest discover -s tests/python 2>&1
