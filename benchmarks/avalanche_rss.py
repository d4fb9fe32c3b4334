"""Peak RSS of one Avalanche baseline run: the lazy adapter against the eager loading it replaced.

Each mode runs the same strategy on the same stream, config and seed in a fresh interpreter of its own
(so `ru_maxrss` is that run's alone), one after the other, and the table puts them side by side:

- `eager`: what the adapter did before: every train and test split of every task decoded up front into
  float32 tensors (through the 2 GiB uint8 `ImageCache` it used), reconstructed here for this comparison;
- `lazy`: `ifd.bench.avalanche_adapter.lazy_splits` (images decoded when a batch asks, through the
  uint8 cache of the config's `image_cache_mb`, LRU-bounded; --image-cache-mb, default the config's);
- `lazy-nocache`: the same with `image_cache_mb: 0` (every read decodes the file).

Without --stream it first writes a synthetic stream at --img-size (cheap families; the content does not
matter for memory). The measurement the issue asks for (256 px):

    .venv/bin/python benchmarks/avalanche_rss.py --img-size 256 --tasks 4 --per-class 300 --epochs 1 \
        --strategy naive --out benchmarks/avalanche_rss.json

A smoke run: `--img-size 64 --tasks 2 --per-class 20 --epochs 1 --backbone ifd_cnn_tiny --out /tmp/rss.json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("eager", "lazy", "lazy-nocache")
SYNTH_FAMILIES = ["checkerboard", "fingerprint", "blend", "warp"]


def eager_splits(ctx: Any) -> Any:
    """The adapter's loading before it was made lazy: each split stacked into float32 tensors at once."""
    import torch
    from torch.utils.data import Dataset

    from ifd.bench.avalanche_adapter import Splits
    from ifd.data.image_dataset import ImageCache, TaskImageDataset, to_model_input

    class TensorSplit(Dataset):
        def __init__(self, x: torch.Tensor, y: torch.Tensor, video_ids: list[str]) -> None:
            self.x, self.y, self.targets, self.video_ids = x, y, y.tolist(), video_ids

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            return self.x[i], int(self.y[i])

    cache, out = ImageCache(), Splits([], [])
    for task in ctx.tasks:
        for split, into in (("train", out.train), (getattr(ctx, "eval_split", "test"), out.test)):
            rows = task.split(split)
            ds = TaskImageDataset(task.root, rows, ctx.base.img_size, 0, cache=cache)
            x = to_model_input(torch.stack([ds.pixels(i) for i in range(len(ds))]))
            into.append(TensorSplit(x, ds.labels.clone(), task.video_ids(rows)))
    return out


def child(mode: str, spec_path: Path) -> dict[str, Any]:
    """One run in this process: the strategy of the spec with the mode's loader; peak RSS in MiB."""
    from ifd.bench.avalanche_adapter import lazy_splits, preload, run_avalanche
    from ifd.bench.spec import RunSpec
    from ifd.bench.worker import context, peak_rss_mb

    spec = RunSpec.load(spec_path)
    ctx = context(spec, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    preload()
    after_imports = peak_rss_mb()
    started = time.perf_counter()
    result = run_avalanche(spec.strategy, ctx, load=eager_splits if mode == "eager" else lazy_splits)
    return {
        "mode": mode,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_imports_mb": after_imports,
        "wall_s": round(time.perf_counter() - started, 2),
        "time_per_task_s": result.time_per_task_s,
        "final_auc": (result.matrix or {}).get("auc", [[]])[-1],
    }


def write_synth(out: Path, args: argparse.Namespace) -> Path:
    from ifd.synth.config import SynthConfig
    from ifd.synth.stream import write_stream

    cfg = SynthConfig(tasks=args.tasks, per_class=args.per_class, size=args.img_size, seed=0,
                      families=SYNTH_FAMILIES[: args.tasks])
    write_stream(out, cfg)
    return out


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = [
        f"# Peak RSS of one Avalanche `{s['strategy']}` run at {s['img_size']} px",
        "",
        f"Stream `{s['stream']}` ({s['tasks']} tasks, {s['train_images']} train + {s['test_images']} test images), "
        f"backbone `{s['backbone']}`, {s['epochs']} epoch(s), batch {s['batch_size']}, seed 0; "
        f"`image_cache_mb` {s['image_cache_mb']} in the lazy mode; each mode in a fresh process. "
        f"Command: `{report['command']}`.",
        "",
        "| loading | peak RSS (MiB) | after imports (MiB) | run's own (MiB) | wall (s) | final AUC |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in report["runs"]:
        own = r["peak_rss_mb"] - r["rss_after_imports_mb"]
        auc = " ".join(f"{a:.3f}" for a in r["final_auc"])
        lines.append(f"| {r['mode']} | {r['peak_rss_mb']:.0f} | {r['rss_after_imports_mb']:.0f} | {own:.0f} | "
                     f"{r['wall_s']:.1f} | {auc} |")
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream", help="a stream folder (default: write a synthetic one at --img-size)")
    p.add_argument("--img-size", type=int, default=256)
    p.add_argument("--tasks", type=int, default=4)
    p.add_argument("--per-class", type=int, default=300, help="synthetic stream only")
    p.add_argument("--strategy", default="naive")
    p.add_argument("--backbone", default="ifd_cnn_small")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, help="torch threads per run")
    p.add_argument("--image-cache-mb", type=int, help="decoded-image cache of the lazy mode (default: the config's)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--out", default="benchmarks/avalanche_rss.json", help="JSON report; the .md goes beside it")
    p.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        p.error(f"unknown mode(s) {unknown}; known: {', '.join(MODES)}")

    from ifd.bench.spec import RunSpec
    from ifd.continual.config import LIDConfig
    from ifd.data.tasks import tasks_from_stream

    with tempfile.TemporaryDirectory(prefix="ifd-rss-") as tmp:
        stream = Path(args.stream) if args.stream else write_synth(Path(tmp) / "stream", args)
        tasks = tasks_from_stream(stream)[: args.tasks]
        lid = LIDConfig(backbone=args.backbone, img_size=args.img_size, epochs=args.epochs, batch_size=args.batch_size,
                        **({} if args.image_cache_mb is None else {"image_cache_mb": args.image_cache_mb}))
        lid = lid.model_dump(mode="json")
        runs = []
        for mode in modes:
            spec = RunSpec(strategy=args.strategy, stream=str(stream), tasks=len(tasks), threads=args.threads,
                           lid={**lid, **({"image_cache_mb": 0} if mode == "lazy-nocache" else {})},
                           work_dir=str(Path(tmp) / mode))
            spec_path = spec.save(Path(tmp) / mode / "spec.json")
            print(f"[rss] {mode} ...", file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, __file__, "--child", mode, str(spec_path)],
                                  stdout=subprocess.PIPE, text=True, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"[rss] {mode}: peak {runs[-1]['peak_rss_mb']:.0f} MiB", file=sys.stderr, flush=True)
        settings = {
            "stream": str(args.stream or f"synthetic ({', '.join(SYNTH_FAMILIES[: args.tasks])}, "
                                         f"{args.per_class} per class)"),
            "strategy": args.strategy, "img_size": args.img_size, "tasks": len(tasks), "backbone": args.backbone,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "train_images": sum(len(t.split("train")) for t in tasks),
            "test_images": sum(len(t.split("test")) for t in tasks),
            "image_cache_mb": lid.get("image_cache_mb"),
        }
    report = {"settings": settings, "runs": runs,
              "command": " ".join([".venv/bin/python benchmarks/avalanche_rss.py", *sys.argv[1:]])}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
