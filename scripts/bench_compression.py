#!/usr/bin/env python3
"""Benchmark edgec's weight compression against coremltools 9's own kernels on the SAME fp16 arrays.

    .venv/bin/python scripts/bench_compression.py [--quick] [--corpus /work/corpus-out MODEL...]

(--resume continues a run that was interrupted, reusing what it finished; --report FILE also
writes the markdown.)

Run by hand, not in CI. Follows docs/compression.md §(e):

* Tensor set: a synthetic stack (normal(0, 0.02) [4096,4096], [1024,4096], [768,768], a conv-like
  [256,64,3,3], a Student-t one, a 2,500- and a 5,000-element one, a constant one, one with
  <= 16 distinct values), plus the trained weights of the corpus models named on the command line
  (ONNX initializers and Constant-node tensors of rank >= 2 with > 2048 elements). Everything is cast to fp16 once, with
  numpy's round-to-nearest-even, and both tools get those arrays. Layout: output channels on axis 0
  (conv [Cout, Cin, kh, kw] as stored; MatMul B [Din, Dout] and Gemm B with transB=0 are
  transposed, ConvTranspose [Cin, Cout, ...] has axes 0 and 1 swapped), which is the axis
  coremltools picks for those consumers (§a.1).
* edgec: `cargo bench --bench compress` (release), best of 3, all cores and 1 thread.
* coremltools: `palettize_weights.blockwise_compress(arr, "KMEANS", nbits, block_sizes)` (per
  tensor: all block sizes 0; g16: 16 on axis 0) and
  `linear_quantize_weights.blockwise_compress_by_dtype(arr, dtype, "LINEAR_SYMMETRIC", block_sizes)`
  (int8: [1, 0, ...]; int4: [1, 32, 0, ...]), best of 3 wall clock, default threads (kmeans1d is
  single-threaded; scikit-learn uses OpenMP on every core).
* Reconstruction as Core ML sees it: lut_fp16[idx]; fp16(fp32(q - zp) * fp32(scale_fp16)).
  MSE = mean_f64((f64(w) - f64(w_hat))^2) over all elements.
* The k-means path coremltools took is logged per tensor and scheme: kmeans1d (exact DP) iff fp16
  and >= 10,000 elements per group, else scikit-learn Lloyd (n_init=1). It is observed (calls to
  kmeans1d are counted), not only predicted.

Needs numpy, onnx, coremltools 9.0 and scikit-learn (coremltools' fallback path; 1.9.1 was used)
in the venv; no torch, no downloads. Work files go to target/bench-compression/.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
import types
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMES = ["palettize:4", "palettize:4:g16", "palettize:8", "int8", "int4:b32"]
HEADLINE_SCHEMES = ["palettize:4", "palettize:4:g16", "palettize:8"]
KMEANS1D_MIN_ELEMENTS = 10_000  # coremltools' _get_kmeans_lookup_table_and_weight
WEIGHT_THRESHOLD = 2048  # coremltools compresses consts with strictly more elements
RELATIVE_TIE = 1e-9
REPEATS = 3
DEFAULT_MODELS = ["ppocr_v4_rec", "crepe_tiny", "mtcnn_onet", "ddddocr_det", "all_minilm_l6_v2"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Tensor set


class Tensor:
    def __init__(self, name, array, source, headline=False, note=""):
        assert array.dtype == np.float16 and array.flags.c_contiguous
        self.name = name
        self.array = array
        self.source = source  # "synthetic" or the corpus model name
        self.headline = headline  # counted in the headline Mparam/s
        self.note = note


def f16(x):
    """The one cast to fp16 (numpy: round to nearest, ties to even)."""
    return np.ascontiguousarray(np.asarray(x).astype(np.float16))


def synthetic(quick):
    rng = np.random.default_rng(20240601)
    out = []

    def add(name, array, headline=False, note=""):
        out.append(Tensor(name, f16(array), "synthetic", headline, note))

    normal_shapes = [(512, 1024)] if quick else [(4096, 4096), (1024, 4096), (768, 768)]
    for i, shape in enumerate(normal_shapes):
        add(f"syn/normal_{'x'.join(map(str, shape))}", rng.normal(0, 0.02, shape), headline=i < 2)
    conv = (64, 64, 3, 3) if quick else (256, 64, 3, 3)
    add(f"syn/conv_normal_{'x'.join(map(str, conv))}", rng.normal(0, 0.05, conv),
        note="g16 groups of 16x576 = 9,216 < 10,000 elements: scikit-learn per group")
    t_shape = (256, 512) if quick else (1024, 1024)
    add(f"syn/student_t3_{'x'.join(map(str, t_shape))}", rng.standard_t(3, t_shape) * 0.02,
        note="heavy tails (Student-t, 3 dof)")
    add("syn/small_2500_50x50", rng.normal(0, 0.02, (50, 50)), note="< 10,000 elements: scikit-learn")
    add("syn/small_5000_50x100", rng.normal(0, 0.02, (50, 100)), note="< 10,000 elements: scikit-learn")
    c_shape = (128, 128) if quick else (256, 256)
    add(f"syn/constant_{'x'.join(map(str, c_shape))}", np.full(c_shape, 0.0123), note="one distinct value")
    few_shape = (128, 256) if quick else (512, 512)
    levels = np.unique(f16(rng.normal(0, 0.05, 12)))
    add(f"syn/few_values_{'x'.join(map(str, few_shape))}", rng.choice(levels, few_shape),
        note=f"{len(levels)} distinct values")
    return out


def onnx_weights(corpus, model):
    """Eligible weights of corpus/model/model.onnx as fp16 with output channels on axis 0."""
    import onnx
    from onnx import numpy_helper

    path = os.path.join(corpus, model, "model.onnx")
    if not os.path.exists(path):
        log(f"corpus: {path} does not exist, skipped")
        return []
    proto = onnx.load(path)
    graph = proto.graph
    consumer = {}  # initializer name -> (op_type, input index, node), first consumer wins
    for node in graph.node:
        for index, name in enumerate(node.input):
            consumer.setdefault(name, (node.op_type, index, node))
    # Initializers, and Constant nodes' tensors (some exporters, e.g. Paddle's, keep every weight there).
    consts = [(init.name, init) for init in graph.initializer]
    consts += [(node.output[0], attr.t) for node in graph.node if node.op_type == "Constant"
               for attr in node.attribute if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR]
    out = []
    for name, tensor in consts:
        w = numpy_helper.to_array(tensor)
        if w.dtype not in (np.float16, np.float32, np.float64) or w.ndim < 2 or w.size <= WEIGHT_THRESHOLD:
            continue
        op, index, node = consumer.get(name, (None, None, None))
        layout = "as stored"
        if op == "MatMul" and index == 1 and w.ndim == 2:
            w, layout = w.T, "MatMul B transposed to [Dout, Din]"
        elif op == "Gemm" and index == 1:
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            if not trans_b:
                w, layout = w.T, "Gemm B transposed to [N, K]"
        elif op == "ConvTranspose" and index == 1:
            w, layout = np.swapaxes(w, 0, 1), "ConvTranspose W axes 0/1 swapped"
        w16 = f16(w)
        if not np.isfinite(w16).all():
            log(f"corpus: {model}:{name} overflows fp16, skipped")
            continue
        out.append(Tensor(f"{model}:{name}", w16, model, note=f"{op or 'no direct consumer'}, {layout}"))
    log(f"corpus: {model}: {len(out)} eligible weights (of {len(consts)} initializers and Constant nodes)")
    return out


def npz_keys(tensors):
    keys, used = [], set()
    for i, t in enumerate(tensors):
        key = f"t{i:04d}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", t.name)[:80]
        assert key not in used
        used.add(key)
        keys.append(key)
    return keys


# --------------------------------------------------------------------------------------------
# edgec


def run_edgec(npz, out_json, schemes, resume):
    """edgec's rows; with `resume`, those of an earlier complete run on the same npz and schemes,
    at the same commit and compressor sources (anything else is measured again)."""
    with open(npz, "rb") as f:
        stamp = hashlib.sha256(f.read()).hexdigest() + " " + " ".join(schemes) + " " + edgec_source()
    stamp_path, source_path = out_json + ".stamp", out_json + ".source"
    if resume and os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        log(f"--resume: reusing {out_json}")
    else:
        if os.path.exists(stamp_path):
            os.remove(stamp_path)
        with open(source_path, "w") as f:
            f.write(edgec_source())  # what cargo is about to build
        cmd = ["cargo", "bench", "--bench", "compress", "--", npz, out_json, *schemes]
        log("$ " + " ".join(cmd))
        subprocess.run(cmd, cwd=ROOT, check=True)
        with open(stamp_path, "w") as f:
            f.write(stamp)
    with open(out_json) as f, open(source_path) as g:
        return json.load(f), g.read()


def edgec_source():
    """The commit, and a digest of the compression sources when they differ from it."""
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short=10", "HEAD") or "unknown commit"
    paths = ["passes/src/compress", "benches/compress.rs"]
    if not git("status", "--porcelain", "--", *paths):
        return head
    digest = hashlib.sha256()
    for d in paths:
        files = [d] if os.path.isfile(os.path.join(ROOT, d)) else sorted(
            os.path.join(d, n) for n in os.listdir(os.path.join(ROOT, d)) if n.endswith(".rs"))
        for rel in files:
            with open(os.path.join(ROOT, rel), "rb") as f:
                digest.update(rel.encode() + b"\0" + f.read())
    return f"{head} + uncommitted changes to {' / '.join(paths)} (sha256 {digest.hexdigest()[:12]})"


class Cache:
    """coremltools results by (array bytes, shape, scheme), one JSON line each, so that an
    interrupted run can be resumed (--resume) without redoing the finished tensors."""

    def __init__(self, path, resume):
        self.path, self.done = path, {}
        if resume and os.path.exists(path):
            with open(path) as f:
                for line in f:
                    if line.strip():
                        entry = json.loads(line)
                        self.done[entry["key"]] = entry["result"]
            log(f"--resume: {len(self.done)} coremltools results from {path}")
        elif os.path.exists(path):
            os.remove(path)

    @staticmethod
    def key(arr, scheme):
        return hashlib.sha256(arr.tobytes() + repr((arr.shape, scheme)).encode()).hexdigest()

    def get(self, arr, scheme):
        return self.done.get(self.key(arr, scheme))

    def put(self, arr, scheme, result):
        with open(self.path, "a") as f:
            f.write(json.dumps({"key": self.key(arr, scheme), "result": result}) + "\n")


# --------------------------------------------------------------------------------------------
# coremltools


class CoremlTools:
    def __init__(self):
        import logging

        import coremltools
        from coremltools.models.neural_network import quantization_utils
        from coremltools.optimize.coreml._quantization_passes import linear_quantize_weights, palettize_weights

        logging.getLogger("coremltools").setLevel(logging.ERROR)
        self.version = coremltools.__version__
        self.palettize = palettize_weights
        self.linear = linear_quantize_weights
        self.kmeans1d_calls = 0
        real = quantization_utils._kmeans1d
        if real is None:
            raise SystemExit("coremltools' vendored kmeans1d is not importable: its main path is missing")

        def counted_cluster(*args, **kwargs):
            self.kmeans1d_calls += 1
            return real.cluster(*args, **kwargs)

        # Observe which k-means path ran; one Python call per LUT is all it adds.
        quantization_utils._kmeans1d = types.SimpleNamespace(cluster=counted_cluster)
        try:
            import sklearn

            self.sklearn = sklearn.__version__
        except ImportError:
            self.sklearn = None

    def compress(self, arr, scheme):
        rank = arr.ndim
        kind, *rest = scheme.split(":")
        if kind == "palettize":
            nbits = int(rest[0])
            blocks = [0] * rank
            if len(rest) == 2:
                blocks[0] = int(rest[1].lstrip("g"))
            return self.palettize.blockwise_compress(arr, "KMEANS", nbits, blocks)
        blocks = [1] + [0] * (rank - 1)
        if kind == "int8":
            return self.linear.blockwise_compress_by_dtype(arr, "int8", "LINEAR_SYMMETRIC", blocks)
        if kind == "int4":
            blocks[1] = int(rest[0].lstrip("b"))
            return self.linear.blockwise_compress_by_dtype(arr, "int4", "LINEAR_SYMMETRIC", blocks)
        raise ValueError(scheme)

    @staticmethod
    def reconstruct(arr, scheme, params):
        """The dense fp16 tensor Core ML computes from the compressed params."""
        if scheme.startswith("palettize"):
            # LutParams: indices shaped like arr, lut [G, 1, ..., 1, palette, 1] with groups of
            # consecutive channels on axis 0, hence contiguous in row-major order.
            lut = np.asarray(params.lut)
            groups, palette = lut.shape[0], lut.shape[-2]
            assert lut.dtype == np.float16 and lut.size == groups * palette
            idx = np.asarray(params.indices).astype(np.intp).reshape(groups, -1)
            return np.take_along_axis(lut.reshape(groups, palette), idx, axis=1).reshape(arr.shape)
        # QuantParams: data int8 (int4 held in int8), scale fp16 per block, offset (zp) or None.
        q = np.asarray(params.data).astype(np.float32)
        scale = np.asarray(params.scale)
        assert scale.dtype == np.float16
        def per_element(block_values):  # each block's value repeated over its block
            for axis, (size, blocks) in enumerate(zip(arr.shape, block_values.shape)):
                block_values = np.repeat(block_values, size // blocks, axis=axis)
            return block_values

        if params.offset is not None:
            q -= per_element(np.asarray(params.offset).reshape(scale.shape).astype(np.float32))
        return (q * per_element(scale.astype(np.float32))).astype(np.float16)

    def cross_check(self, arr, scheme, params, dense):
        """coremltools' own decompress on small cases: the reconstruction above must equal it."""
        palette = 256 if scheme.startswith("palettize:8") else 16
        if arr.size * (palette if scheme.startswith("palettize") else 1) > 4_000_000:
            return
        own = (self.palettize if scheme.startswith("palettize") else self.linear).decompress(params)
        own = np.asarray(own).astype(np.float16).reshape(arr.shape)
        if not np.array_equal(own.view(np.uint16), dense.view(np.uint16)):
            raise AssertionError(f"reconstruction differs from coremltools' decompress ({scheme})")

    def bench(self, arr, scheme):
        from sklearn.exceptions import ConvergenceWarning

        best, params, calls = float("inf"), None, set()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct values than clusters
            for _ in range(REPEATS):
                self.kmeans1d_calls = 0
                start = time.perf_counter()
                params = self.compress(arr, scheme)
                best = min(best, time.perf_counter() - start)
                calls.add(self.kmeans1d_calls)
                if params is None:
                    break
        if params is None:
            return {"skipped": "coremltools returned None (shape not divisible)"}
        dense = self.reconstruct(arr, scheme, params)
        self.cross_check(arr, scheme, params, dense)
        groups = 1
        if scheme.startswith("palettize"):
            groups = np.asarray(params.lut).shape[0]
            (n,) = calls
            path = "kmeans1d" if n == groups else "sklearn" if n == 0 else f"mixed ({n}/{groups} kmeans1d)"
            predicted = "kmeans1d" if arr.size // groups >= KMEANS1D_MIN_ELEMENTS else "sklearn"
            if path != predicted:
                log(f"  note: {scheme} took {path}, rule predicted {predicted}")
        else:
            path = "linear"
        return {"seconds": best, "mse": mse(arr, dense), "path": path, "groups": groups}


