#!/usr/bin/env python3
"""Export corpus models with today's default torch exporter (`torch.onnx.export(dynamo=True)`)
into the corpus, as `<name>_dynamo_opset<N>` (run locally with the corpus venv: it needs torch).

It reuses ../shared/corpus's builders (same modules, weights and inputs as the TorchScript-exported
originals) with their exporter swapped for the dynamo one at the given opsets, and lets the
corpus's `lib.finalize` run onnxruntime and write inputs.npz, outputs.npz and meta.json.

    ~/.cache/edgec-corpus/venv/bin/python scripts/dynamo_corpus.py [--opsets 18,23] [NAME ...]
    (default names: resnet18 bert_tiny vit_small whisper_tiny_encoder gpt2; CORPUS_OUT as for build.sh)

Then `scripts/verify_corpus.sh CORPUS_OUT resnet18_dynamo_opset18 ...` checks them.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
DEFAULT = ["resnet18", "bert_tiny", "vit_small", "whisper_tiny_encoder", "gpt2"]


def build(name: str, opset: int) -> None:
    """In this process: export `name` with the dynamo exporter at `opset` and finalize it."""
    sys.path.insert(0, str(CORPUS))
    import builders
    import lib

    def dynamo_export(module, args, path, input_names, output_names, dynamic_axes=None, opset=None,
                      preserve_bn=False, _opset=opset):
        torch = builders._torch()
        module.eval()
        with torch.no_grad():
            program = torch.onnx.export(module, args, dynamo=True, opset_version=_opset,
                                        input_names=input_names, output_names=output_names, verbose=False)
        program.save(str(path), external_data=False)
        with torch.no_grad():
            builders._record_torch_outputs(module(*args))

    builders.torch_export = dynamo_export
    out_name = f"{name}_dynamo_opset{opset}"
    spec = builders.REGISTRY[name]
    tmp = lib.new_tmpdir(out_name)
    t0 = time.time()
    inputs, meta = spec["fn"](tmp)
    meta = {"group": "dynamo", "tags": ["dynamo"], **meta}
    meta.setdefault("source", {})["exporter"] = f"torch.onnx.export(dynamo=True), opset {opset}"
    meta["notes"] = f"{name} exported by the dynamo exporter at opset {opset} (scripts/dynamo_corpus.py)."
    meta["build_seconds_export"] = round(time.time() - t0, 1)
    full = lib.finalize(out_name, tmp, inputs, meta, framework_outputs=builders.LAST_TORCH_OUTPUTS)
    print(f"[ok] {out_name}: {full['file_size_bytes'] / 1e6:.1f} MB, {full['node_count']} nodes")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        build(argv[1], int(argv[2]))
        return 0
    opsets = [18, 23]
    if argv[:1] == ["--opsets"]:
        opsets = [int(o) for o in argv[1].split(",")]
        argv = argv[2:]
    status = 0
    for name in argv or DEFAULT:
        for opset in opsets:
            # One process per export, as build.py does: torch state does not leak between models.
            r = subprocess.run([sys.executable, __file__, "--one", name, str(opset)], cwd=CORPUS)
            if r.returncode != 0:
                print(f"[failed] {name} opset {opset}", flush=True)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
