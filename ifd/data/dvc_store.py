"""DVC versioning of the workspace's data/ folder. The only module that imports dvc.

DVC itself is the source of truth for what is versioned: `data_version()` reads data.dvc, and
`status()` asks DVC, never our own bookkeeping.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

from ifd.errors import IfdError
from ifd.workspace import Workspace

REMOTE_NAME = "local"


def _repo(ws: Workspace) -> Any:
    from dvc.repo import Repo

    return Repo(str(ws.root))


def init_dvc(ws: Workspace, remote: str | None = None, remote_options: dict[str, str] | None = None) -> None:
    """Make `ws.root` a DVC project (without git when it is not a git repo) with a default remote: `remote`
    if given, else the one it has, else the local folder (ifd/data/dvc_remote.py)."""
    from dvc.repo import Repo

    from ifd.data.dvc_remote import configure_remote

    if not (ws.root / ".dvc").is_dir():
        # A workspace nested in another git checkout (the demo's) is versioned by DVC alone. DVC logs
        # "Initialized DVC repository." to stdout, which must stay pure JSON under `ifd init --json`.
        dvc_log = logging.getLogger("dvc")
        level = dvc_log.level
        dvc_log.setLevel(logging.WARNING)
        try:
            Repo.init(str(ws.root), no_scm=not (ws.root / ".git").exists())
        finally:
            dvc_log.setLevel(level)
    configure_remote(ws, remote, remote_options)


def track_data(ws: Workspace) -> str:
    """`dvc add data` and push to the default remote; returns the new data version (md5 in data.dvc)."""
    version = add_data(ws)
    push_data(ws)
    return version


def add_data(ws: Workspace) -> str:
    """`dvc add data`: data.dvc records data/ as it is now, its files enter DVC's cache; returns the version."""
    with _repo(ws) as repo:
        repo.add(str(ws.data_dir))
    return data_version(ws)


def push_data(ws: Workspace) -> None:
    """`dvc push` of data.dvc to the default remote (objects already there are skipped)."""
    with _repo(ws) as repo:
        repo.push(targets=[str(ws.data_dvc)])


def remote_url(ws: Workspace) -> str:
    """The default remote's URL as DVC's config holds it (for messages)."""
    with _repo(ws) as repo:
        conf = repo.config
        name = conf["core"].get("remote", REMOTE_NAME)
        return str(conf["remote"].get(name, {}).get("url", "?"))


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
    """`dvc checkout --force data.dvc`: make data/ match data.dvc again from the cache (used by repair)."""
    with _repo(ws) as repo:
        repo.checkout(targets=[str(ws.data_dvc)], force=True)
