"""`ifd train`: learn every ingested batch (or every batch of a stream folder) incrementally.

Tasks come from the workspace catalogue in ingestion order, or from a stream folder (`ifd synth`'s
stream.json order). Writes `out/state.pt` (the whole incremental state), `out/metrics.json` (what
`dvc metrics show` reads), `out/matrix_auc.png` and `out/forgetting.png`. A run interrupted mid-task
resumes from its last epoch checkpoint unless `resume` is off.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ifd.config import IfdConfig
from ifd.data.tasks import TaskData, tasks_from_dirs, tasks_from_stream
from ifd.errors import IfdError
from ifd.workspace import Workspace


def workspace_tasks(ws: Workspace) -> list[TaskData]:
    """The ingested batches as tasks, in the catalogue's (ingestion) order."""
    from ifd.data.catalog import load_catalog

    names = load_catalog(ws.require().catalog_path).names()
    if not names:
        raise IfdError(f"{ws.root}: no batch ingested yet; run `ifd ingest BATCH` first")
    return tasks_from_dirs([ws.batch_dir(n) for n in names])


def run_training(
    ws: Workspace,
    cfg: IfdConfig,
    stream: Path | None,
    out: Path,
    resume: bool = True,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the sequence, write state, metrics and plots; return the metrics with a `text` summary."""
    from ifd.eval.report import retention_summary, summary_text, write_plots
    from ifd.train.loop import train_sequence

    tasks = tasks_from_stream(stream) if stream is not None else workspace_tasks(ws)
    out = Path(out) if Path(out).is_absolute() else ws.root / out
    lid = cfg.lid()
    progress(f"[train] {len(tasks)} task(s), preset {cfg.train.preset!r}, backbone {lid.backbone}, {lid.epochs} epoch(s) per task")
    state = train_sequence(tasks, lid, out, resume=resume, progress=progress, open_set=True)
    metrics = retention_summary(state.matrix)
    metrics["time_per_task_s"] = list(state.times_s)
    metrics["eval_time_per_task_s"] = list(state.eval_times_s)
    metrics["replay_entries"] = len(state.store)
    metrics["replay_bytes"] = state.store.nbytes()
    metrics["open_set"] = list(state.open_set)
    metrics["plots"] = write_plots(state.matrix, out, label=f"LID ({cfg.train.preset})")
    metrics["state"] = str(out / "state.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
    text = summary_text(metrics)
    if state.open_set:
        unk = [r["unknown_auc"] for r in state.open_set if "unknown_auc" in r]
        att = state.open_set[-1]["attribution_acc"]
        text += f"\nunknown-generator AUC on the next, unseen family (mean over steps): {sum(unk) / len(unk):.3f}; attribution accuracy: {att:.3f}"
    text += f"\nplots: {metrics['plots']['matrix_auc']}, {metrics['plots']['forgetting']}"
    metrics["text"] = text
    return metrics
