"""A write-ahead journal of an ingest's commit, and `repair()`, which the next ifd command runs.

Committing a validated batch changes four things that must agree: data/batches/NAME, data/catalog.json,
data.dvc (with DVC's cache) and the DVC remote. The commit runs under the data lock, in these steps;
the journal (.ifd/journal/ingest.json, written atomically) is written first and records each step as
it completes, with what undoing needs: the texts of catalog.json and data.dvc before the commit, and
where an old batch of the same name was put aside.

  journal_written  the journal exists; nothing else has changed
  aside            (replace) the old data/batches/NAME renamed into .ifd/staging/ (a rename, never a copy)
  moved_in         the staged batch renamed to data/batches/NAME
  catalogued       catalog.json written (atomically)
  dvc_added        `dvc add data`: data.dvc records the new version -- the commit point
  pushed           `dvc push` done; then the aside batch goes (fault point `cleaned`), then the journal

Each step is a fault point (`IFD_FAULT_AT=ingest.<step>`, ifd/faults.py) placed right after the step's
effect and before the journal records it: the worst moment for a crash. Two more: `ingest.before_lock`
(validated, the lock not yet taken; in ifd/data/ingest.py) and `ingest.pushing` (dvc_added recorded,
the push not started). The committing process holds
the data lock for the journal's whole life and the kernel drops the lock when a process dies, so a
journal found by whoever takes the lock belongs to a dead ingest. `repair()` then rolls back (the old
batch renamed back, catalog.json and data.dvc restored, `dvc checkout` if data/ still differs from
data.dvc) unless the journal passed the commit point and data.dvc holds the version it recorded: then
it rolls forward (`dvc push` again; if that fails too, it rolls back). Either way data/, data.dvc, the
catalogue and the remote agree afterwards, and the batch is fully in or fully out.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ifd.errors import IfdError
from ifd.faults import maybe_fault
from ifd.workspace import Workspace

if TYPE_CHECKING:
    from ifd.data.catalog import Catalog

STEPS: tuple[str, ...] = ("journal_written", "aside", "moved_in", "catalogued", "dvc_added", "pushed")
COMMIT_POINT = "dvc_added"


class RemotePushFailed(IfdError):
    """`dvc push` failed; the commit was rolled back."""


class RepairFailed(IfdError):
    """An interrupted ingest could not be undone automatically; the journal is kept."""


@dataclass
class Journal:
    name: str
    staging: str
    aside: str | None
    catalog_before: str
    data_dvc_before: str
    pid: int
    started_at: str
    done: str = "journal_written"
    data_version: str | None = None

    def reached(self, step: str) -> bool:
        return STEPS.index(self.done) >= STEPS.index(step)


def owned_name(prefix: str) -> str:
    """A staging folder name that says which process owns it: `<prefix>-<pid>-<random>`."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def commit(ws: Workspace, name: str, staging: Path, catalog: Catalog) -> str:
    """Move `staging` to data/batches/NAME (an existing one is put aside), write `catalog`, `dvc add` and
    push, journaling every step; undo everything on any failure. The caller holds the data lock."""
    from ifd.data import dvc_store
    from ifd.data.catalog import save_catalog

    target = ws.batch_dir(name)
    aside = ws.staging_dir / owned_name(f"aside-{name}") if target.exists() else None
    journal = Journal(
        name=name,
        staging=str(staging),
        aside=str(aside) if aside else None,
        catalog_before=ws.catalog_path.read_text(),
        data_dvc_before=ws.data_dvc.read_text(),
        pid=os.getpid(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    _write_journal(ws, journal)
    try:
        _step(ws, journal, "journal_written")
        if aside is not None:
            target.rename(aside)
            _step(ws, journal, "aside")
        ws.batches_dir.mkdir(parents=True, exist_ok=True)
        staging.rename(target)
        _step(ws, journal, "moved_in")
        save_catalog(catalog, ws.catalog_path)
        _step(ws, journal, "catalogued")
        journal.data_version = dvc_store.add_data(ws)
        _step(ws, journal, "dvc_added")
        maybe_fault("ingest.pushing")
        _push(ws)
        _step(ws, journal, "pushed")
    except BaseException:
        _roll_back(ws, journal)
        raise
    _finish(ws, journal)
    return str(journal.data_version)


def read_journal(ws: Workspace) -> Journal | None:
    if not ws.journal_path.is_file():
        return None
    try:
        return Journal(**json.loads(ws.journal_path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise RepairFailed(f"{ws.journal_path} is unreadable ({exc}); inspect it, then delete it") from exc


def repair(ws: Workspace) -> str | None:
    """Finish or undo an interrupted commit and drop staging left by dead processes; the caller holds the
    data lock. Returns what was done in one line (also printed on stderr), or None when nothing was."""
    done = _repair(ws)
    if done:
        print(f"ifd: repair: {done}", file=sys.stderr, flush=True)
    return done


def _repair(ws: Workspace) -> str | None:
    journal = read_journal(ws)
    done = _settle(ws, journal) if journal is not None else None
    stale = _stale_staging(ws)  # only now: a dead commit's aside batch is in staging until settled
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale and done is None:
        return f"removed {len(stale)} staging folder(s) left by dead processes"
    return done


def _settle(ws: Workspace, journal: Journal) -> str:
    """Roll the dead commit of `journal` forward or back (module docstring)."""
    if journal.reached(COMMIT_POINT) and _data_version_or_none(ws) == journal.data_version:
        if journal.reached("pushed"):
            _finish(ws, journal)
            return f"finished the interrupted ingest of {journal.name!r} (it was complete)"
        try:
            _push(ws)
        except RemotePushFailed as exc:
            _roll_back(ws, journal)
            return f"rolled back the interrupted ingest of {journal.name!r}: {exc}"
        _finish(ws, journal)
        return f"rolled the interrupted ingest of {journal.name!r} forward: pushed data version {journal.data_version}"
    _roll_back(ws, journal)
    return f"rolled back the interrupted ingest of {journal.name!r} (stopped after step {journal.done!r})"


@contextmanager
def data_lock(ws: Workspace, timeout: float = 0.0) -> Iterator[None]:
    """The workspace's data lock, with whatever a dead commit left settled first: what a reader of
    data.dvc (a retrain pinning its data) or a writer (a commit) should hold."""
    from ifd.locks import workspace_lock

    with workspace_lock(ws, "data", timeout=timeout):
        repair(ws)
        yield


def repair_if_needed(ws: Workspace) -> str | None:
    """What every command runs on entering a workspace: a cheap look for a journal or dead staging, and a
    repair under the data lock when there is one. A busy lock means a live ingest: left alone."""
    if not ws.journal_path.exists() and not _stale_staging(ws):
        return None
    from ifd.locks import WorkspaceBusy, workspace_lock

    try:
        with workspace_lock(ws, "data", timeout=0.0):
            return repair(ws)
    except WorkspaceBusy:
        return None


def _step(ws: Workspace, journal: Journal, step: str) -> None:
    maybe_fault(f"ingest.{step}")
    journal.done = step
    _write_journal(ws, journal)


def _push(ws: Workspace) -> None:
    from ifd.data import dvc_store
    from ifd.redact import redact_text

    try:
        dvc_store.push_data(ws)
    except Exception as exc:  # DVC raises its own errors and plain OSErrors alike
        message = (
            f"dvc push to the remote {dvc_store.remote_url(ws)!r} failed ({type(exc).__name__}: {exc}); "
            "nothing was committed: make the remote writable and ingest again"
        )
        raise RemotePushFailed(redact_text(message.replace("\n", " "))) from exc


def _roll_back(ws: Workspace, journal: Journal) -> None:
    from ifd.data import dvc_store

    target = ws.batch_dir(journal.name)
    if journal.aside is not None:
        aside = Path(journal.aside)
        if aside.exists():  # else the old batch never left, or is already back
            shutil.rmtree(target, ignore_errors=True)
            aside.rename(target)
    else:  # the name was free under the lock: whatever sits there is this commit's
        shutil.rmtree(target, ignore_errors=True)
    _atomic_write(ws, ws.catalog_path, journal.catalog_before)
    _atomic_write(ws, ws.data_dvc, journal.data_dvc_before)
    ws.catalog_path.with_suffix(".json.tmp").unlink(missing_ok=True)  # save_catalog's, if cut short
    shutil.rmtree(journal.staging, ignore_errors=True)
    try:
        if dvc_store.status(ws):
            dvc_store.checkout_data(ws)
    except Exception as exc:
        raise RepairFailed(
            f"rolling back the ingest of {journal.name!r}: DVC cannot confirm that data/ matches data.dvc "
            f"({type(exc).__name__}: {exc}); the journal is kept: once DVC works again, any ifd command "
            "finishes the rollback"
        ) from exc
    ws.journal_path.unlink(missing_ok=True)


def _finish(ws: Workspace, journal: Journal) -> None:
    if journal.aside is not None:
        shutil.rmtree(journal.aside, ignore_errors=True)
    shutil.rmtree(journal.staging, ignore_errors=True)
    maybe_fault("ingest.cleaned")
    ws.journal_path.unlink(missing_ok=True)


def _data_version_or_none(ws: Workspace) -> str | None:
    from ifd.data import dvc_store

    try:
        return dvc_store.data_version(ws)
    except (IfdError, OSError, ValueError):
        return None


def _stale_staging(ws: Workspace) -> list[Path]:
    """Staging folders (`<prefix>-<pid>-<random>`) whose process is gone."""
    if not ws.staging_dir.is_dir():
        return []
    stale = []
    for entry in ws.staging_dir.iterdir():
        parts = entry.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and not _alive(int(parts[1])):
            stale.append(entry)
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_journal(ws: Workspace, journal: Journal) -> None:
    ws.journal_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(ws, ws.journal_path, json.dumps(asdict(journal), indent=1) + "\n")


def _atomic_write(ws: Workspace, path: Path, text: str) -> None:
    """Write, fsync, rename over: a reader (or a crash) sees the old text or the new, never half. The
    temporary file sits in .ifd/journal/, never in data/, where `dvc add` would pick it up."""
    tmp = ws.journal_path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
