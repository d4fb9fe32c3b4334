"""The validation split every choice is made on (METHOD.md §4: three splits, three uses).

Train fits; val chooses (tuning objective, pruning, presets, calibration, thresholds); test is read once
per reported run. A batch without val rows never falls back to train silently: `with_val` holds out an
explicit, seeded share of the task's train *sources* (per class, `HOLDOUT_FRACTION`, at least one) as its
val split, says so on the progress line, and those rows are then not trained on. The hold-out is seeded
by the task's name only, so every run over that task (bench, tune, retrain, any seed) sees the same one.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ifd.data.tasks import TaskData
from ifd.errors import IfdError

HOLDOUT_FRACTION = 0.2


def holdout_seed(task_name: str) -> int:
    return zlib.crc32(f"ifd-val-holdout:{task_name}".encode())


def with_val(task: TaskData, progress: Callable[[str], None] | None = None, fraction: float = HOLDOUT_FRACTION) -> TaskData:
    """`task` itself when it has val rows; else a copy whose held-out train sources are its val split."""
    if task.has_split("val"):
        return task
    frame = task.frame.copy()
    rng = np.random.default_rng(holdout_seed(task.name))
    held = 0
    for label in ("real", "fake"):
        rows = frame[(frame["split"] == "train") & (frame["label"] == label)]
        sources = np.array(sorted(set(rows["source_id"].astype(str))))
        if len(sources) < 2:
            raise IfdError(
                f"task {task.name!r} has no val split and {len(sources)} {label} train source(s): too few to hold "
                "one out for calibration; add val rows to its manifest"
            )
        n = max(1, int(round(fraction * len(sources))))
        chosen = set(rng.choice(sources, size=n, replace=False).tolist())
        mask = (frame["split"] == "train") & (frame["label"] == label) & frame["source_id"].astype(str).isin(chosen)
        frame.loc[mask, "split"] = "val"
        held += int(mask.sum())
    if progress is not None:
        progress(
            f"[train] task {task.name!r} has no val split: {held} train image(s) ({fraction:.0%} of the sources of "
            "each class, seeded by the task name) held out as val for calibration and thresholds; not trained on"
        )
    return TaskData(name=task.name, root=task.root, frame=frame)
