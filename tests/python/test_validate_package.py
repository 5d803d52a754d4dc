"""Tests for scripts/validate_package.py, on packages that coremltools itself writes.

Run with the venv (unittest only; pytest also collects it if installed):

    .venv/bin/python -m unittest discover -s tests/python -v

Each case converts a tiny pymil program with coremltools (no torch needed), saves the
.mlpackage into a temp dir, optionally breaks it, and runs the validator as a subprocess
exactly as the Rust tests do.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "validate_package.py"
MODEL = Path("Data") / "com.apple.CoreML" / "model.mlmodel"

logging.getLogger("coremltools").addFilter(
    lambda r: not r.getMessage().startswith("Failed to load _ML"))

import numpy as np  # noqa: E402
import coremltools as ct  # noqa: E402
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.proto import FeatureTypes_pb2 as FT  # noqa: E402
from coremltools.proto import Model_pb2  # noqa: E402


def _convert(prog, target, out: Path) -> Path:
    m = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                   compute_precision=ct.precision.FLOAT32)
    m.save(str(out))
    return out


def linear_relu(out: Path, target=ct.target.iOS16) -> Path:
    """x[1,32] -> linear(64x32 weight in weight.bin) -> relu -> out; 2 outputs with a sigmoid."""
    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 32))], opset_version=target)
    def prog(x):
        y = mb.linear(x=x, weight=w, name="lin")
        return mb.relu(x=y, name="out"), mb.sigmoid(x=y, name="prob")

    return _convert(prog, target, out)


def scalar_output(out: Path) -> Path:
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.reduce_sum(x=x, axes=[0, 1], keep_dims=False, name="s")

    return _convert(prog, ct.target.iOS16, out)


def read_spec(pkg: Path) -> Model_pb2.Model:
    spec = Model_pb2.Model()
    spec.ParseFromString((pkg / MODEL).read_bytes())
    return spec


def write_spec(pkg: Path, spec) -> None:
    (pkg / MODEL).write_bytes(spec.SerializeToString())


def run(*args):
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


class ValidatePackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._td = tempfile.TemporaryDirectory(prefix="edgec-validate-")
        cls.tmp = Path(cls._td.name)
        cls.good = linear_relu(cls.tmp / "good.mlpackage")
        cls.good15 = linear_relu(cls.tmp / "good15.mlpackage", ct.target.iOS15)
        cls.good18 = linear_relu(cls.tmp / "good18.mlpackage", ct.target.iOS18)
        cls.good26 = linear_relu(cls.tmp / "good26.mlpackage", ct.target.iOS26)
        cls.scalar = scalar_output(cls.tmp / "scalar.mlpackage")
        cls._n = 0

    @classmethod
    def tearDownClass(cls):
        cls._td.cleanup()

    def copy(self, src=None) -> Path:
        type(self)._n += 1
        dst = self.tmp / f"case{self._n}.mlpackage"
        shutil.copytree(src or self.good, dst)
        return dst

    def assertFails(self, pkg, fragment):
        rc, out, err = run(pkg)
        self.assertEqual(rc, 1, out + err)
        self.assertTrue(out.startswith(f"FAIL {pkg}: "), out)
        self.assertIn(fragment, out)
        self.assertEqual(out.count("\n"), 1, out)

    # --- passing ---------------------------------------------------------------------------
    def test_ok_lines_and_quiet_stderr(self):
        rc, out, err = run(self.good15, self.good, self.good18, self.good26)
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        self.assertEqual(lines, [
            f"OK {self.good15} spec=6 ops=5",
            f"OK {self.good} spec=7 ops=5",
            f"OK {self.good18} spec=9 ops=5",
            f"OK {self.good26} spec=10 ops=5",
        ])
        self.assertNotIn("Failed to load", err)

    def test_json_and_program(self):
        rc, out, _ = run("--json", "--print-program", self.good, self.tmp / "nope.mlpackage")
        self.assertEqual(rc, 1)
        res = json.loads(out)
        self.assertEqual(len(res), 2)
        self.assertTrue(res[0]["ok"])
        self.assertEqual(res[0]["spec"], 7)
        self.assertEqual(res[0]["opset"], "CoreML6")
        self.assertEqual(res[0]["outputs"], ["out", "prob"])
        self.assertIn("linear(", res[0]["program"])
        self.assertFalse(res[1]["ok"])
        self.assertEqual(res[1]["error"], "does not exist")

    def test_print_program_text(self):
        rc, out, _ = run("--print-program", self.good)
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith(f"OK {self.good} spec=7 ops=5\n"))
        self.assertIn("main[CoreML6]", out)

    # --- failing ----------------------------------------------------------------------------
    def test_opset_disagrees_with_spec_version(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        spec.specificationVersion = 8  # opset stays CoreML6
        write_spec(pkg, spec)
        self.assertFails(pkg, "opset is 'CoreML6' but specificationVersion 8 requires 'CoreML7'")

    def test_missing_weights_dir(self):
        pkg = self.copy()
        shutil.rmtree(pkg / "Data" / "com.apple.CoreML" / "weights")
        self.assertFails(pkg, "does not exist")

    def test_empty_weights_dir_with_blob_refs(self):
        pkg = self.copy()
        (pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").unlink()
        self.assertFails(pkg, "blob file '@model_path/weights/weight.bin' does not exist")

    def test_manifest_version(self):
        pkg = self.copy()
        m = json.loads((pkg / "Manifest.json").read_text())
        m["fileFormatVersion"] = "1.0.1"
        (pkg / "Manifest.json").write_text(json.dumps(m))
        self.assertFails(pkg, "fileFormatVersion is '1.0.1'")

    def test_scalar_output(self):
        # coremltools itself writes a rank-0 output with an empty description shape
        self.assertFails(self.scalar, "rank 0")

    def test_description_dtype(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        spec.description.input[0].type.multiArrayType.dataType = FT.ArrayFeatureType.INT32
        write_spec(pkg, spec)
        self.assertFails(pkg, "input 'x': dtype differs: description INT32, main fp32")

    def test_description_shape(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        del spec.description.output[0].type.multiArrayType.shape[:]
        spec.description.output[0].type.multiArrayType.shape.extend([1, 63])
        write_spec(pkg, spec)
        self.assertFails(pkg, "output 'out': description shape [1, 63] vs main [1, 64]")

    def test_output_order(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        outs = [type(o)() for o in spec.description.output]
        for dst, src in zip(outs, reversed(spec.description.output)):
            dst.CopyFrom(src)
        del spec.description.output[:]
        spec.description.output.extend(outs)
        write_spec(pkg, spec)
        self.assertFails(pkg, "description outputs ['prob', 'out'] differ from main's outputs")

    def test_blob_outside_weights_dir(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        block = spec.mlProgram.functions["main"].block_specializations["CoreML6"]
        for op in block.operations:
            if op.type == "const" and op.attributes["val"].WhichOneof("value") == "blobFileValue":
                op.attributes["val"].blobFileValue.fileName = "@model_path/elsewhere/weight.bin"
        write_spec(pkg, spec)
        self.assertFails(pkg, "is not under @model_path/weights/")

    def test_declared_type_mismatch_names_the_op(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        block = spec.mlProgram.functions["main"].block_specializations["CoreML6"]
        relu = next(op for op in block.operations if op.type == "relu")
        relu.outputs[0].type.tensorType.dimensions[1].constant.size += 1
        write_spec(pkg, spec)
        self.assertFails(pkg, f"op relu -> {relu.outputs[0].name}: coremltools infers tensor[")

    def test_unknown_op(self):
        pkg = self.copy()
        spec = read_spec(pkg)
        block = spec.mlProgram.functions["main"].block_specializations["CoreML6"]
        for op in block.operations:
            if op.type == "relu":
                op.type = "relu_fancy"
        write_spec(pkg, spec)
        self.assertFails(pkg, "ValueError: op relu_fancy not registered.")

    def test_not_a_package(self):
        d = self.tmp / "plain_dir"
        d.mkdir(exist_ok=True)
        self.assertFails(d, "name must end in .mlpackage")


if __name__ == "__main__":
    unittest.main()
