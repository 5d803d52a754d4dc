"""Tests for scripts/conformance/generate.py and ops_report.py (the ONNX conformance cases).

    .venv/bin/python -m unittest tests.python.test_conformance_generate -v
    (or: .venv/bin/python -m unittest discover -s tests/python -v)

Generates Relu, Conv and Identity cases once as a subprocess (exactly as CI would run it) and
once in-process, then checks the written files against the index and against ONNX's reference
evaluator, the skip records, byte-identical output, and the removal of stale case directories.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "scripts" / "conformance"
OPS = "Relu,Conv,Identity"
EXPECTED = {
    "test_relu": ("Relu", False),
    "test_relu_expanded_ver18": ("Relu", True),
    "test_basic_conv_with_padding": ("Conv", False),
    "test_basic_conv_without_padding": ("Conv", False),
    "test_conv_with_autopad_same": ("Conv", False),
    "test_conv_with_strides_and_asymmetric_padding": ("Conv", False),
    "test_conv_with_strides_no_padding": ("Conv", False),
    "test_conv_with_strides_padding": ("Conv", False),
    "test_identity": ("Identity", False),
    "test_identity_opt": ("Identity", False),
    "test_identity_sequence": ("Identity", False),
}
SKIPPED = {"test_identity_opt": "optional", "test_identity_sequence": "sequence"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", CONF / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


class GenerateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="edgec-conf-")
        cls.tmp = Path(cls._tmp.name)
        cls.out = cls.tmp / "a"
        proc = subprocess.run(
            [sys.executable, str(CONF / "generate.py"), str(cls.out), "--ops", OPS],
            capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise AssertionError(f"generate.py failed:\n{proc.stdout}\n{proc.stderr}")
        cls.gen = _load("generate")
        cls.index = json.loads((cls.out / "index.json").read_text())

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def _main(self, *argv) -> str:
        buf, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            self.assertEqual(self.gen.main([str(a) for a in argv]), 0)
        return buf.getvalue()

    def test_index_records(self):
        names = [r["case"] for r in self.index]
        self.assertEqual(names, sorted(EXPECTED))
        for r in self.index:
            op, expanded = EXPECTED[r["case"]]
            with self.subTest(case=r["case"]):
                self.assertEqual(r["op_type"], op)
                self.assertEqual(r["domain"], "")
                self.assertIs(r["expanded"], expanded)
                self.assertIsInstance(r["opset"], int)
                if r["case"] in SKIPPED:
                    self.assertIn(SKIPPED[r["case"]], r["skipped"])
                    self.assertFalse((self.out / r["case"]).exists())
                    self.assertFalse(r["float"])
                else:
                    self.assertIsNone(r["skipped"])
                    self.assertTrue(r["float"])
                    for io_rec in r["inputs"] + r["outputs"]:
                        self.assertEqual(io_rec["dtype"], "float32")
        relu = {r["case"]: r for r in self.index}
        self.assertEqual(relu["test_relu"]["opset"], 14)
        self.assertEqual(relu["test_relu"]["inputs"],
                         [{"name": "x", "dtype": "float32", "shape": [3, 4, 5]}])
        self.assertIsNone(relu["test_relu"]["expanded_op_types"])
        exp = relu["test_relu_expanded_ver18"]
        self.assertEqual(exp["opset"], 18)
        self.assertIn("Max", exp["expanded_op_types"])
        self.assertNotIn("Relu", exp["expanded_op_types"])

    def test_files_match_index_and_reference(self):
        written = sorted(p.name for p in self.out.iterdir() if p.is_dir())
        self.assertEqual(written, sorted(set(EXPECTED) - set(SKIPPED)))
        for r in self.index:
            if r["skipped"]:
                continue
            d = self.out / r["case"]
            with self.subTest(case=r["case"]):
                model = onnx.load(str(d / "model.onnx"))
                onnx.checker.check_model(model)
                self.assertEqual([i.name for i in model.graph.input],
                                 [i["name"] for i in r["inputs"]])
                self.assertEqual([o.name for o in model.graph.output],
                                 [o["name"] for o in r["outputs"]])
                with zipfile.ZipFile(d / "data.npz") as zf:
                    self.assertEqual(
                        zf.namelist(),
                        [f"input:{i['name']}.npy" for i in r["inputs"]]
                        + [f"output:{o['name']}.npy" for o in r["outputs"]])
                    self.assertTrue(all(zi.date_time == (1980, 1, 1, 0, 0, 0)
                                        for zi in zf.infolist()))
                with np.load(d / "data.npz", allow_pickle=False) as z:
                    feeds = {i["name"]: z["input:" + i["name"]] for i in r["inputs"]}
                    want = [z["output:" + o["name"]] for o in r["outputs"]]
                for rec, arr in zip(r["inputs"] + r["outputs"], list(feeds.values()) + want):
                    self.assertEqual(list(arr.shape), rec["shape"])
                    self.assertEqual(str(arr.dtype), rec["dtype"])
                got = ReferenceEvaluator(model).run(None, feeds)
                for g, w in zip(got, want):
                    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)

    def test_deterministic_and_stale_cases_removed(self):
        b = self.tmp / "b"
        self._main(b, "--ops", OPS)
        self.assertEqual(_tree(self.out), _tree(b))
        # A narrower re-run into the same dir drops the Conv cases of the earlier run...
        self._main(b, "--ops", "Relu")
        self.assertEqual(sorted(p.name for p in b.iterdir() if p.is_dir()),
                         ["test_relu", "test_relu_expanded_ver18"])
        # ...and the wider one brings back exactly the first tree.
        self._main(b, "--ops", OPS)
        self.assertEqual(_tree(self.out), _tree(b))

    def test_list_writes_nothing(self):
        c = self.tmp / "c"
        text = self._main(c, "--list", "--ops", "Relu")
        self.assertFalse(c.exists())
        self.assertEqual([line.split("\t")[0] for line in text.splitlines()],
                         ["test_relu", "test_relu_expanded_ver18"])

    def test_ops_report(self):
        rep = _load("ops_report")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            self.assertEqual(rep.main([str(self.out / "index.json")]), 0)
        rows = {line.split()[0]: line.split()[1:] for line in buf.getvalue().splitlines()[1:-1]}
        # cases, float, expanded, skipped
        self.assertEqual(rows["Conv"], ["6", "6", "0", "0"])
        self.assertEqual(rows["Relu"], ["2", "2", "1", "0"])
        self.assertEqual(rows["Identity"], ["3", "1", "0", "2"])


if __name__ == "__main__":
    unittest.main()
