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
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mobilenet_v2 resnet18 resnet50 squeezenet1_1 efficientnet_b0 vgg16
                                   bert_tiny bert_tiny_dynamic vit_small bert_base gpt2)

# --input-shape arguments for a model with symbolic dims: its meta.json names the values the
# reference outputs were computed with ("freeze_shapes").
shape_args() {
  python3 - "$1" <<'PY'
import json, sys
meta = json.load(open(sys.argv[1]))
fixed = meta.get("freeze_shapes") or {}
for inp in meta.get("inputs", []):
    dims = inp["shape"]
    if any(isinstance(d, str) for d in dims):
        print("--input-shape", inp["name"] + "=" + "x".join(str(fixed.get(d, d)) for d in dims))
PY
}
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
status=0
for m in "${MODELS[@]}"; do
  for p in fp32 fp16; do
    echo "== $m $p"
    # shellcheck disable=SC2046 # word splitting of the generated arguments is intended
    "$ROOT/target/release/edgec" verify "$CORPUS/$m/model.onnx" --precision "$p" --inputs "$CORPUS/$m/inputs.npz" \
      $(shape_args "$CORPUS/$m/meta.json") || status=1
  done
done
exit $status
