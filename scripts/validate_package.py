#!/usr/bin/env python3
"""Validate Core ML ML Program packages (.mlpackage) on Linux with coremltools, plus edgec checks.

    .venv/bin/python scripts/validate_package.py PKG.mlpackage [PKG ...]
    .venv/bin/python scripts/validate_package.py --json PKG.mlpackage
    .venv/bin/python scripts/validate_package.py --print-program PKG.mlpackage

Per package (docs/coreml-format.md §9, checked against coremltools 9.0):

* Manifest.json: a JSON object, fileFormatVersion "1.0.0", every item with string path, name,
  author and description, rootModelIdentifier naming an item, every item path existing.
* ``ct.utils.load_spec``; the model must be an mlProgram with specificationVersion 6..10.
* The weights directory (Manifest item name "weights", author "com.apple.CoreML") exists.
* Every function's ``opset`` agrees with specificationVersion (CoreML5..CoreML9 <-> 6..10) and
  names one of its block specializations; a "main" function exists.
* Every blobFileValue names ``@model_path/weights/<file>``, that file exists, and the offset lies
  inside it (coremltools' loader looks only at the basename).
* ``IntendedBackend`` op attributes (coremltools 9's per-op placement hint, written by edgec's
  ``--pin-compute-units``) are stripped first, and the OK line says so: the milproto loader
  rejects any non-const op attribute other than ``name``.
* ``milproto.load.load(spec, specification_version=spec.specificationVersion, file_weights_dir)``
  replays every op through the pymil builder with type inference; then ``prog.validate()``.
* ModelDescription vs main: input and output names and order, dtype, static shapes, rank >= 1,
  and the spec-version floors of §2 (fp16 I/O >= 7, no inputs or several functions >= 9,
  int8 I/O >= 10).

Prints ``OK <path> spec=<n> ops=<top-level ops in main>`` or ``FAIL <path>: <error>`` per package
(``--json``: a JSON list instead) and exits 1 if any package failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import inspect
import json
import logging
import os
import sys
import traceback
from pathlib import Path

# coremltools logs "Failed to load _MLModelProxy: No module named 'coremltools.libcoremlpython'"
# (and 7 similar lines) at import time on Linux, through the "coremltools" logger with no
# handler, so they reach stderr via logging.lastResort. Drop exactly those records; anything
# else coremltools logs still gets through. Installed before coremltools is imported.
_NOISE_PREFIXES = ("Failed to load _ML",)


def _quiet_coremltools() -> None:
    def _filter(record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - malformed record, let it through
            return True
        return not msg.startswith(_NOISE_PREFIXES)

    logging.getLogger("coremltools").addFilter(_filter)


SPEC_MIN, SPEC_MAX = 6, 10
MANIFEST_VERSION = "1.0.0"
MODEL_PATH_PREFIX = "@model_path/"


class Invalid(Exception):
    """A package problem found by this script's own checks (printed without the class name)."""


def _opset_for(spec_version: int) -> str:
    return f"CoreML{spec_version - 1}"


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------


