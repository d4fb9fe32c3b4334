"""Where MLflow keeps runs and models for a workspace.

Default: a SQLite database and an artifact folder under the workspace's `.ifd/` (since MLflow 3.13 the
`./mlruns` file store refuses to start without MLFLOW_ALLOW_FILE_STORE). `MLFLOW_TRACKING_URI` points
everything at a real server instead (`make mlflow` starts one on localhost with the same two paths).

`client()` also makes ifd's retry layer the only one (ifd.tracking.retry): MLflow's own HTTP retries
off, its request timeout `IFD_TRACKING_TIMEOUT_S`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ifd.workspace import Workspace

DEFAULT_EXPERIMENT = "ifd"


def tracking_uri(ws: Workspace) -> str:
    """`$MLFLOW_TRACKING_URI`, or `sqlite:///<workspace>/.ifd/mlflow.db`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{ws.state_dir / 'mlflow.db'}"


def artifact_root(ws: Workspace) -> Path:
    return ws.state_dir / "mlartifacts"


def one_retry_layer() -> None:
    """MLflow's HTTP client: no retries of its own (ifd.tracking.retry retries), bounded request time."""
    from ifd.tracking.retry import policy_from_env

    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(policy_from_env().timeout_s))


def client(ws: Workspace) -> Any:
    """An MlflowClient on the workspace's store (tracking and registry)."""
    from mlflow import MlflowClient

    one_retry_layer()

    uri = tracking_uri(ws)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(ws: Workspace, name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment `name`, created with the workspace's artifact folder when missing."""
    c = client(ws)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = None
    if tracking_uri(ws).startswith("sqlite:"):
        artifact_root(ws).mkdir(parents=True, exist_ok=True)
        location = artifact_root(ws).resolve().as_uri()
    return str(c.create_experiment(name, artifact_location=location))
