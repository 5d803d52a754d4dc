#!/usr/bin/env python3
"""Run onnxruntime (CPU, one thread) on an ONNX model and save inputs and outputs to an .npz.

    .venv/bin/python scripts/make_reference.py MODEL.onnx OUT.npz
    .venv/bin/python scripts/make_reference.py MODEL.onnx OUT.npz --shape input=1x3x224x224
    .venv/bin/python scripts/make_reference.py MODEL.onnx OUT.npz --inputs IN.npz

Keys in OUT.npz: ``input:<onnx input name>`` and ``output:<onnx output name>`` (the layout of
testdata/models/*.npz). Inputs not supplied by --inputs are generated from --seed (default 0):
standard normal for float types, integers 0..9 for int types, 0/1 for bool, in graph-input order
from one numpy Generator. Dynamic dims take their size from --shape (alias --input-shape), else
1 (a note goes to stderr). Initializers that are also listed as graph inputs are not fed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from edgec_py import (  # noqa: E402
    graph_real_inputs,
    load_reference,
    make_inputs,
    ort_run,
    parse_shape_overrides,
    reference_arrays,
    save_npz_deterministic,
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Reference outputs from onnxruntime CPU, saved as input:/output: npz keys.")
    ap.add_argument("model", type=Path, metavar="MODEL.onnx")
    ap.add_argument("out", type=Path, metavar="OUT.npz")
    ap.add_argument("--inputs", type=Path, metavar="IN.npz",
                    help="feeds to use; keys 'input:<name>' or plain '<name>'")
    ap.add_argument("--shape", "--input-shape", action="append", default=[], dest="shapes",
                    metavar="NAME=1x3x224x224", help="concrete shape for an input (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="seed for generated inputs (default 0)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    args = ap.parse_args(argv)

    import onnx

    try:
        overrides = parse_shape_overrides(args.shapes)
    except ValueError as e:
        ap.error(str(e))
    if args.out.suffix != ".npz":
        ap.error("OUT must end in .npz")

    # external data is not needed to list inputs; onnxruntime reads it from the model's dir
    model = onnx.load(str(args.model), load_external_data=False)
    real = [vi.name for vi in graph_real_inputs(model)]

    given = {}
    if args.inputs is not None:
        given, _ = load_reference(args.inputs)
        extra = sorted(set(given) - set(real))
        if extra:
            print(f"error: {args.inputs} has arrays for unknown inputs {extra}; the model's "
                  f"inputs are {real}", file=sys.stderr)
            return 2
        clash = sorted(set(given) & set(overrides))
        if clash:
            print(f"error: --shape given for inputs taken from --inputs: {clash}", file=sys.stderr)
            return 2

    notes: list = []
    try:
        generated = make_inputs(model, overrides, seed=args.seed, notes=notes)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    feeds = {}
    for name in real:  # graph order; supplied arrays win, keeping their own shapes
        if name in given:
            arr = given[name]
            want = generated[name].dtype
            if arr.dtype != want:
                print(f"error: input {name!r} in {args.inputs} is {arr.dtype}, the model wants "
                      f"{want}", file=sys.stderr)
                return 2
            feeds[name] = arr
        else:
            feeds[name] = generated[name]
    for name, msg in notes:
        if name not in given:
            print(f"note: {msg} (use --shape to choose)", file=sys.stderr)

    outputs = ort_run(args.model, feeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_npz_deterministic(args.out, reference_arrays(feeds, outputs))
    if not args.quiet:
        for k, v in reference_arrays(feeds, outputs).items():
            print(f"{k}: {list(v.shape)} {v.dtype}")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
