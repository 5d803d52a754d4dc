#!/usr/bin/env python3
"""Write docs/placement.md: how edgec's compute-unit plan works, plan.json's schema, the rules
table (from `edgec plan --rules`), and the plan of every corpus model that compiles (by hand;
CI has no corpus).

    cargo build --release
    .venv/bin/python scripts/placement_corpus.py [--corpus /work/corpus-out] [--edgec target/release/edgec]

Each model is planned in memory (`edgec plan model.onnx --json`, fp16, compute units all, the
--input-shape flags scripts/corpus_shape_args.py gives); mobilenet_v2 is also compiled with
--require-ane in fp16 and fp32 to record the policy's exit status.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

INTRO = """# Compute-unit plan

edgec predicts, for every non-const op of the MIL program it writes, where Core ML will run it:
the Neural Engine (ANE), the GPU or the CPU. It is a **prediction from published facts**
(`../shared/docs/placement.md`: Apple's sources, third-party `MLComputePlan` measurements,
community claims), per chip family and OS, not a measurement: no Mac was involved. Its format
follows Apple's `MLComputePlan` (op, preferred unit, supported units, cost share) so the two can
be compared once someone runs one.

## How it plans (src/plan/)

1. The planner reads the **final MIL program** (after lowering and weight compression) and the
   package metadata (`com.edgec.precision`, `com.edgec.fp32_ops`), so `edgec plan PACKAGE` plans
   exactly what a package holds. `const` and `constexpr_*` ops (weights, decompressed at load
   time) are not planned, as `MLComputePlan` does not list consts.
2. Every rule of the table below is checked per op (and per model). A rule either **rules a unit
   out** (it leaves the op's supported set), marks it **not preferred** (the size floors: the
   unit stays supported), or notes an **uncertainty** (sources conflict: the placement stands
   and the reason starts with "uncertain").
3. **Size floor.** Connected groups of ANE-eligible ops doing less work than
   `ANE_MIN_SEGMENT_FLOPS` (2·512³ FLOPs: a single 512×512 fp16 matmul is the smallest measured
   on the ANE, 384×384 ran on the CPU) are predicted on the CPU. Off the ANE, a connected group
   goes to the GPU when it does at least `GPU_MIN_SEGMENT_FLOPS`, else the CPU. Both thresholds
   are guesses, named constants in `src/plan/rules.rs`, to calibrate on a device.
4. **Cost** (`src/plan/cost.rs`): FLOPs (2·MACs for conv, linear, matmul, attention; one per
   element for elementwise ops; window size for pools) and bytes moved (operands, weights and
   results; a gather reads only the rows it returns), folded as max(FLOPs, 32 × bytes). Shares
   are of the whole program.
5. **Segments**: maximal connected groups of ops on one unit. **Transitions**: tensors that
   cross from one unit to another (each value counted once per destination unit); each costs a
   transfer on a device (0.5-1.8 ms measured).
6. `--compute-units all|cpu-and-ne|cpu-and-gpu|cpu-only` (Core ML's `MLComputeUnits`; aliases
   `coreml`, `coreml-ane`, `coreml-gpu`, `coreml-cpu`): the plan uses only those units, and the
   package records the choice as `com.edgec.compute_units` (`all`, `cpuAndNeuralEngine`,
   `cpuAndGPU`, `cpuOnly`: the `MLComputeUnits` case an app sets in
   `MLModelConfiguration.computeUnits`).

An fp16 program's model-input cast (fp32→fp16) and output cast are chip- and OS-dependent
(CPU on M1-generation ANEs under macOS 14.5, ANE on M4 under macOS 26): the plan says
"uncertain" and plans them with their neighbours. An op edgec keeps in fp32
(`com.edgec.fp32_ops`) is off the ANE.

## Where it shows

- Every compile prints one line: `plan: ANE 97.8% of cost (812/830 ops), GPU 0%, CPU 2.2% (18 ops); 3 segments, 2 transitions`.
- `edgec compile -v` and `edgec plan MODEL.onnx|PACKAGE` print the per-op plan in program order
  (op, type, unit, cost share, reasons), the ONNX nodes fused into each op ("fused into X":
  BatchNorms and bias adds folded into convs, MatMul+Add into linear), and the segments.
  `edgec plan --json` prints plan.json. `edgec plan --rules` prints the rules table below.
- Every package carries `Data/com.edgec/plan.json` (a manifest item of author `com.edgec`) and
  the metadata keys `com.edgec.compute_units`, `com.edgec.plan.ane_cost_share` (e.g. `0.9781`)
  and `com.edgec.plan.segments`. `edgec inspect` shows them.
- `--pin-compute-units` (off by default) writes each planned op's unit into the program as its
  `IntendedBackend` attribute, encoded exactly as coremltools 9's
  `compute_plan_utils.set_intended_backends` writes it (a list of STRING tensors: `["ane"]`,
  `["mps_graph"]`, `["bnns", "classic_cpu", "e5_minimal_cpu"]`); `tests/plan.rs` applies
  coremltools' own function with the same assignment to the unpinned package and compares the
  program protobufs. coremltools' milproto loader rejects the attribute, so
  `scripts/validate_package.py` strips it first and says so. Off by default because nobody has
  shown on a device what Core ML does with a hint it cannot honour.
- `--require-ane` exits with status 2 and writes nothing when any op is predicted off the ANE,
  listing each with its reason (status 1 is any other error).

## plan.json

