#!/usr/bin/env python3
"""Quantize corpus models with onnxruntime and check what edgec makes of them (run locally: the
corpus needs torch to build; not part of CI).

For each model: `quantize_static` (QDQ, int8 weights per channel, uint8 activations, calibrated
on the model's stored inputs and noisy copies of them) and `quantize_dynamic` (int8 weights,
DynamicQuantizeLinear + MatMulInteger/ConvInteger). Each quantized model is compiled by edgec
(fp32 and fp16, iOS16 and iOS18), run by edgec's interpreter on the stored inputs, and compared
with onnxruntime's run of the same quantized model, both with its default graph optimizations
(integer QLinear kernels) and with them off (the ONNX definition). Prints one markdown row per
compile: weight.bin against the float model's fp32 weight.bin, and the worst output cosine.

    .venv/bin/python scripts/quantize_corpus.py CORPUS_OUT resnet18 bert_tiny ...
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EDGEC = ROOT / "target" / "release" / "edgec"


def shape_args(model_dir: Path) -> list[str]:
    """The --input-shape arguments of a corpus model (scripts/corpus_shape_args.py)."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "corpus_shape_args.py"), str(model_dir / "meta.json"),
                          str(model_dir / "inputs.npz")], capture_output=True, text=True, check=True).stdout
    return out.split()


def ort_outputs(model: Path, feeds: dict, optimize: bool) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    return sess.run(None, {k: v for k, v in feeds.items() if k in names})


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb))


class Reader:
    """Calibration inputs: the stored inputs, then copies with 5% noise on the float inputs."""

    def __init__(self, feeds: dict, copies: int = 7):
        rng = np.random.default_rng(0)
        self.batches = [feeds]
        for _ in range(copies):
            noisy = {}
            for k, v in feeds.items():
                if v.dtype.kind == "f":
                    scale = float(np.std(v)) or 1.0
                    noisy[k] = (v + rng.standard_normal(v.shape).astype(v.dtype) * 0.05 * scale).astype(v.dtype)
                else:
                    noisy[k] = v
            self.batches.append(noisy)
        self.it = iter(self.batches)

    def get_next(self):
        return next(self.it, None)

    def rewind(self):
        self.it = iter(self.batches)


def edgec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EDGEC), *args], capture_output=True, text=True)


def weight_bytes(pkg: Path) -> int:
    return (pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").stat().st_size


def main(argv: list[str]) -> int:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    corpus, models = Path(argv[0]), argv[1:]
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path", str(ROOT / "Cargo.toml")], check=True)
    rows = []
    failed = False
    for name in models:
        src = corpus / name / "model.onnx"
        feeds = dict(np.load(corpus / name / "inputs.npz"))
        extra = shape_args(corpus / name)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            base = tmp / "float.mlpackage"
            r = edgec("compile", str(src), "--precision", "fp32", "-o", str(base), "-q", *extra)
            if r.returncode != 0:
                rows.append(f"| {name} | float | | | compile failed: {r.stderr.strip()[:200]} |")
                failed = True
                continue
            float_bytes = weight_bytes(base)
            variants = {}
            qdq = tmp / "qdq.onnx"
            dyn = tmp / "dynamic.onnx"
            quantizers = {
                "static QDQ": lambda: quantize_static(
                    str(src), str(qdq), Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8),
                "dynamic": lambda: quantize_dynamic(str(src), str(dyn), weight_type=QuantType.QInt8),
            }
            for variant, path in [("static QDQ", qdq), ("dynamic", dyn)]:
                try:
                    quantizers[variant]()
                    variants[variant] = path
                except Exception as e:  # onnxruntime's quantizer gives up on some models
                    rows.append(f"| {name} | {variant} | | | onnxruntime could not quantize it: {str(e).splitlines()[0][:200]} |")
            np.savez(tmp / "inputs.npz", **feeds)
            for variant, model in variants.items():
                try:
                    ref_opt = ort_outputs(model, feeds, optimize=True)
                    ref_def = ort_outputs(model, feeds, optimize=False)
                except Exception as e:  # the quantizer can write a model its own runtime refuses
                    rows.append(f"| {name} | {variant} | | | onnxruntime cannot run its own output: "
                                f"{str(e).splitlines()[0][:200]} |")
                    continue
                for target in ["ios16", "ios18"]:
                    for precision in ["fp32", "fp16"]:
                        pkg = tmp / f"{variant.replace(' ', '_')}.{target}.{precision}.mlpackage"
                        r = edgec("compile", str(model), "--precision", precision, "--deployment-target", target,
                                  "-o", str(pkg), "-q", *extra)
                        label = f"| {name} | {variant} | {target} {precision} |"
                        if r.returncode != 0:
                            rows.append(f"{label} | compile failed: {r.stderr.strip().splitlines()[-1][:240]} |")
                            failed = True
                            continue
                        out = tmp / "out.npz"
                        r = edgec("run", str(pkg), "--inputs", str(tmp / "inputs.npz"), "-o", str(out), "-q")
                        if r.returncode != 0:
                            rows.append(f"{label} | run failed: {r.stderr.strip()[:200]} |")
                            failed = True
                            continue
                        got = list(np.load(out).values())
                        c_opt = min(cosine(g, e) for g, e in zip(got, ref_opt))
                        c_def = min(cosine(g, e) for g, e in zip(got, ref_def))
                        ratio = weight_bytes(pkg) / float_bytes
                        ok = c_opt >= 0.999
                        failed |= not ok
                        rows.append(f"{label} {weight_bytes(pkg):,} B = {ratio:.2f}x | cosine {c_opt:.6f} "
                                    f"(ORT optimized), {c_def:.6f} (ORT unoptimized){'' if ok else ' BELOW 0.999'} |")
    print("| model | quantization | target | weight.bin vs float fp32 | result |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
