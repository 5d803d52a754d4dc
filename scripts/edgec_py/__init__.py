"""Shared helpers for edgec's Python tooling (testdata/gen_models.py, scripts/make_reference.py).

Only numpy, onnx and onnxruntime are imported here (lazily for onnxruntime), never coremltools.

Key layout of the reference ``.npz`` files written by this module:

* ``input:<onnx input name>``   the array fed to the model
* ``output:<onnx output name>`` what onnxruntime (CPU, one thread) returned

ONNX names may contain any character, including ``/`` and ``:``; the key is split on the FIRST
``:`` only. The zip members are ``<key>.npy``.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "INPUT_PREFIX",
    "OUTPUT_PREFIX",
    "parse_shape_overrides",
    "name_seed",
    "graph_real_inputs",
    "resolve_input_shape",
    "random_input",
    "make_inputs",
    "ort_run",
    "save_npz_deterministic",
    "reference_arrays",
    "load_reference",
]

INPUT_PREFIX = "input:"
OUTPUT_PREFIX = "output:"

# --------------------------------------------------------------------------------------------
# Shapes and seeds
# --------------------------------------------------------------------------------------------

def parse_shape_overrides(specs: Iterable[str]) -> Dict[str, Tuple[int, ...]]:
    """Parse ``NAME=1x3x224x224`` (``,`` also accepted; ``NAME=`` means a rank-0 scalar).

    The name is everything before the LAST ``=``, so ONNX names containing ``=`` still work.
    """
    out: Dict[str, Tuple[int, ...]] = {}
    for spec in specs:
        name, sep, dims = spec.rpartition("=")
        if not sep or not name:
            raise ValueError(f"bad shape override {spec!r}: expected NAME=1x3x224x224")
        if dims == "":
            out[name] = ()
            continue
        parts = re.split(r"[x,]", dims)
        try:
            shape = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"bad shape override {spec!r}: dims must be integers") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"bad shape override {spec!r}: negative dim")
        out[name] = shape
    return out


def name_seed(name: str, base: int = 0) -> int:
    """A stable 32-bit seed derived from a string (crc32; independent of PYTHONHASHSEED)."""
    return (zlib.crc32(name.encode("utf-8")) ^ base) & 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# Graph inputs
# --------------------------------------------------------------------------------------------


def graph_real_inputs(model) -> list:
    """Graph inputs that are not also initializers (IR<4 models list weights as inputs too)."""
    inits = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits]


def resolve_input_shape(
    vi, overrides: Optional[Mapping[str, Sequence[int]]] = None, default_dim: int = 1
) -> Tuple[Tuple[int, ...], list]:
    """Concrete shape of a ValueInfoProto input.

    Returns (shape, notes). An override for the input name wins; otherwise each dim_param or
    missing dim becomes ``default_dim`` and a note says so.
    """
    overrides = overrides or {}
    if vi.name in overrides:
        return tuple(int(d) for d in overrides[vi.name]), []
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        raise ValueError(
            f"input {vi.name!r} has no shape at all; pass --shape {vi.name}=DIMS"
        )
    shape, notes = [], []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            shape.append(int(d.dim_value))
        else:
            label = d.dim_param if d.HasField("dim_param") else "?"
            notes.append(f"input {vi.name!r} dim {i} ({label}) set to {default_dim}")
            shape.append(default_dim)
    return tuple(shape), notes


def random_input(rng: np.random.Generator, np_dtype: np.dtype, shape: Sequence[int]) -> np.ndarray:
    """Seeded data: standard normal for floats, small ints (0..9) for ints, coin flips for bool."""
    np_dtype = np.dtype(np_dtype)
    shape = tuple(shape)
    if np_dtype.kind == "f":
        return rng.standard_normal(shape).astype(np_dtype)
    if np_dtype.kind in "iu":
        return rng.integers(0, 10, size=shape).astype(np_dtype)
    if np_dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raise ValueError(f"no random generator for dtype {np_dtype}")


def make_inputs(
    model,
    overrides: Optional[Mapping[str, Sequence[int]]] = None,
    seed: int = 0,
    notes: Optional[list] = None,
) -> Dict[str, np.ndarray]:
    """Deterministic feeds for every real graph input, in graph order, from one seeded rng.

    ``notes``, if given, collects ``(input name, message)`` for every dynamic dim defaulted to 1.
    """
    from onnx import helper

    rng = np.random.default_rng(seed)
    feeds: Dict[str, np.ndarray] = {}
    for vi in graph_real_inputs(model):
        if not vi.type.HasField("tensor_type"):
            raise ValueError(f"input {vi.name!r} is not a tensor")
        tt = vi.type.tensor_type
        np_dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        shape, n = resolve_input_shape(vi, overrides)
        if notes is not None:
            notes.extend((vi.name, msg) for msg in n)
        feeds[vi.name] = random_input(rng, np_dtype, shape)
    unknown = set(overrides or {}) - {vi.name for vi in graph_real_inputs(model)}
    if unknown:
        raise ValueError(f"shape override for unknown input(s): {sorted(unknown)}")
    return feeds


# --------------------------------------------------------------------------------------------
# onnxruntime
# --------------------------------------------------------------------------------------------


def ort_run(model_path, feeds: Mapping[str, np.ndarray], optimize: bool = True) -> Dict[str, np.ndarray]:
    """Run onnxruntime on CPU with one thread (bit-stable across runs on one machine).

    Returns outputs keyed by ONNX output name, in graph output order. ``model_path`` must be a
    path (not bytes) so that external data next to the model is found. ``optimize=False`` runs
    the graph as written: onnxruntime's graph optimizations fuse QDQ patterns into integer
    kernels (QLinearConv, ...), which round differently from the ONNX definition.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    res = sess.run(names, dict(feeds))
    return {n: np.asarray(v) for n, v in zip(names, res)}


# --------------------------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------------------------


def save_npz_deterministic(path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` that ``np.load`` reads, byte-stable across runs and Pythons.

    Members are ``<key>.npy`` in the given order, with a fixed 1980-01-01 timestamp, 0644
    permissions and no zip64 records. Not ``np.savez``: it is stable across runs (zipfile's
    default ZipInfo time is 1980-01-01) but its ``force_zip64=True`` streaming write produces
    different headers on Python 3.11.2 (Debian) and 3.11.7, so the committed files would churn.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: reference files must end in .npz")
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            if not isinstance(key, str):
                raise TypeError(f"npz key {key!r} is not a string")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            zi = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_STORED
            zi.create_system = 3  # unix, whatever the host
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, buf.getvalue())
    tmp.replace(path)


def reference_arrays(
    inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> Dict[str, np.ndarray]:
    d: Dict[str, np.ndarray] = {}
    for k, v in inputs.items():
        d[INPUT_PREFIX + k] = v
    for k, v in outputs.items():
        d[OUTPUT_PREFIX + k] = v
    return d


def load_reference(path) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """Read a reference npz back as (inputs, outputs) dicts keyed by ONNX name.

    Keys without a prefix are taken as inputs (so a plain ``np.savez(x=...)`` file works too).
    """
    ins: Dict[str, np.ndarray] = {}
    outs: Dict[str, np.ndarray] = {}
    with np.load(path, allow_pickle=False) as z:
        for key in z.files:
            if key.startswith(INPUT_PREFIX):
                ins[key[len(INPUT_PREFIX):]] = z[key]
            elif key.startswith(OUTPUT_PREFIX):
                outs[key[len(OUTPUT_PREFIX):]] = z[key]
            else:
                ins[key] = z[key]
    return ins, outs
