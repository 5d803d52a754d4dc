#!/usr/bin/env python3
"""Prove edgec's IntendedBackend encoding: apply coremltools 9's own ``set_intended_backends``,
with the assignment edgec planned, to a package compiled *without* pins, and compare its program
protobuf with the package edgec pinned (``--pin-compute-units``, same model and options).

    .venv/bin/python scripts/check_intended_backends.py UNPINNED.mlpackage PINNED.mlpackage

The assignment comes from UNPINNED's ``Data/com.edgec/plan.json`` (op name -> unit), mapped to
backend names by coremltools' own ``_get_backend_names`` (so the names are Apple's, not edgec's);
ops the plan does not list (constants) get ``None``, which ``set_intended_backends`` leaves bare.
Prints ``IDENTICAL <n pinned ops> <units used>`` and exits 0, or a diff summary and exits 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

logging.getLogger("coremltools").addFilter(lambda r: not r.getMessage().startswith("Failed to load _ML"))


def backend_names(unit: str):
    from coremltools.models.compute_device import (
        MLCPUComputeDevice,
        MLGPUComputeDevice,
        MLNeuralEngineComputeDevice,
    )
    from coremltools.models.ml_program.experimental.compute_plan_utils import _get_backend_names

    device_class = {
        "ane": MLNeuralEngineComputeDevice,
        "gpu": MLGPUComputeDevice,
        "cpu": MLCPUComputeDevice,
    }[unit]
    # A bare instance: _get_backend_names only looks at the device's class.
    return _get_backend_names(device_class.__new__(device_class))


def op_name(op) -> str:
    a = op.attributes.get("name")
    if a is not None and a.immediateValue.tensor.strings.values:
        return a.immediateValue.tensor.strings.values[0]
    return op.outputs[0].name if op.outputs else ""


def main(argv) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import coremltools as ct
    from coremltools.models.ml_program.experimental.compute_plan_utils import set_intended_backends

    unpinned, pinned = (Path(a) for a in argv)
    plan = json.loads((unpinned / "Data/com.edgec/plan.json").read_text())
    assignment = {o["name"]: o["unit"] for o in plan["ops"]}

    model = ct.models.MLModel(str(unpinned), skip_model_load=True)
    applied = set_intended_backends(
        model,
        lambda op: backend_names(assignment[op_name(op)]) if op_name(op) in assignment and op.type != "const" else None,
    )
    theirs = applied.get_spec().mlProgram
    ours = ct.utils.load_spec(str(pinned)).mlProgram
    same = theirs.SerializeToString(deterministic=True) == ours.SerializeToString(deterministic=True)
    count = sum(
        "IntendedBackend" in op.attributes
        for f in ours.functions.values()
        for b in f.block_specializations.values()
        for op in b.operations
    )
    if same and theirs == ours:
        print(f"IDENTICAL {count} {','.join(sorted(set(assignment.values())))}")
        return 0
    for fname, f in theirs.functions.items():
        for opset, block in f.block_specializations.items():
            mine = ours.functions[fname].block_specializations[opset].operations
            for a, b in zip(block.operations, mine):
                if a != b:
                    print(f"DIFFERENT at op {op_name(a)} ({a.type}):\ncoremltools: {a.attributes}\nedgec: {b.attributes}")
                    return 1
    print("DIFFERENT (programs differ outside the ops)")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
