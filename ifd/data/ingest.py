"""Ingest a forgery batch: convert, validate, then copy into data/ and version it with DVC, all or nothing.

The three steps are separate functions so the Prefect flow can run each as a task; `ingest_batch`
runs them in order for callers without Prefect. A refused batch never touches data/, data.dvc or the
catalogue: it is converted and validated in a staging folder under .ifd/, which is then removed.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ifd.data import dvc_store
from ifd.data.catalog import BatchRecord, batch_counts, batch_digest, load_catalog, save_catalog
from ifd.data.ingest_config import IngestConfig
from ifd.data.manifest import read_manifest, write_manifest
from ifd.errors import BatchRefused, IfdError
from ifd.locks import workspace_lock
from ifd.workspace import Workspace

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class StagedBatch:
    """A converted batch waiting in .ifd/staging; `report` is the adapter's notes."""

    name: str
    path: str
    format: str
    source: str
    adapter_notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestResult:
    name: str
    n_rows: int
    counts: dict[str, dict[str, int]]
    methods: list[str]
    data_version: str
    replaced: bool
    adapter_notes: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise IfdError(f"batch name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


def stage_batch(src: Path, name: str, fmt: str, ws: Workspace, cfg: IngestConfig, replace: bool = False) -> StagedBatch:
    """Convert the source into the manifest format in a fresh staging folder."""
    from ifd.data.adapters import convert_batch

    ws.require()
    check_name(name)
    src = Path(src).resolve()
    if not src.exists():
        raise IfdError(f"{src} does not exist")
    if name in load_catalog(ws.catalog_path).names() and not replace:
        raise IfdError(f"a batch named {name!r} is already ingested; pass --replace to replace it")
    staging = ws.staging_dir / f"{name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    try:
        report = convert_batch(fmt, src, staging, cfg)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return StagedBatch(name=name, path=str(staging), format=fmt, source=str(src), adapter_notes=dict(report.notes))


def validate_staged(staged: StagedBatch, ws: Workspace, cfg: IngestConfig) -> dict[str, Any]:
    """Run the great-expectations suite; raise BatchRefused with the report when any check fails."""
    from ifd.data.validation import check_batch

    known = load_catalog(ws.catalog_path).known_hashes(exclude=staged.name)
    frame, report = check_batch(Path(staged.path), known, cfg)
    if not report.success:
        failed = ", ".join(c.name for c in report.failures())
        raise BatchRefused(f"batch {staged.name!r} refused: failed checks: {failed}\n{report.to_text()}", report)
    frame.loc[:, ["path", "sha256"]].to_csv(Path(staged.path) / "hashes.csv", index=False)
    return report.to_dict()


def commit_batch(staged: StagedBatch, ws: Workspace) -> IngestResult:
    """Move the validated batch into data/batches/NAME, record it, `dvc add` + push; undo all on failure."""
    import pandas as pd

    staging = Path(staged.path)
    frame = read_manifest(staging).merge(pd.read_csv(staging / "hashes.csv", dtype=str), on="path")
    (staging / "hashes.csv").unlink()
    write_manifest(frame, staging)
    with workspace_lock(ws, "data"):
        catalog = load_catalog(ws.catalog_path)
        record = _record(staged, frame)
        replaced = staged.name in catalog.names()
        with _rollback_on_error(ws, staged.name):
            target = ws.batch_dir(staged.name)
            if replaced:
                shutil.rmtree(target)
            ws.batches_dir.mkdir(parents=True, exist_ok=True)
            staging.rename(target)
            save_catalog(catalog.with_batch(record), ws.catalog_path)
            version = dvc_store.track_data(ws)
    return IngestResult(
        name=staged.name,
        n_rows=record.n_rows,
        counts=record.counts,
        methods=record.methods,
        data_version=version,
        replaced=replaced,
        adapter_notes=staged.adapter_notes,
    )


def discard_staged(staged: StagedBatch | None) -> None:
    if staged is not None:
        shutil.rmtree(staged.path, ignore_errors=True)


def ingest_batch(
    src: Path, name: str, ws: Workspace, cfg: IngestConfig, fmt: str = "manifest", replace: bool = False
) -> IngestResult:
    """Convert, validate and commit one batch (what the ingest flow does, without Prefect)."""
    staged = stage_batch(src, name, fmt, ws, cfg, replace=replace)
    try:
        validate_staged(staged, ws, cfg)
        return commit_batch(staged, ws)
    finally:
        discard_staged(staged)


def _record(staged: StagedBatch, frame: Any) -> BatchRecord:
    return BatchRecord(
        name=staged.name,
        methods=sorted(frame.loc[frame["label"] == "fake", "method"].unique().tolist()),
        counts=batch_counts(frame),
        n_rows=len(frame),
        digest=batch_digest(frame),
        ingested_at=datetime.now(UTC).isoformat(timespec="seconds"),
        format=staged.format,
        source=staged.source,
        hashes=sorted(frame["sha256"].tolist()),
        notes=staged.adapter_notes,
    )


@contextmanager
def _rollback_on_error(ws: Workspace, name: str) -> Iterator[None]:
    """Snapshot catalog.json, data.dvc and an existing batch of that name; restore them if the body fails."""
    backup = ws.staging_dir / f"rollback-{uuid.uuid4().hex[:8]}"
    backup.mkdir(parents=True)
    shutil.copy2(ws.catalog_path, backup / "catalog.json")
    shutil.copy2(ws.data_dvc, backup / "data.dvc")
    old_batch = ws.batch_dir(name)
    if old_batch.exists():
        shutil.copytree(old_batch, backup / "batch")
    try:
        yield
    except BaseException:
        shutil.rmtree(ws.batch_dir(name), ignore_errors=True)
        if (backup / "batch").exists():
            shutil.copytree(backup / "batch", old_batch)
        shutil.copy2(backup / "catalog.json", ws.catalog_path)
        shutil.copy2(backup / "data.dvc", ws.data_dvc)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
