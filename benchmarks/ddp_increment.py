"""One LID increment on 2 DDP processes (gloo, CPU) and on 1 process, side by side (ddp_increment.md).

Writes a 2-task synthetic stream, learns task 0 once on one process (the common starting point), then learns
task 1 on top of it twice from the same state: `devices: 1` and `strategy: ddp, devices: 2`
(ifd/train/ddp.py).
Reports each increment's learning time (fit + replay selection, `state.times_s`), its wall time with
evaluation, the threads each training process used and the a[t][i] AUC rows, with the machine's load.

    .venv/bin/python benchmarks/ddp_increment.py [--per-class 60] [--size 64] [--backbone ifd_cnn_small]
        [--families checkerboard,fingerprint] [--epochs 3] [--threads 1] [--seeds 0] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from ifd.continual.config import load_lid_config
from ifd.data.tasks import tasks_from_stream
from ifd.synth.config import SynthConfig
from ifd.synth.stream import write_stream
from ifd.train import learn_task


class ThreadsProbe(pl.Callback):
    """Each training process writes `rank threads` to `path` when its fit starts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with self.path.open("a") as f:
            f.write(f"{trainer.global_rank} {torch.get_num_threads()}\n")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _increment(state: Any, tasks: list[Any], cfg: Any, work: Path, name: str) -> dict[str, Any]:
    probe = work / f"{name}.threads"
    load_before = _load()
    started = time.perf_counter()
    after = learn_task(state, tasks[1], cfg, work / name, tasks[:1], resume=False, progress=lambda _: None,
                       callbacks=[ThreadsProbe(probe)])
    return {
        "devices": int(cfg.devices),
        "strategy": cfg.strategy,
        "learn_s": after.times_s[-1],
        "wall_s": round(time.perf_counter() - started, 2),
        "threads_per_process": sorted(probe.read_text().split("\n")[:-1]),
        "auc_row": [round(a, 4) for a in after.matrix.to_dict()["auc"][-1]],
        "load_before": load_before,
        "load_after": _load(),
    }


def _one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    overrides = {"backbone": args.backbone, "img_size": args.size, "epochs": args.epochs, "seed": seed,
                 "accelerator": "cpu"}
    one = load_lid_config("cpu", overrides)
    two = load_lid_config("cpu", {**overrides, "strategy": "ddp", "devices": 2})
    with tempfile.TemporaryDirectory(prefix="ddp_increment_") as tmp:
        work = Path(tmp)
        synth = SynthConfig(tasks=2, per_class=args.per_class, size=args.size, seed=seed,
                            families=args.families.split(","))
        write_stream(work / "stream", synth)
        tasks = tasks_from_stream(work / "stream")
        started = time.perf_counter()
        base = learn_task(None, tasks[0], one, work / "task0", resume=False, progress=lambda _: None)
        base_s = round(time.perf_counter() - started, 2)
        runs = [_increment(base, tasks, cfg, work, name) for cfg, name in ((one, "one"), (two, "two"))]
    diff = max(abs(a - b) for a, b in zip(runs[0]["auc_row"], runs[1]["auc_row"], strict=True))
    return {
        "seed": seed,
        "tasks": [t.name for t in tasks],
        "task0_auc": base.matrix.to_dict()["auc"][0],
        "task0_wall_s": base_s,
        "runs": runs,
        "max_abs_auc_diff": round(diff, 4),
        "learn_time_ratio_two_over_one": round(runs[1]["learn_s"] / runs[0]["learn_s"], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--families", default="checkerboard,fingerprint", help="the two tasks' generator families")
    ap.add_argument("--backbone", default="ifd_cnn_small")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in every training process")
    ap.add_argument("--seeds", default="0", help="comma-separated; each seed is its own stream and run")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    # Lightning sets the workers' threads itself unless OMP_NUM_THREADS is set; forked workers inherit both
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    per_seed = [_one_seed(args, int(s)) for s in args.seeds.split(",")]
    result = {
        "command": " ".join([".venv/bin/python benchmarks/ddp_increment.py", *sys.argv[1:]]),
        "config": {"preset": "cpu", "backbone": args.backbone, "img_size": args.size, "epochs": args.epochs,
                   "per_class": args.per_class, "families": args.families, "threads": args.threads},
        "seeds": per_seed,
        "max_abs_auc_diff": max(r["max_abs_auc_diff"] for r in per_seed),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "cpus": os.cpu_count(),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
