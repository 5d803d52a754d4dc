#!/usr/bin/env python3
"""Write the ONNX backend node test cases as edgec conformance cases.

    scripts/conformance/generate.py OUT_DIR [--ops Conv,Relu,...] [--list]

Source: ``onnx.backend.test.case.node.collect_testcases()``, the generator from which ONNX
itself produces its ``onnx/backend/test/data/node/*`` directories. The pip wheel of onnx does
not ship those directories (only ``data/light``, ``pytorch-*``, ``real`` and ``simple``), so the
collector is the one complete source here: 1,884 cases for onnx 1.23.2, each a ModelProto and one
(inputs, outputs) data set. Every exporter runs after ``np.random.seed(0)``, so the data are the
same on every run (for a given onnx and numpy).

For each usable case this writes

* ``OUT_DIR/<case>/model.onnx`` (the ModelProto, serialised deterministically)
* ``OUT_DIR/<case>/data.npz`` with ``input:<graph input name>`` and ``output:<graph output name>``
  (expected outputs from ONNX), written by ``edgec_py.save_npz_deterministic``

and ``OUT_DIR/index.json``, one record per case (skipped ones too), sorted by case name:

    {"case", "op_type", "domain", "expanded", "expanded_op_types", "opset", "opset_imports",
     "float", "all_float", "rtol", "atol", "inputs": [{"name", "dtype", "shape"}], "outputs": [...],
     "skipped": null or the reason}

``op_type`` is the ONNX op under test: the node's op type for the single-node models, and for
the ``*_expanded`` / ``*_expanded_verN`` cases (a function-body expansion of the op, built by ONNX
next to the single-node case of the same base name) the op type of that base case, with
``expanded: true`` and ``expanded_op_types`` listing the op types of the expansion (subgraphs
included; ops of other domains as ``domain:Op``). ``opset`` is the default-domain opset (null if
the model imports none).

A case is skipped (recorded with ``skipped`` set, no directory written) when an input or output
is not a plain tensor (sequence, optional, map), is a string tensor, or has an element type with
no standard numpy dtype (bfloat16, float8*, int4/uint4, int2/uint2, float4): ``.npz`` without
pickles cannot hold them faithfully.

``--list`` prints the selected cases (name, op type, and the skip reason if any) and writes
nothing. Output is byte-identical across runs. When OUT_DIR already holds an index.json, the case
directories it lists that are not in the new selection are removed, so a re-run with other
``--ops`` leaves no stale cases behind.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgec_py import reference_arrays, save_npz_deterministic  # noqa: E402

EXPANDED_RE = re.compile(r"^(?P<base>.+)_expanded(?:_ver\d+)?$")
DEFAULT_DOMAINS = ("", "ai.onnx")

# ONNX element types that numpy represents natively (and np.load reads back without pickles).
PLAIN_ELEM_TYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
}
FLOAT_DTYPES = {"float32", "float16", "float64"}


def _elem_type_name(elem_type: int) -> str:
    if elem_type in PLAIN_ELEM_TYPES:
        return PLAIN_ELEM_TYPES[elem_type]
    import onnx

    try:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"elem_type_{elem_type}"


def _type_str(tp) -> str:
    """Compact text for a TypeProto: float32, sequence(float32), optional(sequence(int64)), ..."""
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        return _elem_type_name(tp.tensor_type.elem_type)
    if kind == "sparse_tensor_type":
        return f"sparse({_elem_type_name(tp.sparse_tensor_type.elem_type)})"
    if kind == "sequence_type":
        return f"sequence({_type_str(tp.sequence_type.elem_type)})"
    if kind == "optional_type":
        return f"optional({_type_str(tp.optional_type.elem_type)})"
    if kind == "map_type":
        return (f"map({_elem_type_name(tp.map_type.key_type)},"
                f"{_type_str(tp.map_type.value_type)})")
    return str(kind)


def collect_cases():
    """All ONNX backend node test cases, in ONNX's collection order."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # The exporters compute expected outputs with numpy and trip overflow/divide warnings.
        warnings.simplefilter("ignore")
        return list(collect_testcases(None))


