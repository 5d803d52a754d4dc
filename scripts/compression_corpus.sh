#!/usr/bin/env bash
# Weight compression on real models (run by hand; the corpus needs torch to build, CI does not).
# For each model and scheme: compile, check the package with coremltools 9's loader, run it with
# edgec's interpreter (fp16 rounding) on the corpus inputs, and compare with ONNX Runtime's
# stored outputs. The compression guard measures on the same inputs (--calibration), as a user
# with representative inputs would run it. Prints the markdown table of docs/compression.md.
#
#   scripts/compression_corpus.sh [CORPUS_OUT] [MODEL...]   (default corpus: ../shared/corpus/out)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORPUS=${1:-$ROOT/../shared/corpus/out}
shift || true
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mobilenet_v2 resnet50 vit_small bert_base ppocr_v4_rec crepe_tiny mtcnn_onet ddddocr_det)
PY=${EDGEC_PYTHON:-$ROOT/.venv/bin/python}
EDGEC=${EDGEC_BIN:-$ROOT/target/release/edgec}
[ -n "${EDGEC_BIN:-}" ] || cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
SCHEMES=("fp16:ios16" "palettize:8:ios16" "palettize:6:ios16" "palettize:4:ios16" "palettize:2:ios16"
         "palettize:4:g16:ios18" "int8:ios16" "int8:b32:ios18" "int4:b32:ios18")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| model | scheme | target | weights MB | left dense by the guard | loader | min cosine | max rel err | worst tensor SNR dB |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in "${MODELS[@]}"; do
  dir="$CORPUS/$m"
  # shellcheck disable=SC2207
  shapes=($("$PY" "$ROOT/scripts/corpus_shape_args.py" "$dir/meta.json" "$dir/inputs.npz"))
  for entry in "${SCHEMES[@]}"; do
    scheme=${entry%:*}
    target=${entry##*:}
    pkg="$out/$m.mlpackage"
    if ! log=$("$EDGEC" compile "$dir/model.onnx" -o "$pkg" --deployment-target "$target" \
          --weights "$scheme" --calibration "$dir/inputs.npz" "${shapes[@]}" 2>&1); then
      echo "| $m | $scheme | $target | - | - | - | compile failed: $(tail -1 <<<"$log" | cut -c1-80) | | |"
      continue
    fi
    summary=$( (grep -o 'weights [0-9.]* MB -> [0-9.]* MB' <<<"$log" || true) | sed 's/weights //')
    guard=$( (grep -o 'left [0-9]* of [0-9]* weights dense' <<<"$log" || true) | awk '{print $2 " of " $4}')
    [ -n "$guard" ] || guard=$(grep -q 'compression guard' <<<"$log" && echo none || echo -)
    snr=$( (grep -o 'worst SNR [0-9.inf-]* dB' <<<"$log" || true) | awk '{print $3}')
    loader=$("$PY" "$ROOT/scripts/validate_package.py" "$pkg" >/dev/null 2>&1 && echo OK || echo FAIL)
    "$EDGEC" run "$pkg" --inputs "$dir/inputs.npz" --fp16-rounding -o "$out/got.npz" >/dev/null 2>&1
    figures=$("$PY" - "$dir/outputs.npz" "$out/got.npz" <<'PY'
import sys
import numpy as np
ref, got = np.load(sys.argv[1]), np.load(sys.argv[2])
got = list(got.values())
cos, rel = [], []
for r, g in zip(ref.values(), got):
    r, g = r.astype(np.float64).ravel(), g.astype(np.float64).ravel()
    cos.append(float(r @ g / (np.linalg.norm(r) * np.linalg.norm(g) + 1e-300)))
    rel.append(float(np.max(np.abs(r - g)) / max(np.max(np.abs(r)), 1e-30)))
print(f"{min(cos):.6f} | {max(rel):.2e}")
PY
)
    echo "| $m | $scheme | $target | $summary | $guard | $loader | $figures | ${snr:--} |"
    rm -rf "$pkg"
  done
done