def check_manifest(pkg: Path) -> dict:
    mpath = pkg / "Manifest.json"
    if not mpath.is_file():
        raise Invalid("Manifest.json is missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise Invalid(f"Manifest.json is not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise Invalid("Manifest.json is not a JSON object")
    ver = manifest.get("fileFormatVersion")
    if ver != MANIFEST_VERSION:
        raise Invalid(f"Manifest.json fileFormatVersion is {ver!r}, expected {MANIFEST_VERSION!r}")
    items = manifest.get("itemInfoEntries")
    if not isinstance(items, dict) or not items:
        raise Invalid("Manifest.json itemInfoEntries is missing or empty")
    for ident, item in items.items():
        if not isinstance(item, dict):
            raise Invalid(f"Manifest.json item {ident} is not an object")
        for key in ("path", "name", "author", "description"):
            if not isinstance(item.get(key), str):
                raise Invalid(f"Manifest.json item {ident} lacks string {key!r}")
        if not (pkg / "Data" / item["path"]).exists():
            raise Invalid(f"Manifest.json item {ident}: Data/{item['path']} does not exist")
    root = manifest.get("rootModelIdentifier")
    if root not in items:
        raise Invalid(f"Manifest.json rootModelIdentifier {root!r} names no item")
    return manifest


# --------------------------------------------------------------------------------------------
# Program-level checks on the raw protobuf
# --------------------------------------------------------------------------------------------


def _walk_blocks(block):
    yield block
    for op in block.operations:
        for b in op.blocks:
            yield from _walk_blocks(b)


def _walk_values(op):
    for v in op.attributes.values():
        yield v
    for arg in op.inputs.values():
        for binding in arg.arguments:
            if binding.WhichOneof("binding") == "value":
                yield binding.value


def check_program_proto(spec, model_dir: Path, weights_dir: Path) -> None:
    sv = spec.specificationVersion
    prog = spec.mlProgram
    if "main" not in prog.functions:
        raise Invalid(f"program has no 'main' function (has {sorted(prog.functions)})")
    want = _opset_for(sv)
    for fname, func in prog.functions.items():
        if func.opset != want:
            raise Invalid(
                f"function {fname!r} opset is {func.opset!r} but specificationVersion {sv} "
                f"requires {want!r}"
            )
        if func.opset not in func.block_specializations:
            raise Invalid(
                f"function {fname!r} has no block specialization for opset {func.opset!r} "
                f"(has {sorted(func.block_specializations)})"
            )
        for block in _walk_blocks(func.block_specializations[func.opset]):
            for op in block.operations:
                for value in _walk_values(op):
                    if value.WhichOneof("value") != "blobFileValue":
                        continue
                    _check_blob_ref(value.blobFileValue, op, model_dir, weights_dir)


def _check_blob_ref(blob, op, model_dir: Path, weights_dir: Path) -> None:
    where = f"op {op.type}" + (f" ({_op_name(op)})" if _op_name(op) else "")
    fname = blob.fileName
    if not fname.startswith(MODEL_PATH_PREFIX + "weights/"):
        raise Invalid(f"{where}: blob fileName {fname!r} is not under @model_path/weights/")
    target = (model_dir / fname[len(MODEL_PATH_PREFIX):]).resolve()
    if target.parent != weights_dir.resolve():
        raise Invalid(f"{where}: blob fileName {fname!r} is not directly inside the weights "
                      f"directory")
    if not target.is_file():
        raise Invalid(f"{where}: blob file {fname!r} does not exist")
    size = target.stat().st_size
    if blob.offset + 64 > size:
        raise Invalid(f"{where}: blob offset {blob.offset} is past the end of {target.name} "
                      f"({size} bytes)")


def _op_name(op) -> str:
    a = op.attributes.get("name")
    if a is not None and a.WhichOneof("value") == "immediateValue":
        vals = a.immediateValue.tensor.strings.values
        if vals:
            return vals[0]
    return ""


def main_op_histogram(spec) -> collections.Counter:
    func = spec.mlProgram.functions["main"]
    block = func.block_specializations[func.opset]
    return collections.Counter(op.type for op in block.operations)


# --------------------------------------------------------------------------------------------
# ModelDescription vs main
# --------------------------------------------------------------------------------------------


def _array_dtypes():
    from coremltools.converters.mil.mil import types
    from coremltools.proto import FeatureTypes_pb2 as FT

    A = FT.ArrayFeatureType
    return {
        A.FLOAT32: ("FLOAT32", types.fp32),
        A.FLOAT16: ("FLOAT16", types.fp16),
        A.INT32: ("INT32", types.int32),
        A.INT8: ("INT8", types.int8),
    }, A


def check_description(spec, func) -> None:
    arr, A = _array_dtypes()
    desc = spec.description
    sv = spec.specificationVersion

    in_names = [fd.name for fd in desc.input]
    fn_in = list(func.inputs.keys())
    if in_names != fn_in:
        raise Invalid(f"description inputs {in_names} differ from main's inputs {fn_in}")
    out_names = [fd.name for fd in desc.output]
    fn_out = [v.name for v in func.outputs]
    if out_names != fn_out:
        raise Invalid(f"description outputs {out_names} differ from main's outputs {fn_out}")
    if not desc.output:
        raise Invalid("model has no outputs")

    dtypes_used = set()
    for kind, fds, vars_ in (
        ("input", desc.input, [func.inputs[n] for n in in_names]),
        ("output", desc.output, list(func.outputs)),
    ):
        for fd, var in zip(fds, vars_):
            dtypes_used.add(_check_feature(kind, fd, var, arr, A))

    if not desc.input and sv < 9:
        raise Invalid(f"a model with zero inputs needs specificationVersion >= 9, has {sv}")
    if "FLOAT16" in dtypes_used and sv < 7:
        raise Invalid(f"FLOAT16 model I/O needs specificationVersion >= 7, has {sv}")
    if "INT8" in dtypes_used and sv < 10:
        raise Invalid(f"INT8 model I/O needs specificationVersion >= 10, has {sv}")
    if (len(spec.mlProgram.functions) > 1 or desc.functions or desc.defaultFunctionName) and sv < 9:
        raise Invalid(f"multiple functions need specificationVersion >= 9, has {sv}")


def _check_feature(kind, fd, var, arr, A) -> str:
    from coremltools.converters.mil.mil import types

    label = f"{kind} {fd.name!r}"
    which = fd.type.WhichOneof("Type")
    if which is None:
        raise Invalid(f"{label}: description has no type")
    if types.is_scalar(var.sym_type):
        raise Invalid(f"{label}: rank 0 (scalar {types.builtin_to_string(var.sym_type)}); "
                      f"model I/O must have rank >= 1")
    if not types.is_tensor(var.sym_type):
        raise Invalid(f"{label}: main's value is not a tensor ({var.sym_type})")
    if var.rank < 1:
        raise Invalid(f"{label}: rank {var.rank}; model I/O must have rank >= 1")

    if which == "imageType":
        if var.rank != 4 or var.dtype not in (types.fp32, types.fp16):
            raise Invalid(f"{label}: image feature needs a rank-4 fp32/fp16 value, main has "
                          f"{var.sym_type}")
        return "IMAGE"
    if which != "multiArrayType":
        raise Invalid(f"{label}: unsupported feature type {which}")

    mat = fd.type.multiArrayType
    if mat.dataType not in arr:
        known = mat.dataType in A.ArrayDataType.values()
        raise Invalid(f"{label}: unsupported multiarray dataType "
                      f"{A.ArrayDataType.Name(mat.dataType) if known else mat.dataType}")
    dname, dtype = arr[mat.dataType]
    if dtype != var.dtype:
        raise Invalid(f"{label}: dtype differs: description {dname}, main "
                      f"{types.builtin_to_string(var.dtype)}")

    shp = [int(d) for d in mat.shape]
    flex = mat.WhichOneof("ShapeFlexibility")
    if kind == "input" and not shp:
        raise Invalid(f"{label}: description has no shape (rank must be >= 1)")
    if shp and len(shp) != var.rank:
        raise Invalid(f"{label}: description rank {len(shp)} ({shp}) vs main rank {var.rank} "
                      f"({list(var.shape)})")
    if shp and not flex and all(isinstance(d, int) for d in var.shape):
        if shp != [int(d) for d in var.shape]:
            raise Invalid(f"{label}: description shape {shp} vs main {list(var.shape)}")
    if flex == "enumeratedShapes":
        for s in mat.enumeratedShapes.shapes:
            if len(s.shape) != var.rank:
                raise Invalid(f"{label}: enumerated shape {list(s.shape)} has rank "
                              f"{len(s.shape)}, main has {var.rank}")
    elif flex == "shapeRange":
        if len(mat.shapeRange.sizeRanges) != var.rank:
            raise Invalid(f"{label}: shapeRange has {len(mat.shapeRange.sizeRanges)} dims, main "
                          f"rank is {var.rank}")
    return dname


# --------------------------------------------------------------------------------------------
# One package
# --------------------------------------------------------------------------------------------


def validate(pkg_arg: str, want_program: bool = False) -> dict:
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
    from coremltools.models.utils import _try_get_weights_dir_path

    pkg = Path(pkg_arg)
    res = {"path": pkg_arg, "ok": False}
    if not pkg.is_dir():
        raise Invalid("not a directory" if pkg.exists() else "does not exist")
    if pkg.suffix != ".mlpackage":
        raise Invalid("name must end in .mlpackage (coremltools insists)")
    manifest = check_manifest(pkg)

    spec = ct.utils.load_spec(str(pkg))
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise Invalid(f"model type is {kind!r}, not mlProgram")
    sv = spec.specificationVersion
    res["spec"] = sv
    if not SPEC_MIN <= sv <= SPEC_MAX:
        raise Invalid(f"specificationVersion {sv} outside {SPEC_MIN}..{SPEC_MAX}")

    wdir = _try_get_weights_dir_path(str(pkg))
    if wdir is None:
        raise Invalid("Manifest.json has no item name='weights' author='com.apple.CoreML'")
    wdir = Path(wdir)
    if not wdir.is_dir():
        raise Invalid(f"weights directory {wdir} does not exist")
    root_item = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]
    model_dir = (pkg / "Data" / root_item["path"]).parent

    check_program_proto(spec, model_dir, wdir)
    hist = main_op_histogram(spec)
    res["opset"] = spec.mlProgram.functions["main"].opset
    res["ops"] = sum(hist.values())
    res["op_types"] = dict(sorted(hist.items()))

    stripped = strip_intended_backends(spec)
    if stripped:
        res["note"] = (f"stripped IntendedBackend from {stripped} ops before the milproto loader, "
                       f"which rejects any op attribute but 'name'")
    with _naming_type_mismatches():
        prog = milproto_load(spec, specification_version=sv, file_weights_dir=str(wdir))
    prog.validate()
    func = prog.functions["main"]
    check_description(spec, func)
    res["inputs"] = [fd.name for fd in spec.description.input]
    res["outputs"] = [fd.name for fd in spec.description.output]
    if want_program:
        res["program"] = str(prog)
    res["ok"] = True
    return res


