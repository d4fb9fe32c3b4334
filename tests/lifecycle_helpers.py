"""Shared set-up of the lifecycle tests: a workspace with three tiny ingested batches and an empty,
migrated MLflow store, built once per session and copied per module (MLflow's SQLite migration and
DVC pushes cost seconds); a tiny detector config; a permissive gate policy for mechanics tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from test_train_data import write_tiny_batch

from ifd.workspace import Workspace

TASKS = ("task0", "task1", "task2")
PERMISSIVE = "max_old_task_auc_drop: 1.0\nmin_new_task_auc: 0.0\nmax_aa_drop: 1.0\n"


def tiny_lid(**overrides: Any) -> dict[str, Any]:
    from ifd.continual.config import LIDConfig

    base = {
        "backbone": "ifd_cnn_tiny",
        "img_size": 16,
        "epochs": 1,
        "batch_size": 8,
        "step_size": 1,
        "replay_per_class_per_task": 2,
        "budget_per_task": 8,
        "seed": 3,
    }
    return LIDConfig(**{**base, **overrides}).model_dump(mode="json")


def _template(base: Path) -> Path:
    """`base/lifecycle-template/ws`, built on first use in this session."""
    from mlflow import MlflowClient

    from ifd.data.ingest import ingest_batch
    from ifd.data.ingest_config import IngestConfig
    from ifd.tracking.store import tracking_uri
    from ifd.workspace_init import init_workspace

    root = base / "lifecycle-template"
    done = root / "done"
    if done.exists():
        return root / "ws"
    shutil.rmtree(root, ignore_errors=True)
    ws = init_workspace(Workspace.at(root / "ws"))
    for seed, name in enumerate(TASKS):
        src = write_tiny_batch(root / "src" / name, seed=seed, n_per_class=12)
        ingest_batch(src, name, ws, IngestConfig(min_size=16))
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        MlflowClient(tracking_uri=tracking_uri(ws)).search_experiments()
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    done.touch()
    return ws.root


def fresh_workspace(tmp_path_factory: Any, name: str, permissive: bool = True) -> Workspace:
    """A copy of the template workspace (3 batches ingested, empty MLflow store) in its own folder."""
    dest = tmp_path_factory.mktemp(name) / "ws"
    shutil.copytree(_template(tmp_path_factory.getbasetemp()), dest, symlinks=True)
    ws = Workspace.at(dest)
    if permissive:
        (ws.root / "registry").mkdir(exist_ok=True)
        (ws.root / "registry" / "gate.yaml").write_text(PERMISSIVE)
    return ws