def _op_types(graph, out: set) -> None:
    for node in graph.node:
        dom = node.domain
        out.add(node.op_type if dom in DEFAULT_DOMAINS else f"{dom}:{node.op_type}")
        for attr in node.attribute:
            if attr.HasField("g"):
                _op_types(attr.g, out)
            for g in attr.graphs:
                _op_types(g, out)


def _opsets(model) -> dict:
    d = {}
    for oi in model.opset_import:
        dom = "" if oi.domain == "ai.onnx" else oi.domain
        d[dom] = int(oi.version)
    return dict(sorted(d.items()))


def _io_record(vi, value):
    """(record, array or None, skip reason or None) for one graph input/output and its value."""
    import onnx
    from onnx import numpy_helper

    tp = vi.type
    kind = tp.WhichOneof("value")
    rec = {"name": vi.name, "dtype": _type_str(tp), "shape": None}
    if kind != "tensor_type":
        what = {"sequence_type": "sequence", "optional_type": "optional", "map_type": "map",
                "sparse_tensor_type": "sparse tensor"}.get(kind, str(kind))
        return rec, None, f"{what} {vi.name!r} ({rec['dtype']})"
    elem = tp.tensor_type.elem_type
    if isinstance(value, onnx.TensorProto):
        if value.dims is not None:
            rec["shape"] = [int(d) for d in value.dims]
    elif value is not None and not isinstance(value, (list, dict)):
        rec["shape"] = [int(d) for d in np.shape(value)]
    if elem == onnx.TensorProto.STRING:
        return rec, None, f"string tensor {vi.name!r}"
    if elem not in PLAIN_ELEM_TYPES:
        return rec, None, f"{rec['dtype']} tensor {vi.name!r} (no standard numpy dtype)"
    if isinstance(value, onnx.TensorProto):
        arr = numpy_helper.to_array(value)
    elif isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
    else:
        return rec, None, f"tensor {vi.name!r} given as {type(value).__name__}"
    want = np.dtype(PLAIN_ELEM_TYPES[elem])
    if arr.dtype != want:
        return rec, None, f"tensor {vi.name!r} data is {arr.dtype}, graph says {want}"
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
        arr = arr.copy(order="C")
    return rec, arr, None


def describe(cases):
    """Index records (sorted by case name) and, per usable case, (model, inputs, outputs)."""
    by_name = {c.name: c for c in cases}
    if len(by_name) != len(cases):
        raise SystemExit("duplicate case names in the ONNX test collection")
    records, payloads = [], {}
    for name in sorted(by_name):
        c = by_name[name]
        model = c.model
        graph = model.graph
        ops: set = set()
        _op_types(graph, ops)

        m = EXPANDED_RE.match(name)
        base = by_name.get(m.group("base")) if m else None
        expanded = base is not None and len(base.model.graph.node) == 1
        if expanded:
            node = base.model.graph.node[0]
        elif len(graph.node) == 1:
            node = graph.node[0]
        else:
            node = None
        if node is not None:
            op_type = node.op_type
            domain = "" if node.domain in DEFAULT_DOMAINS else node.domain
        else:  # not produced by ONNX 1.23; kept robust: all default-domain op types
            op_type = "+".join(sorted(o for o in ops if ":" not in o)) or "+".join(sorted(ops))
            domain = ""
        opsets = _opsets(model)

        if len(c.data_sets) != 1:
            raise SystemExit(f"{name}: expected one data set, got {len(c.data_sets)}")
        ins, outs = c.data_sets[0]
        skip = None
        if len(ins) != len(graph.input) or len(outs) != len(graph.output):
            skip = (f"data has {len(ins)} inputs/{len(outs)} outputs, graph has "
                    f"{len(graph.input)}/{len(graph.output)}")
        in_recs, out_recs, in_arrs, out_arrs = [], [], {}, {}
        for vis, vals, recs, arrs in ((graph.input, ins, in_recs, in_arrs),
                                      (graph.output, outs, out_recs, out_arrs)):
            for i, vi in enumerate(vis):
                rec, arr, why = _io_record(vi, vals[i] if i < len(vals) else None)
                recs.append(rec)
                if why and skip is None:
                    skip = why
                if arr is not None:
                    arrs[vi.name] = arr
        # A float case computes float outputs from float data; its integer or bool inputs are
        # parameters (axes, shapes, indices, conditions). ``all_float``: every tensor is float.
        all_float = all(r["dtype"] in FLOAT_DTYPES for r in in_recs + out_recs)
        is_float = (skip is None and bool(out_recs)
                    and all(r["dtype"] in FLOAT_DTYPES for r in out_recs)
                    and any(r["dtype"] in FLOAT_DTYPES for r in in_recs))

        rec = {
            "case": name,
            "op_type": op_type,
            "domain": domain,
            "expanded": expanded,
            "expanded_op_types": sorted(ops) if expanded else None,
            "opset": opsets.get(""),
            "opset_imports": opsets,
            "float": is_float,
            "all_float": all_float,
            "rtol": c.rtol,
            "atol": c.atol,
            "inputs": in_recs,
            "outputs": out_recs,
            "skipped": skip,
        }
        records.append(rec)
        if skip is None:
            payloads[name] = (model, in_arrs, out_arrs)
    return records, payloads