INTENDED_BACKEND = "IntendedBackend"


def strip_intended_backends(spec) -> int:
    """Remove the per-op placement hint coremltools 9's set_intended_backends writes (edgec's
    --pin-compute-units writes the same) from ``spec``, in place: the milproto loader rejects a
    non-const op with any attribute but ``name``. Returns how many ops had one."""
    count = 0
    for func in spec.mlProgram.functions.values():
        for block in func.block_specializations.values():
            for b in _walk_blocks(block):
                for op in b.operations:
                    if INTENDED_BACKEND in op.attributes:
                        del op.attributes[INTENDED_BACKEND]
                        count += 1
    return count


@contextlib.contextmanager
def _naming_type_mismatches():
    """coremltools' loader reports a declared-vs-inferred type mismatch without naming the op;
    watch its type comparison and name the op (and both types) when one fails."""
    from coremltools.converters.mil.frontend.milproto import load as load_module

    original = load_module.types.is_compatible_type
    seen = {}

    def compare(inferred, declared):
        ok = original(inferred, declared)
        if not ok and "op" not in seen:
            spec_op = inspect.currentframe().f_back.f_locals.get("op_spec")
            if spec_op is not None:
                seen["op"] = (spec_op.type, [o.name for o in spec_op.outputs], inferred, declared)
        return ok

    load_module.types.is_compatible_type = compare
    try:
        yield
    except AssertionError as e:
        if "op" in seen:
            op_type, outputs, inferred, declared = seen["op"]
            raise Invalid(
                f"op {op_type} -> {', '.join(outputs)}: coremltools infers "
                f"{_type_text(inferred)} but the package declares {_type_text(declared)}"
            ) from e
        raise
    finally:
        load_module.types.is_compatible_type = original


