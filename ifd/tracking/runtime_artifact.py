"""The ONNX graph a version carries (artifact `onnx` of its registered model, ifd/inference/onnx_runtime.py),
fetched into the version's local folder next to its state file (`.ifd/models/v<N>/detector.onnx`).

A version registered before graphs were exported, or whose export failed, has none: `fetch_onnx` then
answers None and the caller scores eagerly. Registry calls are retried like every call to the tracking
server; one that still fails also answers None, with a log line: a graph never makes a version unservable.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from ifd.inference.onnx_runtime import ONNX_FILE
from ifd.tracking.model_registry import MODEL_NAME
from ifd.tracking.retry import with_retries
from ifd.workspace import Workspace

logger = logging.getLogger("ifd.serving")


def fetch_onnx(ws: Workspace, version: str, dest: Path) -> Path | None:
    """`dest/detector.onnx` for `version` (downloaded once), or None when the version has no graph."""
    from ifd.tracking.fluent import using_store

    target = Path(dest) / ONNX_FILE
    if target.is_file():
        return target
    folder = f"models:/{MODEL_NAME}/{version}/artifacts"

    def listing() -> list[str]:
        import mlflow

        with using_store(ws):
            return [f.path for f in mlflow.artifacts.list_artifacts(artifact_uri=folder)]

    def fetch(tmp: Path) -> str:
        import mlflow

        with using_store(ws):
            return str(mlflow.artifacts.download_artifacts(artifact_uri=f"{folder}/{ONNX_FILE}", dst_path=str(tmp)))

    # A private folder per download, then an atomic rename: two processes may fetch the same version at once.
    tmp = target.with_name(f"{ONNX_FILE}.download-{uuid.uuid4().hex[:8]}")
    try:
        if f"artifacts/{ONNX_FILE}" not in with_retries(listing, f"list the artifacts of version {version}"):
            return None
        tmp.mkdir(parents=True)
        local = Path(with_retries(lambda: fetch(tmp), f"download the ONNX graph of version {version}"))
        os.replace(local, target)
    except Exception as exc:  # noqa: BLE001  (TrackingUnavailable or any client error: the version still serves)
        logger.warning("version %s: ONNX graph not fetched (%s: %s)", version, type(exc).__name__, exc)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