```json
{
  "compute_units": "all",            // the MLComputeUnits case planned for
  "rules_version": 1,                // bumps when a rule, threshold or the cost model changes
  "summary": {"ops": 830, "ane_ops": 812, "gpu_ops": 0, "cpu_ops": 18,
              "ane_cost_share": 0.978, "gpu_cost_share": 0.0, "cpu_cost_share": 0.022,
              "segments": 3, "transitions": 2},
  "ops": [{"name": "conv_0",         // the MIL op (its first output)
           "type": "conv",
           "unit": "ane",            // predicted (preferred) unit: "ane", "gpu" or "cpu"
           "supported": ["ane", "gpu", "cpu"],
           "reasons": [{"rule": "size_floor", "text": "..."}],   // rules that ruled a unit out,
                                     // made it not preferred, or are uncertain (rule names below)
           "cost_share": 0.0123,     // share of the program's estimated cost, 6 decimals
           "onnx_nodes": ["Conv_0", "BatchNormalization_1"]}],  // its own node first, then the
                                     // nodes fused into it
  "segments": [{"unit": "ane", "first_op": "conv_0", "last_op": "linear_3", "ops": 812,
                "cost_share": 0.978}]   // in order of their first op
}
```

Ops are in program order; keys are sorted; the file is byte-for-byte reproducible.
"""


# Reasons that do not keep an op off the ANE: the GPU-or-CPU choice and uncertainty notes.
NOT_ABOUT_THE_ANE = {"gpu_size_floor", "io_cast", "dilated_conv", "unlisted_op"}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def shape_args(model_dir: Path):
    meta = model_dir / "meta.json"
    if not meta.exists():
        return []
    args = [sys.executable, str(ROOT / "scripts/corpus_shape_args.py"), str(meta)]
    npz = model_dir / "inputs.npz"
    if npz.exists():
        args.append(str(npz))
    out = run(args).stdout.split()
    return out


def pct(x: float) -> str:
    return "0" if x == 0 else f"{100 * x:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus-out"))
    ap.add_argument("--edgec", type=Path, default=ROOT / "target/release/edgec")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/placement.md")
    args = ap.parse_args()
    edgec = str(args.edgec)

    rows, failures = [], []
    for model_dir in sorted(p for p in args.corpus.iterdir() if (p / "model.onnx").exists()):
        name = model_dir.name
        shapes = shape_args(model_dir)
        r = run([edgec, "plan", str(model_dir / "model.onnx"), "--json", *shapes])
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["?"])[-1]
            failures.append((name, first.replace("|", "\\|")[:160]))
            print(f"  {name}: does not compile", file=sys.stderr)
            continue
        plan = json.loads(r.stdout)
        s = plan["summary"]
        reasons = collections.Counter()
        for op in plan["ops"]:
            if op["unit"] != "ane":
                for rule in {x["rule"] for x in op["reasons"]} - NOT_ABOUT_THE_ANE:
                    reasons[rule] += 1
        top = ", ".join(f"{k} ({v})" for k, v in reasons.most_common(3)) or "-"
        rows.append((name, s, top))
        print(f"  {name}: {s['ane_ops']}/{s['ops']} ANE, {s['segments']} segments", file=sys.stderr)

    policy = []
    mobilenet = args.corpus / "mobilenet_v2" / "model.onnx"
    if mobilenet.exists():
        with tempfile.TemporaryDirectory() as tmp:
            for precision in ("fp16", "fp32"):
                pkg = Path(tmp) / f"m_{precision}.mlpackage"
                r = run([edgec, "compile", str(mobilenet), "-o", str(pkg), "--precision", precision,
                         "--require-ane"])
                lines = [l for l in r.stderr.splitlines() if l.strip()]
                said = next((l for l in lines if l.startswith("error:") or l.strip().startswith("plan:")), "")
                policy.append((precision, r.returncode, pkg.exists(), said.strip()[:200]))

    rules = run([edgec, "plan", "--rules"]).stdout

    out = [INTRO, "## Rules\n",
           "Every rule, in the order they are checked (`src/plan/rules.rs`; thresholds are named "
           "constants there). Effect: what the rule does to the unit it names. Sources cite the "
           "shared notes `../shared/docs/placement.md` (rows of its §3 table; [A] Apple, [M] a "
           "measurement, [C] a community claim). Rows 15, 18, 19 and 21 there say what *does* run "
           "on the ANE (fp16 convs, matmuls, norms, RMSNorm, palettized or int8 weights) and need "
           "no rule: `constexpr_*` weight ops are not planned and their consumers stay eligible.\n",
           rules]
    out.append("\n## Corpus\n")
    out.append(f"Generated by `scripts/placement_corpus.py` from `{args.corpus}` with "
               "`edgec plan model.onnx --json` (fp16, `--compute-units all`, default deployment "
               "target ios16). Cost shares in %. Top reasons: the rules that ruled out or did not prefer "
               "the ANE most often on the ops predicted off it (ops counted).\n")
    out.append("| model | ops | ANE ops | GPU ops | CPU ops | ANE % | GPU % | CPU % | segments | transitions | top reasons off the ANE |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, s, top in rows:
        out.append(f"| {name} | {s['ops']} | {s['ane_ops']} | {s['gpu_ops']} | {s['cpu_ops']} | "
                   f"{pct(s['ane_cost_share'])} | {pct(s['gpu_cost_share'])} | {pct(s['cpu_cost_share'])} | "
                   f"{s['segments']} | {s['transitions']} | {top} |")
    if failures:
        out.append("\nModels that do not compile (so have no plan):\n")
        for name, why in failures:
            out.append(f"- {name}: {why}")
    if policy:
        out.append("\n## `--require-ane` on mobilenet_v2\n")
        out.append("| precision | exit status | package written | what it said |")
        out.append("|---|---:|---|---|")
        for precision, code, written, said in policy:
            out.append(f"| {precision} | {code} | {'yes' if written else 'no'} | `{said}` |")
    args.out.write_text("\n".join(out).rstrip() + "\n")
    print(f"wrote {args.out} ({len(rows)} models, {len(failures)} failures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
