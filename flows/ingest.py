"""The ingest flow: stage -> validate (great-expectations) -> commit (data/ + DVC); emits `ifd.batch.landed`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.events import emit_event

from ifd.data import ingest
from ifd.data.ingest_config import IngestConfig
from ifd.lifecycle.worker import EVENT
from ifd.workspace import Workspace


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
    emit_event(
        event=EVENT,
        resource={"prefect.resource.id": f"ifd.batch.{name}", "ifd.workspace": str(Workspace.at(root).root)},
        payload={"name": name, "data_version": result["data_version"], "workspace": str(Workspace.at(root).root)},
    )
    return result
