#!/usr/bin/env bash
# Fuzz edgec with cargo-fuzz (nightly): the targets are in fuzz/fuzz_targets, described in
# docs/reliability.md.
#
#   scripts/fuzz.sh build [--sanitizer none]      # build the three targets (AddressSanitizer by default)
#   scripts/fuzz.sh run TARGET SECONDS [JOBS]     # one campaign: nice'd, logs in fuzz/logs/
#   scripts/fuzz.sh smoke SECONDS                 # every target for SECONDS each, no sanitizer (CI)
#   scripts/fuzz.sh seeds                         # (re)build the working corpora from the seeds
#   scripts/fuzz.sh summary                       # executions, CPU time, cov/ft per target
#
# TARGET is load_bytes, graph_gen or package_reader. A campaign runs with the limits edgec must
# keep: 10 s per input, 2 GB of memory (rss and any single allocation). Crashes land in
# fuzz/artifacts/TARGET/; reproduce one with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# and add the input under testdata/bad/ (see testdata/README.md) when it is fixed.
# Environment: FUZZ_SANITIZER (address or none; default address, none for smoke), FUZZ_NICE
# (default 15).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TARGETS=(load_bytes graph_gen package_reader)
SANITIZER=${FUZZ_SANITIZER:-address}
NICE=${FUZZ_NICE:-15}
LIMITS=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048)
# Campaigns grow the working corpora in fuzz/corpus; a smoke run starts from the seeds alone,
# in a fresh folder, never from what earlier runs found.
CORPUS_ROOT=fuzz/corpus
# Generated graph_gen inputs a smoke run replays (the target has no committed seeds): the same
# 3000 on every run, about 7 s.
SMOKE_GRAPHS=${FUZZ_SMOKE_GRAPHS:-3000}

# Build flags: release with debug assertions and overflow checks (cargo-fuzz's default), and a
# target dir per sanitizer so switching does not rebuild.
build_args() {
    if [ "$SANITIZER" = address ]; then
        echo "--sanitizer address"
    else
        echo "--sanitizer $SANITIZER --target-dir fuzz/target-$SANITIZER"
    fi
}

target_dir() {
    if [ "$SANITIZER" = address ]; then echo fuzz/target; else echo "fuzz/target-$SANITIZER"; fi
}

available() {
    cargo +nightly --version >/dev/null 2>&1 && cargo +nightly fuzz --version >/dev/null 2>&1
}

