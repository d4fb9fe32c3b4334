"""Cost growth: learn seconds per increment against the task index, LID vs joint retraining ->
benchmarks/cost_growth.{md,png,json} (and the full benchmark output under benchmarks/cost_growth_run/).

    .venv/bin/python benchmarks/cost_growth.py [--tasks 10] [--per-class 240] [--size 64] [--seeds 1]
        [--epochs E] [--replay-per-batch N] [--threads N] [--stream DIR] [--out benchmarks]

Writes a `--tasks`-task synthetic stream (`ifd synth --tasks 10`; reused from `--stream` if that folder
holds one), then runs `ifd bench STREAM --cost --strategies lid,joint`: each (strategy, seed) in its
own process. LID gets a fixed replay count per batch (`replay_per_batch`; half a batch unless given),
which keeps its increment cost flat; joint retrains on every task so far, so its cost grows.
The check of issue 4: LID's time at task 10 within 1.3x of its time at task 2 (`last / task 2` column).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    from ifd.cli import main as ifd_main
    from ifd.synth.config import SynthConfig
    from ifd.synth.stream import write_stream

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--per-class", dest="per_class", type=int, default=240)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seeds", default="1")
    p.add_argument("--epochs", type=int)
    p.add_argument("--replay-per-batch", dest="replay_per_batch", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--strategies", default="lid,joint")
    p.add_argument("--stream", default=str(HERE / "streams" / "synth10"), help="stream folder (written if absent)")
    p.add_argument("--out", default=str(HERE), help="folder for cost_growth.{md,png,json}")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further `ifd bench` options")
    args = p.parse_args()

    stream = Path(args.stream)
    if not (stream / "stream.json").is_file():
        write_stream(stream, SynthConfig(tasks=args.tasks, per_class=args.per_class, size=args.size), overwrite=True)
    run_out = Path(args.out) / "cost_growth_run"
    argv = ["bench", str(stream), "--cost", "--strategies", args.strategies, "--seeds", args.seeds,
            "--tasks", str(args.tasks), "--out", str(run_out), "--params", str(HERE.parent / "params.yaml")]
    for flag, value in (("--epochs", args.epochs), ("--replay-per-batch", args.replay_per_batch), ("--threads", args.threads)):
        if value is not None:
            argv += [flag, str(value)]
    code = ifd_main([*argv, *args.extra])
    if code == 0:
        for ext in ("md", "png", "json"):
            shutil.copy(run_out / f"cost_growth.{ext}", Path(args.out) / f"cost_growth.{ext}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
