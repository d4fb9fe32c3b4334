"""Which optimised runtime to serve with: eager PyTorch vs ONNX Runtime (both exporters) vs torch.compile,
on the detector the demo serves (ifd_cnn_small, 64 px, 6 task heads), at batch 1 and 32 -> JSON on stdout,
Markdown with `--out`.

For each runtime: time to prepare (export / compile), ms per call at each batch size (median of
`--repeats` timed calls after a warm-up), and max |dp_fake| against eager on the parity batch.

    .venv/bin/python benchmarks/runtime_choice.py [--threads 2] [--repeats 30] [--no-compile] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def timed(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, repeats: int) -> float:
    fn(x)
    fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def main() -> int:
    from ifd.continual.config import LIDConfig
    from ifd.inference.onnx_runtime import OnnxForward, _DetectorGraph, export_onnx, parity_batch
    from ifd.train.state import build_detector

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (it needs a C++ compiler and ~20 s)")
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_detector(LIDConfig(backbone="ifd_cnn_small", img_size=64), n_heads=6, pretrained=False).eval()
    model.set_calibration(1.3, -0.2)
    graph = _DetectorGraph(model).eval()
    batch = parity_batch(64, n=32)
    with torch.no_grad():
        ref = graph(batch)[0]
    rows: list[dict[str, Any]] = []

    def measure(name: str, prepare: Callable[[], Callable[[torch.Tensor], Any]]) -> None:
        t0 = time.perf_counter()
        fn = prepare()
        with torch.no_grad():
            fn(batch[:3])
            prep = time.perf_counter() - t0
            dp = float((fn(batch)[0] - ref).abs().max())
            rows.append({"runtime": name, "prepare_s": round(prep, 2), "ms_batch_1": timed(fn, batch[:1], args.repeats),
                         "ms_batch_32": timed(fn, batch, args.repeats), "max_dp_fake": dp})
        print(json.dumps(rows[-1]))

    def onnx(dynamo: bool) -> Callable[[], Callable[[torch.Tensor], Any]]:
        def prepare() -> Callable[[torch.Tensor], Any]:
            path = Path(tempfile.mkdtemp()) / "g.onnx"
            if not dynamo:
                export_onnx(model, 64, path)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(graph, (batch[:2],), str(path), dynamo=True, external_data=False, verbose=False,
                                      input_names=["pixels"], output_names=["p_fake", "embedding"],
                                      dynamic_shapes={"pixels": {0: torch.export.Dim("n", min=1, max=65536)}})
            return OnnxForward(path, threads=args.threads)
        return prepare

    measure("eager", lambda: graph)
    measure("onnxruntime (TorchScript exporter)", onnx(False))
    measure("onnxruntime (dynamo exporter)", onnx(True))
    if not args.no_compile:
        measure("torch.compile (inductor, dynamic batch)", lambda: torch.compile(graph, dynamic=True))
    if args.out:
        lines = [f"# Runtime choice ({args.threads} threads; ifd_cnn_small 64 px, 6 heads)", "",
                 "| runtime | prepare s | ms at batch 1 | ms at batch 32 | max abs dp_fake vs eager |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['runtime']} | {r['prepare_s']:.1f} | {r['ms_batch_1']:.2f} | {r['ms_batch_32']:.1f} | {r['max_dp_fake']:.1e} |" for r in rows]
        lines += ["", f"- command: `.venv/bin/python benchmarks/runtime_choice.py --threads {args.threads} --out {args.out}`"]
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
