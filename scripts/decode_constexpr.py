#!/usr/bin/env python3
"""Decode every constexpr_* op of a package with coremltools 9's own value inference.

    decode_constexpr.py PKG.mlpackage...


Loads the program through coremltools' milproto loader (the reader Core ML's converter uses;
see validate_package.py) and writes, for each ``constexpr_*`` op in ``main``, the dense tensor
coremltools infers for its output, keyed by the output's name, as float32, to the ``.npz``
beside each package (``PKG.npz``). edgec's tests
compare these with the weights edgec meant to store: the bit layout is then proven by
coremltools, not by edgec reading its own output.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validate_package  # noqa: E402  (the loader set-up lives there)


def decode(pkg: str) -> dict:
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
    from coremltools.models.utils import _try_get_weights_dir_path

    validate_package._quiet_coremltools()
    spec = ct.utils.load_spec(pkg)
    wdir = _try_get_weights_dir_path(pkg)
    prog = milproto_load(spec, specification_version=spec.specificationVersion, file_weights_dir=str(wdir))
    out = {}
    for op in prog.functions["main"].operations:
        if not op.op_type.startswith("constexpr_"):
            continue
        var = op.outputs[-1]
        # The op definitions' own decompression (constexpr ops keep no materialised value).
        value = op.materialized_val_inference()
        if isinstance(value, tuple):
            value = value[-1]
        out[var.name] = np.asarray(value, dtype=np.float32)
    return out


def main(argv) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for pkg in argv[1:]:
        arrays = decode(pkg)
        np.savez(str(Path(pkg).with_suffix(".npz")), **arrays)
        print(f"{pkg}: decoded {len(arrays)} constexpr op(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
