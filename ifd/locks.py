"""Workspace-level locks, so two ingests (or two retrains) never write the same workspace at once.

An OS file lock (flock): the kernel drops it when its holder dies, even by SIGKILL, so a lock is never
left stale, and whoever takes the `data` lock next knows that a commit journal it finds belongs to a
dead process (ifd/data/journal.py; `journal.data_lock` is this lock with that journal settled first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from ifd.errors import IfdError
from ifd.workspace import Workspace


class WorkspaceBusy(IfdError):
    exit_code = 4


@contextmanager
def workspace_lock(ws: Workspace, name: str, timeout: float = 0.0) -> Iterator[None]:
    """Hold `.ifd/locks/<name>.lock`; a second holder waits `timeout` seconds, then gets WorkspaceBusy."""
    ws.locks_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(ws.locks_dir / f"{name}.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
        raise WorkspaceBusy(
            f"another {name} job holds {ws.locks_dir / (name + '.lock')}{waited}; wait for it to finish and retry"
        ) from None
    try:
        yield
    finally:
        lock.release()