# The working corpus of each target: the committed seeds, plus (load_bytes) every test model
# behind each of a few option bytes (fp16/fp32, deployment targets, compression).
seeds() {
    for target in "${TARGETS[@]}"; do
        mkdir -p "$CORPUS_ROOT/$target"
        if [ -d "fuzz/seeds/$target" ]; then
            cp -n fuzz/seeds/"$target"/* "$CORPUS_ROOT/$target/" 2>/dev/null || true
        fi
    done
    local option
    for model in testdata/models/*.onnx; do
        for option in 00 01 06 20 28; do
            { printf "\\x$option"; cat "$model"; } >"$CORPUS_ROOT/load_bytes/$(basename "$model" .onnx)_$option"
        done
    done
}

build() {
    # shellcheck disable=SC2046
    nice -n "$NICE" cargo +nightly fuzz build $(build_args) "$@"
}

# run MODE TARGET SECONDS [JOBS]: new inputs go to $CORPUS_ROOT/TARGET, the log to fuzz/logs/.
# MODE campaign: libFuzzer's fork mode, which goes on after a crash so one campaign collects
# every crash it meets. MODE smoke: replays the corpus once (no mutation: coverage-guided
# exploration is not reproducible, since edgec's hash maps are seeded per process), stops at the
# first crash and fails; SECONDS caps a slow machine.
run() {
    local mode=$1 target=$2 seconds=$3 jobs=${4:-1}
    mkdir -p fuzz/logs "fuzz/artifacts/$target" "$CORPUS_ROOT/$target"
    local log
    log="fuzz/logs/$target-$(date +%Y%m%d-%H%M%S).log"
    echo "fuzz $target for ${seconds}s (log $log)"
    local status=0 binary flags=()
    binary="$(target_dir)/x86_64-unknown-linux-gnu/release/$target"
    [ -x "$binary" ] || build
    if [ "$mode" = campaign ]; then
        flags=(-fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
        # Fork mode starts its workers from the binary's path: a copy keeps a rebuild (a smoke
        # run, say) from changing the code under a running campaign.
        mkdir -p fuzz/bin
        cp "$binary" "fuzz/bin/$target-$$"
        binary="fuzz/bin/$target-$$"
    else
        flags=(-runs=0)
    fi
    local corpus="$CORPUS_ROOT/$target"
    # The binary itself, not `cargo fuzz run`, which would rebuild it mid-campaign after an edit.
    # One rayon thread: a campaign uses the cores it is given (jobs), and its CPU time is its own.
    RAYON_NUM_THREADS=1 /usr/bin/time -f "cpu: user %U s, system %S s, wall %e s, max rss %M KB" \
        nice -n "$NICE" "$binary" "$corpus" "${LIMITS[@]}" -max_total_time="$seconds" \
        "${flags[@]}" -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" >"$log" 2>&1 ||
        status=$?
    # The last status line (executions, cov, ft; crashes in fork mode) and the CPU time.
    [ "$mode" = campaign ] && rm -f "$binary"
    grep -E "^#[0-9]+:?[[:space:]].*cov:" "$log" | tail -1 || true
    grep -E "^(stat::number_of_executed_units|cpu:)" "$log" || true
    if [ "$status" != 0 ]; then
        grep -E -A12 "panicked|ERROR: libFuzzer|SUMMARY" "$log" | head -40 || true
    fi
    return $status
}

# Per target, over every log in fuzz/logs: executions (the last status line of each log),
# CPU seconds (the logs /usr/bin/time measured), the highest cov and ft, and the crashes saved.
summary() {
    for target in "${TARGETS[@]}"; do
        local logs=(fuzz/logs/"$target"-*.log)
        [ -e "${logs[0]}" ] || continue
        local execs=0 cpu=0 timed=0 cov=0 ft=0 line n c f
        for log in "${logs[@]}"; do
            line=$(grep -E "^#[0-9]+:?[[:space:]].*cov:" "$log" | tail -1 || true)
            n=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$line")
            c=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$line")
            f=$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$line")
            execs=$((execs + ${n:-0}))
            [ "${c:-0}" -gt "$cov" ] && cov=$c
            [ "${f:-0}" -gt "$ft" ] && ft=$f
            if line=$(grep -E "^cpu:" "$log"); then
                cpu=$(awk -v a="$cpu" -v l="$line" 'BEGIN { split(l, w, " "); print a + w[3] + w[6] }')
                timed=$((timed + 1))
            fi
        done
        local crashes
        crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
        echo "$target: ${#logs[@]} runs, $execs executions, ${cpu} CPU s (measured in $timed runs), cov $cov, ft $ft, $crashes crash/oom/timeout inputs saved"
    done
}

case "${1:-}" in
build)
    shift
    if [ "${1:-}" = "--sanitizer" ]; then SANITIZER=$2; fi
    build
    ;;
seeds) seeds ;;
summary) summary ;;
run)
    seeds
    run campaign "$2" "$3" "${4:-1}"
    ;;
smoke)
    seconds=${2:-30}
    if ! available; then
        echo "NOTICE: nightly Rust or cargo-fuzz is not installed; skipping the fuzz smoke run" \
            "(rustup toolchain install nightly && cargo install cargo-fuzz --locked)"
        exit 0
    fi
    # CI keeps the build lean: no sanitizer (safe Rust; the rss limit still applies, the
    # single-allocation limit needs a sanitizer's malloc hooks), debug assertions on.
    SANITIZER=${FUZZ_SANITIZER:-none}
    CORPUS_ROOT=$(mktemp -d)
    trap 'rm -rf "$CORPUS_ROOT"' EXIT
    seeds
    # graph_gen's inputs: SMOKE_GRAPHS byte strings of 8 to 64 bytes from a fixed seed.
    mkdir -p "$CORPUS_ROOT/graph_gen"
    python3 -c "
import random
rng = random.Random(1)
for i in range($SMOKE_GRAPHS):
    open(f'$CORPUS_ROOT/graph_gen/g{i:05}', 'wb').write(bytes(rng.randrange(256) for _ in range(rng.randrange(8, 65))))
"
    build
    for target in "${TARGETS[@]}"; do
        run smoke "$target" "$seconds"
    done
    ;;
*)
    sed -n '2,18p' "$0"
    exit 2
    ;;
esac
