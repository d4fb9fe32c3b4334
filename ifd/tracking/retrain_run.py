"""Log one retrain to MLflow: a run with everything a reviewer reads, then (gate passed) the model and
a registered version with alias `challenger`.

Order: run, params/metrics/tags, tables, files, data version (`log_input` with the DVC hash as the
dataset digest), model, version last. Each call is retried on transient failures; the run id is kept
in `run_id_file`, so a retried or resumed step logs into the same run and finds its own version
instead of making a second one. A failed step marks the run FAILED (when the server answers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ifd.tracking.model_registry import CHALLENGER, VersionInfo, register_version
from ifd.tracking.retry import TrackingUnavailable, with_retries
from ifd.tracking.store import client, ensure_experiment
from ifd.workspace import Workspace

EXPERIMENT = "ifd-retrain"
Log = Callable[[str], None]


@dataclass
class RunRecord:
    """What one retrain logs; plain values and local paths only (files are prepared before logging)."""

    run_name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    files_dir: str
    data_version: str
    dataset_source: str
    dataset_rows: list[dict[str, Any]]
    metric_history: dict[str, list[float]] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    state_path: str | None = None
    """The detector state to log as the model; None (gate failed): no model, no version."""
    img_size: int = 64
    version_tags: dict[str, str] = field(default_factory=dict)
    model_metadata: dict[str, Any] = field(default_factory=dict)
    version_description: str | None = None


def log_retrain(
    ws: Workspace, rec: RunRecord, run_id_file: Path | None = None, alias: str = CHALLENGER, log: Log | None = None
) -> dict[str, Any]:
    """Log the run (and register a version when `rec.state_path` is set); {"run_id", "version", ...}."""
    c = client(ws)
    exp_id = with_retries(lambda: ensure_experiment(ws, EXPERIMENT), "create experiment", log=log)
    run_id = _run_id(ws, exp_id, rec, run_id_file, log)
    try:
        _log_values(ws, run_id, rec, log)
        with_retries(lambda: c.log_artifacts(run_id, rec.files_dir), "log artifacts", log=log)
        version = None
        with _active(ws, run_id, log):
            _log_tables(rec, run_id, log)
            _log_dataset(rec, log)
            if rec.state_path is not None:
                model = _log_model(rec, log)
                version = register_version(
                    ws, run_id, model.model_id, rec.version_tags, alias=alias, log=log, description=rec.version_description
                )
        if version is not None:
            with_retries(lambda: c.set_tag(run_id, "registered_version", version.version), "tag run", log=log)
        with_retries(lambda: c.set_terminated(run_id, "FINISHED"), "finish run", log=log)
    except BaseException as exc:
        if not isinstance(exc, TrackingUnavailable):
            _mark_failed(ws, run_id)
        raise
    return _result(ws, run_id, exp_id, version)


def _result(ws: Workspace, run_id: str, exp_id: str, version: VersionInfo | None) -> dict[str, Any]:
    from ifd.tracking.store import tracking_uri

    return {
        "run_id": run_id,
        "experiment_id": exp_id,
        "tracking_uri": tracking_uri(ws),
        "version": version.version if version else None,
        "model_uri": version.uri if version else None,
    }


def _run_id(ws: Workspace, exp_id: str, rec: RunRecord, run_id_file: Path | None, log: Log | None) -> str:
    """The run of an earlier attempt of this retrain (kept in `run_id_file`), else a new one."""
    c = client(ws)
    if run_id_file is not None and Path(run_id_file).is_file():
        run_id = Path(run_id_file).read_text().strip()

        def reopen() -> bool:
            try:
                c.update_run(run_id, status="RUNNING")
                return True
            except Exception as exc:
                if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                    return False
                raise

        if with_retries(reopen, "reopen run", log=log):
            return run_id
    run = with_retries(lambda: c.create_run(exp_id, tags=rec.tags, run_name=rec.run_name), "create run", log=log)
    if run_id_file is not None:
        Path(run_id_file).parent.mkdir(parents=True, exist_ok=True)
        Path(run_id_file).write_text(run.info.run_id + "\n")
    return str(run.info.run_id)


def _log_values(ws: Workspace, run_id: str, rec: RunRecord, log: Log | None) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in rec.metrics.items()]
    metrics += [Metric(k, float(v), now, step) for k, vals in rec.metric_history.items() for step, v in enumerate(vals)]
    params = [Param(k, _param(v)) for k, v in rec.params.items()]
    tags = [RunTag(k, str(v)) for k, v in rec.tags.items()]
    c = client(ws)
    for start in range(0, max(len(params), 1), 100):
        chunk = params[start : start + 100]
        with_retries(lambda ch=chunk: c.log_batch(run_id, params=ch), "log params", log=log)
    for start in range(0, max(len(metrics), 1), 1000):
        chunk = metrics[start : start + 1000]
        with_retries(lambda ch=chunk: c.log_batch(run_id, metrics=ch), "log metrics", log=log)
    with_retries(lambda: c.log_batch(run_id, tags=tags), "log tags", log=log)


def _param(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return text[:6000]


@contextmanager
def _active(ws: Workspace, run_id: str, log: Log | None) -> Iterator[None]:
    """The fluent API on the workspace's store with `run_id` as the active run.

    MLflow's own hints raised inside (pandas dtype deprecations, "the dataset source can be interpreted
    in multiple ways", integer columns in an inferred schema) say nothing about our data; they are muted.
    """
    import warnings

    import mlflow

    from ifd.tracking.fluent import using_store

    with using_store(ws), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
        with_retries(lambda: mlflow.start_run(run_id=run_id), "resume run", log=log)
        try:
            yield
        finally:
            mlflow.end_run()


def _log_tables(rec: RunRecord, run_id: str, log: Log | None) -> None:
    import mlflow
    import pandas as pd

    for name, rows in rec.tables.items():
        frame = pd.DataFrame(rows)
        with_retries(lambda f=frame, n=name: mlflow.log_table(f, artifact_file=n, run_id=run_id), f"log table {name}", log=log)


def _log_dataset(rec: RunRecord, log: Log | None) -> None:
    """The learned tasks' rows as the run's input, with the DVC data version as its digest."""
    import mlflow
    import pandas as pd

    frame = pd.DataFrame(rec.dataset_rows)
    dataset = mlflow.data.from_pandas(frame, source=rec.dataset_source, name="ifd-batches", digest=rec.data_version[:36])
    with_retries(lambda: mlflow.log_input(dataset, context="training", tags={"data_version": rec.data_version}), "log data version", log=log)


def _log_model(rec: RunRecord, log: Log | None) -> Any:
    import mlflow

    from ifd.tracking import pyfunc_model as pm

    assert rec.state_path is not None

    def log_model() -> Any:
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=pm.entry_script(),
            artifacts={pm.STATE_ARTIFACT: rec.state_path},
            signature=pm.signature(),
            input_example=pm.input_example(rec.img_size),
            pip_requirements=pm.pip_requirements(),
            metadata=rec.model_metadata,
        )

    return with_retries(log_model, "log model", log=log)


def _mark_failed(ws: Workspace, run_id: str) -> None:
    """Best effort, one attempt; the original error is what the caller needs to see."""
    try:
        client(ws).set_terminated(run_id, "FAILED")
    except Exception:
        pass
