"""MLflow's fluent API (log_model, log_input, log_table) on a workspace's store, without leaking globals.

`mlflow.set_tracking_uri` also writes `MLFLOW_TRACKING_URI` into the environment, which would redirect
every later workspace of the process (ifd.tracking.store reads that variable first); `using_store`
restores the URIs and the variable exactly as they were.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ifd.tracking.store import one_retry_layer, tracking_uri
from ifd.workspace import Workspace

_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")


@contextmanager
def using_store(ws: Workspace) -> Iterator[str]:
    """Point the fluent API at the workspace's store for the body (quiet downloads); yields the URI."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    one_retry_layer()
    uri = tracking_uri(ws)
    saved_env = {k: os.environ.get(k) for k in _ENV}
    # MLflow keeps the URIs set in module globals; its own `_use_tracking_uri` restores them the same way.
    old_tracking, old_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # Download progress bars would interleave with our progress lines on stderr.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(old_tracking)
        mlflow.set_registry_uri(old_registry)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