def select(records, ops):
    if not ops:
        return records
    return [r for r in records if r["op_type"] in ops]


def format_index(records) -> str:
    """JSON list, one case per line (compact, diff-friendly, byte-stable)."""
    lines = [json.dumps(r, ensure_ascii=True, separators=(", ", ": ")) for r in records]
    return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"


def write(out_dir: Path, records, payloads) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / "index.json"
    keep = {r["case"] for r in records if r["skipped"] is None}
    if index_path.exists():  # drop case dirs of a previous run that this selection lacks
        try:
            old = json.loads(index_path.read_text())
        except (OSError, ValueError):
            old = []
        for r in old if isinstance(old, list) else []:
            name = r.get("case") if isinstance(r, dict) else None
            if (isinstance(name, str) and name not in keep and "/" not in name
                    and name not in ("", ".", "..")):
                d = out_dir / name
                if d.is_dir() and ((d / "model.onnx").exists() or (d / "data.npz").exists()):
                    shutil.rmtree(d)
    for r in records:
        if r["skipped"] is not None:
            continue
        model, ins, outs = payloads[r["case"]]
        d = out_dir / r["case"]
        d.mkdir(exist_ok=True)
        (d / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
        save_npz_deterministic(d / "data.npz", reference_arrays(ins, outs))
    index_path.write_text(format_index(records))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", nargs="?", type=Path, help="output directory")
    ap.add_argument("--ops", default="",
                    help="comma-separated op types to keep (the op under test, e.g. Conv,Relu)")
    ap.add_argument("--list", action="store_true",
                    help="print the selected cases instead of writing them")
    args = ap.parse_args(argv)
    if args.out_dir is None and not args.list:
        ap.error("OUT_DIR is required unless --list is given")
    ops = {o.strip() for o in args.ops.split(",") if o.strip()}

    t0 = time.monotonic()
    cases = collect_cases()
    records, payloads = describe(cases)
    known = {r["op_type"] for r in records}
    unknown = sorted(ops - known)
    if unknown:
        print(f"warning: no cases for op type(s): {', '.join(unknown)}", file=sys.stderr)
    records = select(records, ops)

    if args.list:
        for r in records:
            tag = " (expanded)" if r["expanded"] else ""
            skip = f"\tSKIP: {r['skipped']}" if r["skipped"] else ""
            print(f"{r['case']}\t{r['op_type']}{tag}{skip}")
        return 0

    write(args.out_dir, records, payloads)
    n_skip = sum(r["skipped"] is not None for r in records)
    print(f"{len(records)} cases ({len(records) - n_skip} written, {n_skip} skipped) "
          f"-> {args.out_dir} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
