"""DVC versioning of the workspace's data/ folder. The only module that imports dvc.

DVC itself is the source of truth for what is versioned: `data_version()` reads data.dvc, and
`status()` asks DVC, never our own bookkeeping.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from ifd.errors import IfdError
from ifd.workspace import Workspace

REMOTE_NAME = "local"


def _repo(ws: Workspace) -> Any:
    from dvc.repo import Repo

    return Repo(str(ws.root))


def init_dvc(ws: Workspace) -> None:
    """Make `ws.root` a DVC project (without git when it is not a git repo) with a local default remote."""
    from dvc.repo import Repo

    if not (ws.root / ".dvc").is_dir():
        # A workspace nested in another git checkout (the demo's) is versioned by DVC alone.
        Repo.init(str(ws.root), no_scm=not (ws.root / ".git").exists())
    ws.dvc_remote_dir.mkdir(parents=True, exist_ok=True)
    with _repo(ws) as repo:
        with repo.config.edit() as conf:
            # DVC reads a relative URL against the cwd and stores it relative to .dvc/, so clones keep working.
            conf["remote"][REMOTE_NAME] = {"url": os.path.relpath(ws.dvc_remote_dir)}
            conf["core"]["remote"] = REMOTE_NAME


def track_data(ws: Workspace) -> str:
    """`dvc add data` and push to the default remote; returns the new data version (md5 in data.dvc)."""
    with _repo(ws) as repo:
        repo.add(str(ws.data_dir))
        repo.push()
    return data_version(ws)


def data_version(ws: Workspace) -> str:
    """The DVC hash of data/ as recorded in data.dvc."""
    if not ws.data_dvc.is_file():
        raise IfdError(f"{ws.data_dvc} does not exist; run `ifd init`")
    meta = yaml.safe_load(ws.data_dvc.read_text())
    try:
        return str(meta["outs"][0]["md5"])
    except (KeyError, IndexError, TypeError) as exc:
        raise IfdError(f"{ws.data_dvc} has no outs[0].md5; is it a DVC file?") from exc


def status(ws: Workspace, cloud: bool = False) -> dict[str, Any]:
    """DVC's own status of the workspace (empty dict = clean); `cloud=True` compares with the remote."""
    with _repo(ws) as repo:
        return dict(repo.status(cloud=cloud))


def checkout_data(ws: Workspace) -> None:
    """Make data/ match data.dvc again (used after a rollback)."""
    with _repo(ws) as repo:
        repo.checkout(targets=[str(ws.data_dvc)], force=True)
