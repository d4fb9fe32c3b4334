"""The numbers the retention gate decides on: the champion and the candidate, each scored on every task's
val split.

Train fits, val chooses, test reports (METHOD.md §4, ifd/train/val_split.py). Letting a candidate into the
registry is a choice, so it is made on val: the candidate on every task it learned, the champion on every
task it learned, both on the same pinned data, AUC on the raw mean-of-heads margin as in the a[t][i]
matrix (ifd/train/raw_row.py). A batch without val rows gets the same seeded hold-out of its train sources
that training used (`with_val`), so neither model was trained on the rows the gate scores. No test row is
read here; the test matrix the retrain measured stays in the candidate's state for the report and the
model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ifd.data.image_dataset import ImageCache
from ifd.data.tasks import TaskData
from ifd.errors import IfdError
from ifd.workspace import Workspace

GATE_SPLIT = "val"


def gate_tasks(ws: Workspace, candidate: dict[str, Any]) -> list[TaskData]:
    """The candidate's tasks, in order, from the data version it learned (its pinned snapshot; without
    one, the workspace's ingested batches), each with its val split (`with_val`)."""
    from ifd.data.tasks import tasks_from_dirs
    from ifd.train.val_split import with_val

    snap = candidate.get("data_root")
    root = Path(snap) / "batches" if snap and Path(snap).is_dir() else ws.batches_dir
    dirs = [root / n for n in candidate["tasks"]]
    missing = [d.name for d in dirs if not d.is_dir()]
    if missing:
        raise IfdError(f"the gate needs the val split of {', '.join(missing)}, and {root} does not hold it; run `dvc pull`")
    return [with_val(t) for t in tasks_from_dirs(dirs)]


def split_aucs(state: Any, tasks: Sequence[TaskData], split: str = GATE_SPLIT, cache: ImageCache | None = None) -> dict[str, float]:
    """{task: AUC of `state`'s raw score on `split`} for each of `tasks` (an `IncrementalState`)."""
    from ifd.train.raw_row import raw_score_row

    if not tasks:
        return {}
    row, _ = raw_score_row(state.model.eval(), tasks, img_size=int(state.cfg.img_size), split=split, cache=cache)
    return {t.name: float(a) for t, a in zip(tasks, row.auc, strict=True)}


def gate_scores(
    ws: Workspace, candidate: dict[str, Any], champion: dict[str, Any]
) -> tuple[dict[str, float], dict[str, float] | None]:
    """(candidate's val AUC per task it learned, champion's val AUC per task it learned, or None without one)."""
    from ifd.train.state import IncrementalState

    tasks = {t.name: t for t in gate_tasks(ws, candidate)}
    cache = ImageCache()
    cand = IncrementalState.load(Path(candidate["state"]))
    cand_auc = split_aucs(cand, [tasks[n] for n in cand.task_names], cache=cache)
    if not champion:
        return cand_auc, None
    champ = IncrementalState.load(Path(champion["state"]))
    unknown = [n for n in champ.task_names if n not in tasks]
    if unknown:
        raise IfdError(f"the champion (version {champion.get('version')}) learned {', '.join(unknown)}, which the candidate did not")
    return cand_auc, split_aucs(champ, [tasks[n] for n in champ.task_names], cache=cache)
