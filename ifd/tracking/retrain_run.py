"""Log one retrain to MLflow: a run with everything a reviewer reads, then (gate passed) the model and
a registered version with alias `challenger`.

Order: run, params/metrics/tags, files, tables, data version (`log_input` with the DVC hash as the
dataset digest), model, version last. Each call goes through the one retry layer (ifd.tracking.retry),
all of them under one budget. Every create is safe to repeat (ifd.tracking.idempotent): the job's
client token is looked up before a run, a logged model or a version is made, and each finished
logging step is recorded on the run, so a retried, killed or resumed retrain logs into the same run,
uploads into the same model and finds its own version. Fault points (`IFD_FAULT_AT`, ifd/faults.py):
`retrain.run_created`, `retrain.values_logged`, `retrain.model_logged`, `retrain.version_created`,
`retrain.alias_set`. A failed step marks the run FAILED (when the server answers).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ifd.faults import maybe_fault
from ifd.tracking import idempotent as idem
from ifd.tracking.model_registry import CHALLENGER, VersionInfo, register_version
from ifd.tracking.retry import TrackingUnavailable, retry_budget, with_retries
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
    """Log the run (and register a version when `rec.state_path` is set); {"run_id", "version", ...}.

    The job's client token lives beside `run_id_file` (`client_token`); without one, every call is a new run.
    """
    with retry_budget():
        return _log_retrain(ws, rec, run_id_file, alias, log)


def _log_retrain(ws: Workspace, rec: RunRecord, run_id_file: Path | None, alias: str, log: Log | None) -> dict[str, Any]:
    c = client(ws)
    exp_id = with_retries(lambda: ensure_experiment(ws, EXPERIMENT), "create experiment", log=log)
    token = idem.client_token(Path(run_id_file).with_name("client_token") if run_id_file is not None else None)
    run_id, _ = idem.find_or_create_run(c, exp_id, token, rec.tags, rec.run_name, log)
    if run_id_file is not None:
        Path(run_id_file).parent.mkdir(parents=True, exist_ok=True)
        Path(run_id_file).write_text(run_id + "\n")
    maybe_fault("retrain.run_created")
    try:
        done = idem.done_steps(c, run_id, log)
        idem.once(c, run_id, "values", done, lambda: _log_values(ws, run_id, rec, log), log)
        idem.once(c, run_id, "files", done, lambda: with_retries(lambda: c.log_artifacts(run_id, rec.files_dir), "log artifacts", log=log), log)
        version = None
        with _active(ws, run_id, log):
            _log_tables(c, rec, run_id, done, log)
            idem.once(c, run_id, "dataset", done, lambda: _log_dataset(rec, log), log)
            maybe_fault("retrain.values_logged")
            if rec.state_path is not None:
                model_id = _log_model(ws, rec, exp_id, run_id, token, log)
                maybe_fault("retrain.model_logged")
                tags = {**rec.version_tags, idem.TOKEN_TAG: token}
                version = register_version(ws, run_id, model_id, tags, alias=alias, log=log, description=rec.version_description)
                maybe_fault("retrain.alias_set")
        if version is not None:
            with_retries(lambda: c.set_tag(run_id, "registered_version", version.version), "tag run", log=log)
        with_retries(lambda: c.set_terminated(run_id, "FINISHED"), "finish run", log=log)
    except BaseException as exc:
        if not isinstance(exc, TrackingUnavailable):
            _mark_failed(ws, run_id)
        raise
    return _result(ws, run_id, exp_id, version)


def _result(ws: Workspace, run_id: str, exp_id: str, version: VersionInfo | None) -> dict[str, Any]:
    from ifd.redact import redact_url
    from ifd.tracking.store import tracking_uri

    return {
        "run_id": run_id,
        "experiment_id": exp_id,
        "tracking_uri": redact_url(tracking_uri(ws)),
        "version": version.version if version else None,
        "model_uri": version.uri if version else None,
    }


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


def _log_tables(c: Any, rec: RunRecord, run_id: str, done: set[str], log: Log | None) -> None:
    """Each table once (MLflow's log_table appends to a table that exists, so a resumed run must not repeat one)."""
    import mlflow
    import pandas as pd

    for name, rows in rec.tables.items():
        frame = pd.DataFrame(rows)

        def log_table(f: Any = frame, n: str = name) -> None:
            with_retries(lambda: mlflow.log_table(f, artifact_file=n, run_id=run_id), f"log table {n}", log=log)

        idem.once(c, run_id, f"table.{name}", done, log_table, log)


def _log_dataset(rec: RunRecord, log: Log | None) -> None:
    """The learned tasks' rows as the run's input, with the DVC data version as its digest."""
    import mlflow
    import pandas as pd

    frame = pd.DataFrame(rec.dataset_rows)
    dataset = mlflow.data.from_pandas(frame, source=rec.dataset_source, name="ifd-batches", digest=rec.data_version[:36])
    with_retries(lambda: mlflow.log_input(dataset, context="training", tags={"data_version": rec.data_version}), "log data version", log=log)


def _log_model(ws: Workspace, rec: RunRecord, exp_id: str, run_id: str, token: str, log: Log | None) -> str:
    """The id of the run's READY logged model: made once (client token), uploaded into until it is READY."""
    import mlflow

    from ifd.inference.onnx_runtime import registration_artifacts
    from ifd.tracking import pyfunc_model as pm

    assert rec.state_path is not None
    c = client(ws)
    params = {k: _param(v)[:500] for k, v in rec.params.items()}
    model_id, ready = idem.logged_model_for(c, exp_id, run_id, token, params, log)
    if ready:
        if log is not None:
            log(f"[tracking] log model: already logged as {model_id}")
        return model_id
    # The serving runtime travels with the version: its ONNX graph, exported and parity-checked here ({} if not).
    artifacts = {pm.STATE_ARTIFACT: rec.state_path, **registration_artifacts(rec.state_path, log)}

    def log_model() -> Any:
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=pm.entry_script(),
            artifacts=artifacts,
            signature=pm.signature(),
            input_example=pm.input_example(rec.img_size),
            pip_requirements=pm.pip_requirements(),
            metadata=rec.model_metadata,
            model_id=model_id,
        )

    with_retries(log_model, "log model", log=log)
    return model_id


def _mark_failed(ws: Workspace, run_id: str) -> None:
    """Best effort, one attempt; the original error is what the caller needs to see."""
    try:
        client(ws).set_terminated(run_id, "FAILED")
    except Exception:
        pass
