#!/usr/bin/env python3
"""Export small models with control flow decided at run time, as torch writes it, and check
what edgec compiles from them (run locally with the corpus venv: it needs torch).

    ~/.cache/edgec-corpus/venv/bin/python scripts/control_flow_corpus.py OUT_DIR [--edgec BIN]

Models (each OUT_DIR/<name>.onnx, with <name>.npz holding onnxruntime's run: `input:`/`output:`
keys, the layout of testdata/models/*.npz):
  cond_dynamo       torch.cond on a data-dependent predicate, `dynamo=True` (opset 18): If
  for_loop_script   a TorchScript for-loop over a trip count given as an input: Loop with a
                    run-time trip count
  while_loop_script a TorchScript while-loop that stops on a computed condition, with an if
                    inside: Loop with a body condition, If in its body
Each is compiled by edgec in fp32 and fp16 and run by `edgec run`; the cosine and max abs error
against onnxruntime are printed, one line per model and precision.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch


class CondNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 8)
        self.b = torch.nn.Linear(8, 8)

    def forward(self, x):
        def then_fn(x):
            return torch.relu(self.a(x))

        def else_fn(x):
            return torch.tanh(self.b(x)) * 2

        return torch.cond(x.sum() > 0, then_fn, else_fn, (x,))


@torch.jit.script
def for_loop(x: torch.Tensor, n: torch.Tensor):
    acc = x
    for _ in range(int(n)):
        acc = acc * 0.9 + torch.sin(acc)
    return acc


@torch.jit.script
def while_loop(x: torch.Tensor, limit: torch.Tensor):
    acc = x
    steps = torch.zeros(1)
    while bool(acc.abs().sum() < limit):
        if bool(acc.sum() > 0):
            acc = acc * 1.5
        else:
            acc = acc - 0.5
        steps = steps + 1
    return acc, steps


class ForNet(torch.nn.Module):
    def forward(self, x, n):
        return for_loop(x, n)


class WhileNet(torch.nn.Module):
    def forward(self, x, limit):
        return while_loop(x, limit)


def export(out: Path) -> list[str]:
    torch.manual_seed(0)
    x = torch.randn(2, 8)
    made = []
    torch.onnx.export(CondNet().eval(), (x,), str(out / "cond_dynamo.onnx"), dynamo=True, opset_version=18)
    made.append(("cond_dynamo", {"x": x.numpy()}))
    torch.onnx.export(ForNet(), (x, torch.tensor(5)), str(out / "for_loop_script.onnx"), dynamo=False,
                      opset_version=17, input_names=["x", "n"])
    made.append(("for_loop_script", {"x": x.numpy(), "n": np.array(5, dtype=np.int64)}))
    torch.onnx.export(WhileNet(), (x, torch.tensor(40.0)), str(out / "while_loop_script.onnx"), dynamo=False,
                      opset_version=17, input_names=["x", "limit"])
    made.append(("while_loop_script", {"x": x.numpy(), "limit": np.array(40.0, dtype=np.float32)}))
    names = []
    for name, feeds in made:
        session = ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        feeds = {i.name: v for i, v in zip(session.get_inputs(), feeds.values())}
        results = session.run(None, feeds)
        arrays = {f"input:{k}": v for k, v in feeds.items()}
        arrays.update({f"output:{o.name}": v for o, v in zip(session.get_outputs(), results)})
        np.savez(out / f"{name}.npz", **arrays)
        names.append(name)
    return names


def check(out: Path, name: str, edgec: str) -> bool:
    reference = np.load(out / f"{name}.npz")
    ok = True
    for precision in ("fp32", "fp16"):
        package = out / f"{name}.{precision}.mlpackage"
        result = out / f"{name}.{precision}.out.npz"
        compiled = subprocess.run([edgec, "compile", str(out / f"{name}.onnx"), "--precision", precision,
                                   "-o", str(package), "-q"], capture_output=True, text=True)
        if compiled.returncode != 0:
            print(f"{name} {precision}: compile failed: {compiled.stderr.strip()}")
            ok = False
            continue
        subprocess.run([edgec, "run", str(package), "--inputs", str(out / f"{name}.npz"), "--fp16-rounding",
                        "-q", "-o", str(result)], check=True)
        got = np.load(result)
        expected = [reference[k] for k in reference.files if k.startswith("output:")]
        for key, want in zip(got.files, expected):
            a, b = got[key].astype(np.float64).ravel(), want.astype(np.float64).ravel()
            cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))
            print(f"{name} {precision} {key}: cosine {cosine:.7f}, max abs error {np.abs(a - b).max():.2e}")
            ok &= cosine >= (0.9999 if precision == "fp16" else 0.999999)
    return ok


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--edgec", default=str(Path(__file__).resolve().parent.parent / "target/release/edgec"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = [check(args.out, name, args.edgec) for name in export(args.out)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
