"""The ingest flow: stage -> validate (great-expectations) -> commit (data/ + DVC); emits `ifd.batch.landed`
naming the workspace by its id (params.yaml `workspace_id`), which the retrain trigger matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.events import emit_event

from ifd.data import ingest
from ifd.data.ingest_config import IngestConfig
from ifd.lifecycle.worker import EVENT
from ifd.workspace import Workspace
from ifd.workspace_id import ensure_workspace_id


@task(name="stage-batch")
def stage(src: str, name: str, fmt: str, root: str, cfg: dict[str, Any], replace: bool) -> ingest.StagedBatch:
    return ingest.stage_batch(Path(src), name, fmt, Workspace.at(root), IngestConfig(**cfg), replace=replace)


@task(name="validate-batch")
def validate(staged: ingest.StagedBatch, root: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return ingest.validate_staged(staged, Workspace.at(root), IngestConfig(**cfg))


@task(name="commit-batch")
def commit(staged: ingest.StagedBatch, root: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return ingest.commit_batch(staged, Workspace.at(root), IngestConfig(**cfg)).to_dict()


@flow(name="ingest", log_prints=True)
def ingest_flow(
    src: str, name: str, root: str = ".", fmt: str = "manifest", replace: bool = False, cfg: dict[str, Any] | None = None
) -> dict[str, Any]:
    cfg = cfg or {}
    staged = stage(src, name, fmt, root, cfg, replace)
    try:
        validate(staged, root, cfg)
        result = commit(staged, root, cfg)
    finally:
        ingest.discard_staged(staged)
    ws = Workspace.at(root)
    workspace_id = ensure_workspace_id(ws)  # what the retrain trigger matches (never the local path)
    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"ifd.batch.{name}", "ifd.workspace": workspace_id},
        payload={"name": name, "data_version": result["data_version"], "workspace": workspace_id, "root": str(ws.root)},
    )
    return result
