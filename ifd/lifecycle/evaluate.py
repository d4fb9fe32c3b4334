"""`ifd evaluate MODEL`: per-task AUC/ACC of a model on every known task.

MODEL is a registry reference (`champion`, `challenger`, `3`, `models:/ifd-detector/3`,
`models:/ifd-detector@champion`) or a detector state file (`artifacts/train/state.pt`). Known tasks are
the workspace's ingested batches, or a stream folder's batches (`--stream`, the DVC research path).
Tasks the model did not learn are scored too (how it does on generators it has not seen) and marked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.lifecycle.retrain import say
from ifd.workspace import Workspace


def load_model_state(ws: Workspace, ref: str) -> tuple[Any, dict[str, Any]]:
    """(IncrementalState, {"model", "version"?}) of a state file or a registry reference."""
    from ifd.train.state import IncrementalState

    path = Path(ref)
    if path.suffix == ".pt" or path.is_file():
        return IncrementalState.load(path), {"model": str(path)}
    from ifd.tracking import model_registry as reg

    info = reg.resolve(ws, ref)
    state_file = reg.download_state(ws, info.version)
    return IncrementalState.load(state_file), {"model": info.uri, "version": info.version, "aliases": info.aliases}


def evaluate_model(
    ws: Workspace, ref: str, stream: Path | None = None, progress: Callable[[str], None] = say
) -> dict[str, Any]:
    """{"tasks": {name: {"auc", "acc"}}, "learned": [...], "AA_learned", "mean_auc", ...}."""
    from ifd.data.image_dataset import ImageCache
    from ifd.data.tasks import tasks_from_stream
    from ifd.train.evaluate import evaluate_row
    from ifd.train.run import workspace_tasks

    state, about = load_model_state(ws, ref)
    tasks = tasks_from_stream(stream) if stream is not None else workspace_tasks(ws)
    if not tasks:
        raise IfdError("no tasks to evaluate on")
    cache = ImageCache()
    scores: dict[str, dict[str, float]] = {}
    for task in tasks:
        aucs, accs = evaluate_row(state.model.eval(), [task], img_size=int(state.cfg.img_size), cache=cache)
        scores[task.name] = {"auc": aucs[0], "acc": accs[0]}
        progress(f"[evaluate] {task.name}: AUC {aucs[0]:.3f} ACC {accs[0]:.3f}")
    learned = [n for n in state.task_names if n in scores]
    return {
        **about,
        "tasks": scores,
        "learned": learned,
        "unseen": [n for n in scores if n not in state.task_names],
        "AA_learned": _mean(scores[n]["auc"] for n in learned),
        "AA_acc_learned": _mean(scores[n]["acc"] for n in learned),
        "mean_auc": _mean(s["auc"] for s in scores.values()),
        "n_tasks": len(scores),
    }


def _mean(values: Any) -> float | None:
    vals = [v for v in values if not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else None


def evaluation_text(result: dict[str, Any]) -> str:
    lines = [f"model {result['model']}: {len(result['learned'])} learned task(s) of {result['n_tasks']}"]
    for name, s in result["tasks"].items():
        mark = "" if name in result["learned"] else "   (not learned)"
        lines.append(f"  {name:<24} AUC {s['auc']:.3f}  ACC {s['acc']:.3f}{mark}")
    if result["AA_learned"] is not None:
        lines.append(f"AA over learned tasks: {result['AA_learned']:.3f}")
    return "\n".join(lines)
