#!/usr/bin/env bash
# For every corpus model: compile in the default fp16 and print how many ops the static range
# guard kept in fp32 and how many constants it rewrote (the figures in docs/verification.md).
#
#   scripts/fp16_corpus_report.sh [CORPUS_OUT]   (default corpus: ../shared/corpus/out)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/out}
EDGEC=${EDGEC_BIN:-$ROOT/target/release/edgec}
[ -n "${EDGEC_BIN:-}" ] || cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '| model | fp32 ops | range fixes | notes |\n|---|---|---|---|\n'
for dir in "$CORPUS"/*/; do
  m=$(basename "$dir")
  [ -f "$dir/model.onnx" ] || continue
  # shellcheck disable=SC2046 # word splitting of the generated arguments is intended
  if log=$("$EDGEC" -v compile "$dir/model.onnx" -o "$out/$m.mlpackage" \
        $(python3 "$ROOT/scripts/corpus_shape_args.py" "$dir/meta.json" "$dir/inputs.npz") 2>&1); then
    fp32=$(grep -c '^  fp32 op ' <<<"$log" || true)
    fixes=$(grep '^  precision: ' <<<"$log" | grep -vc 'kept fp32' || true)
    # The kinds of decision, counted: "26 raised to fp16 minimum", ...
    why=$( (grep '^  precision: ' <<<"$log" || true) | sed -E 's/^  precision: ([a-z0-9_ >-]+) ".*/\1/' |
          sort | uniq -c | awk '{c=$1; $1=""; printf "%s%d%s", sep, c, $0; sep=", "}')
    printf '| %s | %s | %s | %s |\n' "$m" "$fp32" "$fixes" "$why"
  else
    printf '| %s | - | - | does not compile: %s |\n' "$m" "$(tail -1 <<<"$log" | cut -c1-120)"
  fi
  rm -rf "${out:?}/$m.mlpackage"
done
