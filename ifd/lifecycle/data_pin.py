"""A retrain reads one data version, pinned by its DVC hash, whatever is ingested meanwhile.

At the start of a retrain, under the workspace's data lock (a moment: an ingest holds it only while it
commits), the DVC hash in data.dvc is read together with the `.dir` listing it names in DVC's cache
(path -> md5 of every file of that version). The batches the retrain reads and the catalogue are then
hard-linked from DVC's content-addressed, read-only cache (or the workspace's local DVC remote) into
the job folder, `<job>/data/`. The retrain trains, replays and evaluates from there only, so an
`ifd ingest --replace` during the retrain cannot change what it trains on, and the candidate records the
version it really read. A resumed job reuses its pin (`<job>/data_pin.json`).

This reads DVC's documented on-disk layout (`files/md5/<2>/<30>`, `.dir` JSON listings); it does not
import dvc (ifd/data/dvc_store.py is the one module that does).
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace

PIN_FILE = "data_pin.json"
SNAPSHOT = "data"
CATALOG = "catalog.json"
LOCK_WAIT_S = 120.0


class DataUnavailable(IfdError):
    """The pinned data version's files are in neither DVC's cache nor the local remote."""

    exit_code = 2


def _object_dirs(ws: Workspace) -> list[Path]:
    """DVC's cache and, when it is a local folder, the default remote: where `files/md5/..` objects live."""
    dvc = ws.root / ".dvc"
    conf = configparser.ConfigParser(strict=False, interpolation=None)
    conf.read([dvc / "config", dvc / "config.local"])
    cache = conf.get("cache", "dir", fallback="cache")
    dirs = [(dvc / cache).resolve()]
    remote = conf.get("core", "remote", fallback="")
    url = conf.get(f'remote "{remote}"', "url", fallback="") if remote else ""
    if url and "://" not in url:
        dirs.append((dvc / url).resolve())
    return dirs


def _object(dirs: list[Path], md5: str) -> Path | None:
    for base in dirs:
        path = base / "files" / "md5" / md5[:2] / md5[2:]
        if path.is_file():
            return path
    return None


def read_pin(ws: Workspace) -> dict[str, Any]:
    """{"data_version", "files": {relpath: md5}} of data.dvc now, read under the data lock."""
    from ifd.data.dvc_store import data_version
    from ifd.locks import workspace_lock

    with workspace_lock(ws, "data", timeout=LOCK_WAIT_S):
        version = data_version(ws)
        listing = _object(_object_dirs(ws), version.removesuffix(".dir") + ".dir") if version.endswith(".dir") else None
        if listing is None:
            raise DataUnavailable(
                f"data version {version} (data.dvc) is not in DVC's cache or the local remote; "
                f"run `dvc pull` (or `dvc add data`) in {ws.root}"
            )
        files = {e["relpath"]: e["md5"] for e in json.loads(listing.read_text())}
    return {"data_version": version, "files": files}


def pinned_catalog(ws: Workspace, pin: dict[str, Any]) -> Any:
    """The catalogue (ifd.data.catalog.Catalog) of the pinned version, read from DVC's objects."""
    from ifd.data.catalog import load_catalog

    md5 = pin["files"].get(CATALOG)
    obj = _object(_object_dirs(ws), md5) if md5 else None
    if obj is None:
        raise DataUnavailable(f"data version {pin['data_version']} holds no readable {CATALOG}; run `dvc pull` in {ws.root}")
    return load_catalog(obj)


def materialise(ws: Workspace, job: Path, pin: dict[str, Any], batches: list[str]) -> Path:
    """`<job>/data/` with the catalogue and `batches/<name>/` of each batch, hard-linked from DVC's objects.

    Reuses a complete earlier snapshot of the same job; returns the snapshot folder (a data/ root).
    """
    job = Path(job)
    done = job / PIN_FILE
    snap = job / SNAPSHOT
    if done.is_file() and snap.is_dir():
        return snap
    dirs = _object_dirs(ws)
    prefixes = tuple(f"batches/{b}/" for b in batches)
    wanted = {p: m for p, m in pin["files"].items() if p == CATALOG or p.startswith(prefixes)}
    tmp = job / (SNAPSHOT + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(snap, ignore_errors=True)
    for rel, md5 in wanted.items():
        src = _object(dirs, md5)
        if src is None:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataUnavailable(f"data version {pin['data_version']}: {rel} (md5 {md5}) is in neither DVC's cache nor the local remote; run `dvc pull`")
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)
        except OSError:  # another filesystem: a copy of the immutable object
            shutil.copyfile(src, dest)
    os.replace(tmp, snap)
    record = {"data_version": pin["data_version"], "batches": batches, "files": len(wanted)}
    part = done.with_name(PIN_FILE + ".tmp")
    part.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(part, done)
    return snap


def job_pin(job: Path) -> dict[str, Any] | None:
    """The pin an earlier attempt of this job made, if it finished making it."""
    path = Path(job) / PIN_FILE
    return json.loads(path.read_text()) if path.is_file() and (Path(job) / SNAPSHOT).is_dir() else None


def release(job: Path) -> None:
    """Drop the snapshot once the job is recorded (links only; the pin record stays)."""
    shutil.rmtree(Path(job) / SNAPSHOT, ignore_errors=True)
