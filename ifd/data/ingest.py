"""Ingest a forgery batch: convert, validate, then move into data/ and version it with DVC, all or nothing.

The three steps are separate functions so the Prefect flow can run each as a task; `ingest_batch`
runs them in order for callers without Prefect. A refused batch never touches data/, data.dvc or the
catalogue: it is converted and validated in a staging folder under .ifd/, which is then removed.
Staging and validation run without the data lock; `commit_batch` takes it, repeats the name and
cross-batch content checks there (another ingest may have committed meanwhile) and hands the
journaled commit to ifd/data/journal.py.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ifd.data import journal
from ifd.data.catalog import BatchRecord, Catalog, batch_counts, batch_digest, load_catalog
from ifd.data.ingest_config import IngestConfig
from ifd.data.manifest import read_manifest, write_manifest
from ifd.errors import BatchRefused, IfdError
from ifd.faults import maybe_fault
from ifd.workspace import Workspace

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class BatchExists(IfdError):
    """A batch of that name is already ingested and `replace` was not asked for."""

    exit_code = 3

    def __init__(self, name: str) -> None:
        super().__init__(f"a batch named {name!r} is already ingested; pass --replace to replace it")


@dataclass
class StagedBatch:
    """A converted batch waiting in .ifd/staging; `adapter_notes` is the adapter's notes; `replace` says
    whether it may replace a batch of the same name (checked again under the data lock)."""

    name: str
    path: str
    format: str
    source: str
    adapter_notes: dict[str, Any] = field(default_factory=dict)
    replace: bool = False


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
        raise BatchExists(name)
    staging = ws.staging_dir / journal.owned_name(name)
    staging.mkdir(parents=True)
    try:
        report = convert_batch(fmt, src, staging, cfg)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return StagedBatch(
        name=name, path=str(staging), format=fmt, source=str(src), adapter_notes=dict(report.notes), replace=replace
    )


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


def commit_batch(staged: StagedBatch, ws: Workspace, cfg: IngestConfig | None = None) -> IngestResult:
    """Under the data lock: check the name and content against the catalogue as it is now, then move the
    batch into data/batches/NAME, record it, `dvc add` + push, journaled (ifd/data/journal.py)."""
    import pandas as pd

    cfg = cfg or IngestConfig()
    staging = Path(staged.path)
    frame = read_manifest(staging).merge(pd.read_csv(staging / "hashes.csv", dtype=str), on="path")
    (staging / "hashes.csv").unlink()
    write_manifest(frame, staging)
    maybe_fault("ingest.before_lock")
    with journal.data_lock(ws, timeout=cfg.lock_wait_s):
        catalog = load_catalog(ws.catalog_path)
        replaced = staged.name in catalog.names()
        if replaced and not staged.replace:
            raise BatchExists(staged.name)
        _refuse_known_content(staged.name, frame, catalog)
        record = _record(staged, frame)
        version = journal.commit(ws, staged.name, staging, catalog.with_batch(record))
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
        return commit_batch(staged, ws, cfg)
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


def _refuse_known_content(name: str, frame: Any, catalog: Catalog) -> None:
    """The cross-batch content check of validation, repeated under the lock against the current catalogue."""
    from ifd.data.validation import CheckResult, ValidationReport

    known = catalog.known_hashes(exclude=name)
    taken = frame[frame["sha256"].isin(list(known))]
    if taken.empty:
        return
    rows = [{"path": p, "sha256": h, "ingested_in": known[h]} for p, h in zip(taken["path"], taken["sha256"], strict=True)]
    what = "image content must not be in an earlier batch (one committed while this one was validated)"
    check = CheckResult("not_already_ingested", False, len(rows), rows[:5], what)
    report = ValidationReport(batch=name, n_rows=len(frame), checks=[check])
    raise BatchRefused(f"batch {name!r} refused: failed checks: not_already_ingested\n{report.to_text()}", report)
