"""Print the --input-shape arguments a corpus model needs: the symbolic dims of meta.json's inputs,
fixed from its "freeze_shapes" or, failing that, from the shapes of inputs.npz."""
import json
import struct
import sys
import zipfile


def npz_shapes(path):
    shapes = {}
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                with z.open(name) as f:
                    magic = f.read(8)  # \x93NUMPY, major, minor
                    if magic[6] == 1:
                        (hlen,) = struct.unpack("<H", f.read(2))
                    else:
                        (hlen,) = struct.unpack("<I", f.read(4))
                    header = f.read(hlen).decode("latin1")
                    shape = eval(header, {}, {})["shape"]  # numpy's own header is a Python literal
                    shapes[name[:-4] if name.endswith(".npy") else name] = shape
    except (OSError, zipfile.BadZipFile):
        pass
    return shapes


meta = json.load(open(sys.argv[1]))
given = npz_shapes(sys.argv[2]) if len(sys.argv) > 2 else {}
fixed = meta.get("freeze_shapes") or {}
for inp in meta.get("inputs", []):
    dims = inp["shape"]
    if not any(isinstance(d, str) for d in dims):
        continue
    if all(not isinstance(d, str) or d in fixed for d in dims):
        value = [fixed.get(d, d) for d in dims]
    elif inp["name"] in given:
        value = list(given[inp["name"]])
    else:
        continue
    print("--input-shape", inp["name"] + "=" + "x".join(str(v) for v in value))
