"""Cross-family transfer of the default synthetic stream -> benchmarks/synth_transfer.md.

Writes the stream with `write_stream` defaults (6 families, 240 images per class, 64 px, seed 0), trains
the probe CNN of `ifd.synth.transfer` on each family and tests it on every family. One CPU thread.

    .venv/bin/python benchmarks/synth_transfer.py [--epochs 20] [--seeds 0,1,2] [--md benchmarks/synth_transfer.md]
        [--families widened]   # the default six + the weak low-frequency three (one task per family)

The table is the mean over probe seeds (the stream itself is the default, seed 0); the largest
standard deviation over seeds is reported under it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ifd.synth.config import SynthConfig
from ifd.synth.stream import write_stream
from ifd.synth.transfer import cross_family_matrix, matrix_markdown

HERE = Path(__file__).resolve().parent


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _report(names: list[str], aucs: np.ndarray, args: argparse.Namespace, gen_s: float, probe_s: float) -> str:
    auc, std = aucs.mean(axis=0), aucs.std(axis=0)
    off = auc[~np.eye(len(names), dtype=bool)]
    near_chance = int(np.sum(np.abs(off - 0.5) <= 0.1))
    command = " ".join([".venv/bin/python benchmarks/synth_transfer.py", *sys.argv[1:]])
    return "\n".join([
        "# Synthetic stream: cross-family transfer",
        "",
        "AUC on each family's test split (columns) of a small from-scratch CNN trained on one family's train",
        "split (rows), `ifd.synth.transfer.ProbeCNN`, Adam + one-cycle, no augmentation. A high diagonal says",
        "each family's trace is learnable; off-diagonal values near 0.5 say a detector of one family does not",
        "catch the others, which is what lets the stream show forgetting.",
        "",
        matrix_markdown(names, auc),
        "",
        f"Mean over {len(aucs)} probe seeds; largest std over seeds {std.max():.3f} (diagonal: {np.diag(std).max():.3f}).",
        "",
        f"- diagonal: mean {np.diag(auc).mean():.3f}, min {np.diag(auc).min():.3f}",
        f"- off-diagonal: mean {off.mean():.3f}, {near_chance} of {off.size} within 0.5 +- 0.1",
        f"- stream: `write_stream` with {_synth_config(args).model_dump()}",
        f"- probe: {args.epochs} epochs, seeds {args.seeds}",
        f"- time: stream generation {gen_s:.1f} s; probes {probe_s:.1f} s for {len(aucs)} seeds x {len(names)} trainings",
        f"- command: `{command}`",
        f"- date: {dt.date.today().isoformat()}",
        f"- machine: {os.cpu_count()}-core CPU ({_cpu_name()}), 1 torch thread, torch {torch.__version__}",
        "",
    ])


def _synth_config(args: argparse.Namespace) -> SynthConfig:
    """The defaults, or one task per family of `--families` (names or a set: default, lowfreq, widened)."""
    if not args.families:
        return SynthConfig()
    from ifd.synth.families import expand_families

    families = expand_families(args.families.split(","))
    return SynthConfig(tasks=len(families), families=families)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", default="0,1,2", help="probe seeds, comma-separated")
    parser.add_argument("--stream", type=Path, help="write the stream here (default: a temporary folder)")
    parser.add_argument("--md", type=Path, default=HERE / "synth_transfer.md")
    parser.add_argument("--families", help="comma-separated families or a set (widened, lowfreq); default: the six")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        stream = args.stream or Path(tmp) / "stream"
        start = time.perf_counter()
        write_stream(stream, _synth_config(args), overwrite=args.stream is not None)
        gen_s = time.perf_counter() - start
        start = time.perf_counter()
        runs = [cross_family_matrix(stream, epochs=args.epochs, seed=int(s)) for s in args.seeds.split(",")]
        probe_s = time.perf_counter() - start
    names = runs[0][0]
    text = _report(names, np.stack([auc for _, auc in runs]), args, gen_s, probe_s)
    args.md.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
