#!/usr/bin/env bash
# Compile-time and peak-memory benchmark over the real-model corpus (built by
# ../shared/corpus/build.sh; not needed by the tests). Prints a Markdown table for
# docs/performance.md.
#
#   scripts/bench.sh [CORPUS_OUT] [MODEL...]     (default corpus: ../shared/corpus/out)
#
# Each configuration is compiled 3 times with the release binary; the table shows the median
# wall time and the largest peak RSS (GNU time's %M; memory-mapped weights count once they are read).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/out}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(squeezenet1_1 mobilenet_v2 efficientnet_b0 resnet18 resnet50 vgg16)
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=${EDGEC_BIN:-$ROOT/target/release/edgec}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "| model | ONNX size | precision | median wall (s) | peak RSS (MB) | MIL ops | weight.bin (MB) |"
echo "|---|---|---|---|---|---|---|"
for m in "${MODELS[@]}"; do
  model="$CORPUS/$m/model.onnx"
  [ -f "$model" ] || { echo "| $m | missing | | | | | |"; continue; }
  size=$(du -smL "$CORPUS/$m" | cut -f1)
  for p in fp16 fp32; do
    times=(); peak=0
    for _ in 1 2 3; do
      /usr/bin/time -f "%e %M" -o "$OUT/time" "$BIN" compile "$model" --precision "$p" -o "$OUT/m.mlpackage" 2>"$OUT/log"
      read -r t rss < "$OUT/time"
      times+=("$t"); [ "$rss" -gt "$peak" ] && peak=$rss
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    ops=$(grep -o '[0-9]* MIL ops' "$OUT/log" | cut -d' ' -f1)
    wb=$(( $(stat -c %s "$OUT/m.mlpackage/Data/com.apple.CoreML/weights/weight.bin") / 1048576 ))
    echo "| $m | ${size} MB | $p | $median | $(( peak / 1024 )) | $ops | $wb |"
  done
done