def mse(w, w_hat):
    d = w.astype(np.float64) - w_hat.astype(np.float64)
    return float(np.mean(d * d))


# --------------------------------------------------------------------------------------------
# Report


def ratio(e, c):
    if c == 0:
        return 1.0 if e == 0 else float("inf")
    return e / c


def worse(e, c):
    return e > c * (1 + RELATIVE_TIE) if c > 0 else e > 0


def mparams(n, seconds):
    return n / seconds / 1e6 if seconds else float("nan")


def fmt_rate(x):
    return "—" if x is None or x != x else f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_mse(x):
    return "—" if x is None else "0" if x == 0 else f"{x:.4e}"


def report(tensors, rows, env):
    lines = []
    add = lines.append
    add(f"edgec: {env['edgec']}. Machine: {env['cpu']}, {env['cores']} cores. coremltools {env['coremltools']}, numpy "
        f"{env['numpy']}, scikit-learn {env['sklearn']}, {env['rustc']}. Best of {REPEATS} wall-clock runs each. "
        f"Load average (1 min) before / after edgec / after coremltools: "
        + " / ".join(f"{x:.2f}" for x in env["load"]) + ".")
    add("")
    add("| tensor | shape | scheme | elements | ct path | MSE edgec | MSE coremltools | ratio e/ct | "
        "edgec Mparam/s | edgec 1-thr Mparam/s | ct Mparam/s | speed-up |")
    add("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    shapes = {t.name: "×".join(map(str, t.array.shape)) for t in tensors}
    for r in rows:
        if r.get("skipped"):
            add(f"| {r['tensor']} | {shapes[r['tensor']]} | {r['scheme']} | {r['elements']} | "
                f"skipped by both: {r['skipped']} | | | | | | | |")
            continue
        e_rate = mparams(r["elements"], r["seconds"])
        add(f"| {r['tensor']} | {shapes[r['tensor']]} | {r['scheme']} | {r['elements']} | {r['path']} | "
            f"{fmt_mse(r['mse'])} | {fmt_mse(r['ct_mse'])} | {ratio(r['mse'], r['ct_mse']):.9f} | "
            f"{fmt_rate(e_rate)} | {fmt_rate(mparams(r['elements'], r['seconds_1thread']))} | "
            f"{fmt_rate(mparams(r['elements'], r['ct_seconds']))} | "
            f"{r['ct_seconds'] / r['seconds']:.0f}× |")
    done = [r for r in rows if not r.get("skipped")]
    add("")
    add("Summary")
    add("")
    for path in ("kmeans1d", "sklearn", "linear"):
        group = [r for r in done if r["path"] == path]
        if not group:
            continue
        worst = max(group, key=lambda r: ratio(r["mse"], r["ct_mse"]))
        best = min(group, key=lambda r: ratio(r["mse"], r["ct_mse"]))
        ties = sum(1 for r in group if not worse(r["mse"], r["ct_mse"]) and not worse(r["ct_mse"], r["mse"]))
        add(f"* {path}: {len(group)} cases; MSE ratio edgec/ct from {ratio(best['mse'], best['ct_mse']):.9f} "
            f"({best['tensor']} {best['scheme']}) to {ratio(worst['mse'], worst['ct_mse']):.9f} "
            f"({worst['tensor']} {worst['scheme']}); {ties} ties within {RELATIVE_TIE:g} relative; "
            f"aggregate ΣSSE ratio {sum(r['mse'] * r['elements'] for r in group) / max(sum(r['ct_mse'] * r['elements'] for r in group), 1e-300):.6f}")
    worst = max(done, key=lambda r: ratio(r["mse"], r["ct_mse"]))
    bad = [r for r in done if worse(r["mse"], r["ct_mse"])]
    add(f"* Worst ratio: {ratio(worst['mse'], worst['ct_mse']):.9f} ({worst['tensor']} {worst['scheme']}).")
    if bad:
        add(f"* **edgec is NOT <= coremltools on every tensor** (to {RELATIVE_TIE:g} relative): "
            + "; ".join(f"{r['tensor']} {r['scheme']} ratio {ratio(r['mse'], r['ct_mse']):.9f}" for r in bad))
    else:
        add(f"* edgec <= coremltools on every tensor and scheme (to {RELATIVE_TIE:g} relative): yes "
            f"({len(done)} cases).")
    mismatched = [r for r in rows if r.get("eligibility_mismatch")]
    if mismatched:
        add("* **Eligibility mismatch** (one tool compressed, the other skipped): "
            + "; ".join(f"{r['tensor']} {r['scheme']}" for r in mismatched))
    skipped = [r for r in rows if r.get("skipped")]
    if skipped:
        add(f"* Skipped by both tools (shape not divisible or rank < 2): {len(skipped)} cases.")
    heads = [t for t in tensors if t.headline]
    add(f"* Headline throughput over {', '.join(t.name for t in heads)} (ΣN / Σseconds):")
    slow = []
    for scheme in HEADLINE_SCHEMES:
        group = [r for r in done if r["scheme"] == scheme and r["tensor"] in {t.name for t in heads}]
        if not group:
            continue
        n = sum(r["elements"] for r in group)
        rate = mparams(n, sum(r["seconds"] for r in group))
        rate1 = mparams(n, sum(r["seconds_1thread"] for r in group))
        rate_ct = mparams(n, sum(r["ct_seconds"] for r in group))
        per_tensor = ", ".join(f"{fmt_rate(mparams(r['elements'], r['seconds']))}" for r in group)
        add(f"  * {scheme}: edgec {fmt_rate(rate)} Mparam/s all cores (per tensor {per_tensor}), "
            f"{fmt_rate(rate1)} Mparam/s 1 thread; coremltools {fmt_rate(rate_ct)} Mparam/s "
            f"({rate / rate_ct:.0f}× faster)")
        slow += [(scheme, r) for r in group if mparams(r["elements"], r["seconds"]) < 100]
        if rate < 100:
            slow.append((scheme, None))
    if slow:
        add("* **Below 100 Mparam/s on a headline scheme**: "
            + "; ".join(f"{s} {'aggregate' if r is None else r['tensor']}" for s, r in slow))
    else:
        add("* Every headline scheme is >= 100 Mparam/s (all cores) on every large synthetic tensor.")
    return "\n".join(lines)


def environment(ct):
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "coremltools": ct.version, "numpy": np.__version__,
            "sklearn": ct.sklearn, "rustc": rustc}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller synthetic set, for a fast check")
    ap.add_argument("--corpus", metavar="DIR", help="corpus output dir holding <model>/model.onnx")
    ap.add_argument("models", nargs="*", metavar="MODEL",
                    help=f"corpus models (default with --corpus: {' '.join(DEFAULT_MODELS)})")
    ap.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated (default: %(default)s)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "target", "bench-compression"))
    ap.add_argument("--report", metavar="FILE", help="also write the markdown table and summary here")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the edgec rows and the coremltools results an interrupted run left in --workdir")
    args = ap.parse_args()
    if args.models and not args.corpus:
        ap.error("MODEL needs --corpus")
    schemes = [s for s in args.schemes.split(",") if s]

    ct = CoremlTools()
    if ct.sklearn is None:
        raise SystemExit("scikit-learn is not installed in this venv: coremltools' k-means fallback (groups of "
                         "< 10,000 elements) needs it: .venv/bin/pip install scikit-learn==1.9.1")
    env = environment(ct)

    tensors = synthetic(args.quick)
    if args.corpus:
        for model in args.models or DEFAULT_MODELS:
            tensors += onnx_weights(args.corpus, model)
    os.makedirs(args.workdir, exist_ok=True)
    npz = os.path.join(args.workdir, "tensors.npz")
    keys = npz_keys(tensors)
    np.savez(npz, **{k: t.array for k, t in zip(keys, tensors)})
    log(f"{len(tensors)} tensors, {sum(t.array.size for t in tensors):,} elements -> {npz}")
    for t in tensors:
        log(f"  {t.name} {list(t.array.shape)}" + (f" ({t.note})" if t.note else ""))

    env["load"] = [os.getloadavg()[0]]
    edgec_rows, env["edgec"] = run_edgec(npz, os.path.join(args.workdir, "edgec.json"), schemes, args.resume)
    env["load"].append(os.getloadavg()[0])
    by_key = {(r["tensor"], r["scheme"]): r for r in edgec_rows}

    cache = Cache(os.path.join(args.workdir, "coremltools.jsonl"), args.resume)
    rows = []
    for key, t in zip(keys, tensors):
        log(f"coremltools: {t.name} {list(t.array.shape)}")
        for scheme in schemes:
            row = dict(by_key[(key, scheme)], tensor=t.name)
            c = cache.get(t.array, scheme)
            if c is None:
                c = ct.bench(t.array, scheme)
                cache.put(t.array, scheme, c)
            if c.get("skipped") or row.get("skipped"):
                if bool(c.get("skipped")) != bool(row.get("skipped")):
                    row["eligibility_mismatch"] = True
                    log(f"  {scheme}: ELIGIBILITY MISMATCH edgec: {row.get('skipped')} ct: {c.get('skipped')}")
                row["skipped"] = row.get("skipped") or c["skipped"]
                log(f"  {scheme:>16}: skipped ({row['skipped']})")
                rows.append(row)
                continue
            row.update(ct_seconds=c["seconds"], ct_mse=c["mse"], path=c["path"], ct_groups=c["groups"])
            log(f"  {scheme:>16}: {c['path']:>8}, {c['seconds']:8.3f} s ({fmt_rate(mparams(t.array.size, c['seconds']))} "
                f"Mparam/s), mse {fmt_mse(c['mse'])}, edgec/ct {ratio(row['mse'], c['mse']):.9f}")
            rows.append(row)

    env["load"].append(os.getloadavg()[0])
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump({"environment": env, "rows": rows}, f, indent=1)
    text = report(tensors, rows, env)
    print(text)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
