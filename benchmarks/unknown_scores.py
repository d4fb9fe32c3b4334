"""Unknown-generator AUC of every registered score, after each task of a finished `ifd train` run.

Reads the run's `state_task_<t>.pt` files (each the detector, replay store and centroids right after task
t) and, for every t but the last, fits every score of ifd/eval/unknown on that state's budgeted data and
measures it on the next, not yet learned task: its val images against the seen tasks' val images (the
numbers a default may be chosen on) and its test images against the seen tasks' test images (reported
once). It is the same report `ifd train` writes into metrics.json (`open_set[*].unknown_auc_by_method`);
this script recomputes it from the state files so that a run trained before the scores existed counts too.

    .venv/bin/python benchmarks/unknown_scores.py RUN_DIR --stream benchmarks/streams/synth6 [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def measure(run: Path, stream: Path) -> dict[str, Any]:
    """Per step t: {after, unseen, auc_val, auc_test, bytes, known_flagged, unseen_flagged} by score label."""
    from ifd.data.image_dataset import image_cache
    from ifd.data.tasks import tasks_from_stream
    from ifd.eval.attribution import AttributionIndex
    from ifd.train.attribution_fit import open_set_report
    from ifd.train.state import IncrementalState
    from ifd.train.val_split import with_val

    tasks = [with_val(t) for t in tasks_from_stream(stream)]
    steps = []
    for t in range(len(tasks) - 1):
        path = run / f"state_task_{t}.pt"
        if not path.is_file():
            break
        state = IncrementalState.load(path)
        if state.task_names != [x.name for x in tasks[: t + 1]]:
            raise SystemExit(f"{path} learned {state.task_names}, not the stream's first {t + 1} tasks")
        cache = image_cache(state.cfg)
        index = AttributionIndex.from_dict(state.attribution)
        model = state.model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            rep = open_set_report(model, index, tasks[: t + 1], tasks[t + 1 : t + 2], state.cfg, cache, state=state)
        rep["seconds"] = round(time.perf_counter() - started, 1)
        steps.append(rep)
        print(f"after {rep['after']}: val fakes " + " ".join(f"{k}={v:.3f}" for k, v in rep["unknown_fake_auc_val_by_method"].items()), file=sys.stderr)
    return {"run": str(run), "stream": str(stream), "steps": steps}


def markdown(result: dict[str, Any], title: str) -> str:
    steps = result["steps"]
    labels = list(steps[0]["unknown_auc_by_method"])
    lines = [f"### {title}", ""]
    tables = (
        ("val", "unknown_auc_val_by_method", "all {s} images (its reals too)"),
        ("val", "unknown_fake_auc_val_by_method", "{s} fakes only"),
        ("test", "unknown_auc_by_method", "all {s} images (its reals too)"),
        ("test", "unknown_fake_auc_by_method", "{s} fakes only"),
    )
    for split, key, what in tables:
        lines += [f"Unknown-generator AUC on **{split}**: the next family's {what.format(s=split)} vs the seen tasks' {split} images:", ""]
        lines += ["| after → next | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
        for s in steps:
            lines.append(f"| {s['after']} → {s['unseen'][0]} | " + " | ".join(f"{s[key][m]:.3f}" for m in labels) + " |")
        means = [float(np.mean([s[key][m] for s in steps])) for m in labels]
        best = int(np.argmax(means))
        lines.append("| **mean** | " + " | ".join(f"**{v:.3f}**" if i == best else f"{v:.3f}" for i, v in enumerate(means)) + " |")
        lines.append("")
    last = steps[-1]
    lines += ["After the last measured step, at each score's own threshold (95th percentile of the calibration set), "
              "share of test images flagged, known / unseen, and the bytes the score keeps:", "",
              "| score | known flagged | unseen flagged | bytes kept |", "|---|---:|---:|---:|"]
    for m in labels:
        lines.append(f"| {m} | {last['unknown_known_flagged_by_method'][m]:.3f} | {last['unknown_unseen_flagged_by_method'][m]:.3f} | "
                     f"{last['unknown_bytes_by_method'][m]:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--stream", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--title", default="unknown-generator scores")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = measure(args.run, args.stream)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(markdown(result, args.title))


if __name__ == "__main__":
    main()
