"""Helpers of the ingest reliability tests: a real ingest in a subprocess, and the consistency check.

`consistent(ws)` is the invariant every fault test ends on: the catalogue names exactly the folders in
data/batches, every batch holds exactly the files its manifest names with the hashes the catalogue
records, data.dvc records data/ as it is (`dvc status` clean), the remote holds it (`dvc status -c`
clean), and no journal or staging is left.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ifd.data import dvc_store
from ifd.data.catalog import load_catalog
from ifd.workspace import Workspace

RUNNER = """
import sys
from pathlib import Path
from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.errors import IfdError
from ifd.workspace import Workspace

src, name, root, fmt, replace = sys.argv[1:6]
try:
    result = ingest_batch(Path(src), name, Workspace.at(root), IngestConfig(), fmt=fmt, replace=replace == "1")
except IfdError as exc:
    print(f"ifd: error: {str(exc).splitlines()[0]}", file=sys.stderr)
    raise SystemExit(exc.exit_code)
print(result.data_version)
"""


def ingest_process(
    ws: Workspace, src: Path, name: str, fault: str | None = None, replace: bool = False, fmt: str = "manifest"
) -> subprocess.Popen[str]:
    """Start `ingest_batch` in a real Python process; `fault` goes to IFD_FAULT_AT."""
    env = {k: v for k, v in os.environ.items() if k != "IFD_FAULT_AT"}
    if fault:
        env["IFD_FAULT_AT"] = fault
    args = [sys.executable, "-c", RUNNER, str(src), name, str(ws.root), fmt, "1" if replace else "0"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_ingest(ws: Workspace, src: Path, name: str, **kwargs: object) -> tuple[int, str]:
    """Run `ingest_process` to its end: (return code, stderr)."""
    proc = ingest_process(ws, src, name, **kwargs)  # type: ignore[arg-type]
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def fingerprint(ws: Workspace) -> dict[str, str]:
    """sha256 of data.dvc and of every file under data/."""
    return {"data.dvc": hashlib.sha256(ws.data_dvc.read_bytes()).hexdigest(), **file_hashes(ws.data_dir)}


def consistent(ws: Workspace) -> list[str]:
    """The ingested batch names after asserting the workspace invariant (module docstring)."""
    catalog = load_catalog(ws.catalog_path)
    on_disk = sorted(p.name for p in ws.batches_dir.iterdir()) if ws.batches_dir.exists() else []
    assert sorted(catalog.names()) == on_disk
    for record in catalog.batches:
        folder = ws.batch_dir(record.name)
        manifest = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
        hashes = file_hashes(folder)
        assert set(hashes) == {"manifest.csv", *manifest["path"]}, record.name
        assert sorted(h for p, h in hashes.items() if p != "manifest.csv") == record.hashes, record.name
    assert dvc_store.status(ws) == {}
    assert dvc_store.status(ws, cloud=True) == {}
    assert not ws.journal_path.exists()
    assert not ws.staging_dir.exists() or list(ws.staging_dir.iterdir()) == []
    return catalog.names()


def block_remote(ws: Workspace) -> str:
    """Point the DVC remote at a path under a regular file: `dvc push` really fails, even as root (which
    ignores chmod). Returns the old URL for `set_remote`."""
    old = dvc_store.remote_url(ws)
    blocker = ws.root.parent / "remote-blocker"
    blocker.write_text("a regular file, so nothing can be created under it\n")
    set_remote(ws, str(blocker / "remote"))
    return old


def set_remote(ws: Workspace, url: str) -> None:
    with dvc_store._repo(ws) as repo, repo.config.edit() as conf:
        conf["remote"][dvc_store.REMOTE_NAME] = {"url": url}
