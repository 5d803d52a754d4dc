#!/usr/bin/env bash
# Run every edgec test: formatting, lints, the Rust test suites (golden dumps, malformed inputs,
# coremltools acceptance of every emitted package, numeric parity, ...) and the Python tooling
# tests. Creates or refreshes the pinned Python venv first (scripts/setup-venv.sh).
#
#   scripts/test.sh            # what CI runs (.ci/run)
#   EDGEC_BLESS=1 scripts/test.sh   # also rewrite golden files; review the diff before committing
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

EDGEC_PYTHON=$(scripts/setup-venv.sh)
export EDGEC_PYTHON

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== python tooling tests"
"$EDGEC_PYTHON" -m unittest discover -s tests/python 2>&1
