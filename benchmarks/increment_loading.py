"""Throughput of one increment with DataLoader workers and the decoded-image cache on and off (issue 11, item 5).

Every mode learns the same first two tasks of a stream with the same config and seed, in a fresh interpreter
of its own, and reports the second increment (new task + replay of the first, whose images are re-read from
the batch store): its learn seconds and train images per second (new + replayed samples x epochs / seconds).
Modes run in rounds (A B C, A B C, ...) so that a change of machine load hits every mode alike:

- `w0-nocache`: no worker processes, `image_cache_mb: 0` (every read decodes and resizes the file);
- `w0-cache`:   no workers, the decoded-image cache (`image_cache_mb`, default 2048);
- `w2-cache`:   2 persistent DataLoader workers, each with its share of the cache.

    .venv/bin/python benchmarks/increment_loading.py --stream benchmarks/streams/synth6 --img-size 128 \
        --epochs 2 --rounds 2 --threads 1 --out benchmarks/increment_loading.json
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

HERE = Path(__file__).resolve().parent
MODES = {
    "w0-nocache": {"num_workers": 0, "image_cache_mb": 0},
    "w0-cache": {"num_workers": 0},
    "w2-cache": {"num_workers": 2, "persistent_workers": True},
}


def one(args: argparse.Namespace) -> dict[str, Any]:
    """Run one mode here; the second increment's learn time and rate."""
    import torch

    sys.path.insert(0, str(HERE.parent))
    from ifd.continual.config import load_lid_config
    from ifd.data.tasks import tasks_from_stream
    from ifd.train.loop import train_sequence
    from ifd.train.val_split import with_val

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {"epochs": args.epochs, "seed": 0, **MODES[args.one]}
    if args.img_size:
        overrides["img_size"] = args.img_size
    cfg = load_lid_config(args.preset, overrides)
    tasks = [with_val(t, lambda _: None) for t in tasks_from_stream(Path(args.stream))[:2]]
    with tempfile.TemporaryDirectory() as tmp:
        state = train_sequence(tasks, cfg, Path(tmp), resume=False, progress=lambda _: None)
    seconds = float(state.times_s[1])
    replayed = len(state.store) - cfg.budget_per_task  # what task 0 left in the store, replayed in task 1
    samples = (len(tasks[1].split("train")) + max(replayed, 0)) * cfg.epochs
    return {"mode": args.one, "learn_s": round(seconds, 2), "images_per_s": round(samples / seconds, 1),
            "first_increment_s": round(float(state.times_s[0]), 2), "img_size": cfg.img_size,
            "backbone": cfg.backbone, "epochs": cfg.epochs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream", default=str(HERE / "streams" / "synth6"))
    p.add_argument("--preset", default="cpu")
    p.add_argument("--img-size", dest="img_size", type=int)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--out")
    p.add_argument("--one", choices=list(MODES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    runs = []
    for r in range(args.rounds):
        for mode in modes:
            cmd = [sys.executable, __file__, "--one", mode, "--stream", args.stream, "--preset", args.preset,
                   "--epochs", str(args.epochs), "--threads", str(args.threads)]
            if args.img_size:
                cmd += ["--img-size", str(args.img_size)]
            started = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            runs.append({**json.loads(out), "round": r, "wall_s": round(time.perf_counter() - started, 1)})
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    base = [x["learn_s"] for x in runs if x["mode"] == modes[0]]
    summary = {}
    for mode in modes:
        mine = [x["learn_s"] for x in runs if x["mode"] == mode]
        rates = [x["images_per_s"] for x in runs if x["mode"] == mode]
        summary[mode] = {"learn_s": mine, "images_per_s": rates,
                         "speedup_vs_first": round(sum(base) / sum(mine), 2)}
    result = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"), "runs": runs, "summary": summary}
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