def _type_text(t) -> str:
    try:
        return str(t.__type_info__())
    except Exception:  # noqa: BLE001 - any type object still has a repr
        return repr(t)


def _one_line(e: BaseException) -> str:
    msg = str(e) if isinstance(e, Invalid) else f"{type(e).__name__}: {e}"
    return " | ".join(line.strip() for line in msg.strip().splitlines() if line.strip()) or \
        type(e).__name__


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="Validate .mlpackage files with coremltools 9.0 (docs/coreml-format.md §9) "
                    "plus edgec-side checks.")
    ap.add_argument("packages", nargs="+", metavar="PKG.mlpackage")
    ap.add_argument("--json", action="store_true", help="print a JSON list of results")
    ap.add_argument("--print-program", action="store_true",
                    help="print the rebuilt pymil program (in --json mode: a 'program' field)")
    ap.add_argument("--traceback", action="store_true", help="print tracebacks of failures to stderr")
    args = ap.parse_args(argv)

    _quiet_coremltools()
    try:
        import coremltools  # noqa: F401
    except Exception as e:  # the venv is missing or broken
        msg = f"cannot import coremltools ({e}); run scripts/setup-venv.sh"
        results = [{"path": p, "ok": False, "error": msg} for p in args.packages]
        _report(results, args)
        return 1

    results = []
    for p in args.packages:
        try:
            r = validate(p, want_program=args.print_program)
        except Exception as e:  # noqa: BLE001 - every failure becomes one FAIL line
            if args.traceback:
                traceback.print_exc()
            r = {"path": p, "ok": False, "error": _one_line(e)}
        results.append(r)
        if not args.json:
            _report([r], args)
    if args.json:
        _report(results, args)
    return 0 if all(r["ok"] for r in results) else 1


def _report(results, args) -> None:
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            if r["ok"]:
                note = f" ({r['note']})" if r.get("note") else ""
                print(f"OK {r['path']} spec={r['spec']} ops={r['ops']}{note}")
                if args.print_program:
                    print(r["program"])
            else:
                print(f"FAIL {r['path']}: {r['error']}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
