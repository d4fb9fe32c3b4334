"""Tuning trials as MLflow runs: parameters, retention metrics (and their value after each task), the
a[t][i] matrix and the full config as JSON artifacts, tags linking the run to its Optuna study and trial.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ifd.workspace import Workspace

TUNE_EXPERIMENT = "ifd-tune"
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


def log_trial(
    ws: Workspace,
    *,
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    step_metrics: Mapping[str, Sequence[float]] | None = None,
    matrix: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    state: str = "COMPLETE",
) -> str:
    """One finished (or pruned, or failed) trial as an MLflow run; returns the run id.

    `step_metrics[name][t]` is logged as metric `name` at step t (e.g. AA after each task)."""
    from mlflow.entities import Metric, Param

    from ifd.tracking.store import client, ensure_experiment

    now = int(time.time() * 1000)
    logged = [Metric(k, float(v), now, 0) for k, v in metrics.items() if _finite(v)]
    for name, values in (step_metrics or {}).items():
        logged += [Metric(name, float(v), now, t) for t, v in enumerate(values) if _finite(v)]
    with _quiet():
        c = client(ws)
        run = c.create_run(ensure_experiment(ws, experiment), run_name=run_name, tags={**(tags or {}), "optuna.state": state})
        run_id = run.info.run_id
        c.log_batch(run_id, metrics=logged, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        if matrix is not None:
            c.log_dict(run_id, dict(matrix), "matrix.json")
        if config is not None:
            c.log_dict(run_id, dict(config), "config.json")
        c.set_terminated(run_id, status=_STATUS.get(state, "FINISHED"))
    return str(run_id)


def study_runs(ws: Workspace, experiment: str, study_name: str) -> list[dict[str, Any]]:
    """The runs of one study in `experiment`: run id, trial number, state, metrics and params."""
    from ifd.tracking.store import client

    with _quiet():
        c = client(ws)
        exp = c.get_experiment_by_name(experiment)
        if exp is None:
            return []
        runs = c.search_runs([exp.experiment_id], filter_string=f"tags.`optuna.study` = '{study_name}'", max_results=10_000)
    return [
        {
            "run_id": r.info.run_id,
            "trial": int(r.data.tags.get("optuna.trial", -1)),
            "state": r.data.tags.get("optuna.state"),
            "status": r.info.status,
            "metrics": dict(r.data.metrics),
            "params": dict(r.data.params),
        }
        for r in runs
    ]


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's SQL store trips SQLAlchemy deprecation notices (``noload``) when it maps its tables."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(mlflow|sqlalchemy|alembic)\b")
        yield


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(float(v))
