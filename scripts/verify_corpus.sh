#!/usr/bin/env bash
# Numeric check of real models, run locally (not in CI: the corpus needs torch to build).
# Compiles each corpus model in fp32 and fp16 and runs `edgec verify` against its stored inputs.
#
#   scripts/verify_corpus.sh [CORPUS_OUT] [MODEL...]   (default corpus: ../shared/corpus/out)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/out}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mobilenet_v2 resnet18 resnet50 squeezenet1_1 efficientnet_b0 vgg16)
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
status=0
for m in "${MODELS[@]}"; do
  for p in fp32 fp16; do
    echo "== $m $p"
    "$ROOT/target/release/edgec" verify "$CORPUS/$m/model.onnx" --precision "$p" --inputs "$CORPUS/$m/inputs.npz" || status=1
  done
done
exit $status
