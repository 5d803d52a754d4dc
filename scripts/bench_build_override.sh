#!/usr/bin/env bash
# What `[profile.dev.build-override] opt-level = 3` costs and buys a crate whose build.rs calls
# edgec::Build: a cold build of examples/build-script with the build-override opt-level at 0
# (Cargo's default) and at 3, then each build script compiling a generated 100 MB MLP (six
# 2048x2048 MatMul+Add+Relu, 25M parameters) with the example's settings. Figures:
# docs/performance.md.
#
#   scripts/bench_build_override.sh            # uses .venv's Python for the model
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${EDGEC_PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/model/models"
"$PYTHON" - "$WORK/model/models/tiny_cnn.onnx" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)
nodes, weights, x = [], [], "x"
for i in range(6):
    weights += [numpy_helper.from_array(rng.standard_normal((2048, 2048)).astype(np.float32) * 0.02, f"w{i}"),
                numpy_helper.from_array(np.zeros(2048, np.float32), f"b{i}")]
    nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
              helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
              helper.make_node("Relu", [f"a{i}"], [f"r{i}"])]
    x = f"r{i}"
io = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 128, 2048])
model = helper.make_model(helper.make_graph(nodes, "mlp", [io("x")], [io(x)], weights),
                          opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.save(model, sys.argv[1])
EOF

cd "$ROOT/examples/build-script"
for level in 0 3; do
    target="$WORK/target-$level"
    echo "== build-override opt-level $level: cold build of examples/build-script"
    /usr/bin/time -f "  %e s wall, %U s user, %S s system" \
        env CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL=$level CARGO_TARGET_DIR="$target" \
        cargo build --locked --offline --quiet 2>&1 | grep -v '^warning: edgec-build-script-example'
    script=$(ls "$target"/debug/build/edgec-build-script-example-*/build-script-build)
    echo "== build-override opt-level $level: the build script on the 100 MB MLP"
    mkdir -p "$WORK/out-$level"
    for run in 1 2; do
        (cd "$WORK/model" && /usr/bin/time -f "  run $run: %e s wall, %M KB peak" \
            env OUT_DIR="$WORK/out-$level" "$script" >/dev/null)
    done
done
