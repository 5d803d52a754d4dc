#!/usr/bin/env bash
# Op counts and weight.bin size per corpus model, before and after the pattern passes
# (issue 11; the table in docs/performance.md). Compiles each model with two edgec binaries in
# the default fp16 and reads the packages back with `edgec inspect`.
#
#   scripts/fusion_corpus_report.sh BEFORE_EDGEC [CORPUS_OUT] [MODEL...]
#     BEFORE_EDGEC  an edgec built from the commit before the passes (e.g. main's target/release/edgec)
#     AFTER         $EDGEC_BIN, default this tree's target/release/edgec (built if unset)
#     EDGEC_FLAGS   extra compile flags for both, e.g. "--deployment-target ios18"
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BEFORE=${1:?usage: fusion_corpus_report.sh BEFORE_EDGEC [CORPUS_OUT] [MODEL...]}
CORPUS=${2:-$ROOT/../shared/corpus/out}
shift 2 || shift $#
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(bert_base vit_small whisper_tiny_encoder convnext_tiny all_minilm_l6_v2 gpt2
                                   bert_tiny efficientnet_b0 mobilenet_v2 ppocr_v4_rec resnet18)
AFTER=${EDGEC_BIN:-$ROOT/target/release/edgec}
[ -n "${EDGEC_BIN:-}" ] || cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# "<non-const ops> <weight.bin bytes> <op:count,...>" of a package (the ops this issue is about).
summarise() {
  "$AFTER" inspect "$1" | awk '
    done { next }
    /^ops: / { for (i = 2; i < NF; i++) if ($(i + 1) == "MIL") total = $i }
    /^  [a-z_0-9]+: [0-9]+$/ { sub(/:$/, "", $1); n[$1] = $2 }
    /^weight.bin: / { bytes = $4; sub(/\(/, "", bytes) }
    /^program:/ { done = 1 }
    END {
      list = ""
      split("erf pow tanh gelu layer_norm silu sigmoid_hard clip scaled_dot_product_attention softmax", keys, " ")
      for (i = 1; i in keys; i++) if (n[keys[i]] > 0) list = list sprintf("%s%s %d", (list == "" ? "" : ", "), keys[i], n[keys[i]])
      printf "%s %s %s\n", total, bytes, (list == "" ? "-" : list)
    }'
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

printf '| model | MIL ops before → after | weight.bin MB before → after | ops of interest before | after |\n'
printf '|---|---|---|---|---|\n'
for m in "${MODELS[@]}"; do
  dir="$CORPUS/$m"
  [ -f "$dir/model.onnx" ] || { echo "| $m | (not in corpus) | | | |"; continue; }
  read -r -a shapes <<<"$(python3 "$ROOT/scripts/corpus_shape_args.py" "$dir/meta.json" "$dir/inputs.npz" | tr "\n" " ")"
  row=()
  for bin in "$BEFORE" "$AFTER"; do
    pkg="$out/$m.$(basename "$(dirname "$bin")").mlpackage"
    # shellcheck disable=SC2086 # EDGEC_FLAGS is a list of flags
    if "$bin" compile "$dir/model.onnx" -o "$pkg" "${shapes[@]}" ${EDGEC_FLAGS:-} >/dev/null 2>"$out/log"; then
      row+=("$(summarise "$pkg")")
    else
      row+=("- - failed:$(tail -1 "$out/log" | cut -c1-80 | tr ' ' '_')")
    fi
    rm -rf "$pkg"
  done
  read -r ops0 bytes0 rest0 <<<"${row[0]}"
  read -r ops1 bytes1 rest1 <<<"${row[1]}"
  printf '| %s | %s → %s | %s → %s | %s | %s |\n' "$m" "$ops0" "$ops1" "$(mb "$bytes0")" "$(mb "$bytes1")" "$rest0" "$rest1"
done
