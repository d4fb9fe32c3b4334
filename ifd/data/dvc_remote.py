"""The workspace's DVC remote: a folder on this disk by default, or a remote the user names, kept.

- `ifd init` without `--remote` keeps the default remote a workspace already has (a network remote set
  by hand with `dvc remote add -d`, or by an earlier `ifd init --remote`); only a workspace without one
  gets the local folder `.ifd/dvc-remote`.
- `ifd init --remote URL` makes URL the default remote, named after its scheme (`ssh`, `s3`, …), in
  `.dvc/config` (committed, so clones share it). `--remote-option KEY=VALUE` (DVC's own remote options:
  `keyfile`, `user`, `port`, `password`, `endpointurl`, `profile`, …) go to `.dvc/config.local`, which
  stays out of git, so a key path or secret never lands in a commit.
- A network scheme needs its DVC plugin (`dvc-ssh` for ssh://, `dvc-s3` for s3://); a missing one is named.

DVC is reached through ifd/data/dvc_store.py (the one module that imports dvc).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from ifd.errors import IfdError
from ifd.redact import redact_url
from ifd.workspace import Workspace

LOCAL_NAME = "local"
PLUGINS = {  # scheme -> (module, pip package)
    "ssh": ("dvc_ssh", "dvc-ssh"),
    "s3": ("dvc_s3", "dvc-s3"),
    "gs": ("dvc_gs", "dvc-gs"),
    "azure": ("dvc_azure", "dvc-azure"),
    "webdav": ("dvc_webdav", "dvc-webdav"),
    "webdavs": ("dvc_webdav", "dvc-webdav"),
    "http": ("dvc_http", "dvc-http"),
    "https": ("dvc_http", "dvc-http"),
}


class RemoteError(IfdError):
    """The DVC remote given to `ifd init` cannot be used as it is."""

    exit_code = 2


def remote_name(url: str) -> str:
    """`ssh` for ssh://…, `s3` for s3://…; `local` for a path."""
    scheme = urlsplit(url).scheme
    if "://" not in url or not scheme:
        return LOCAL_NAME
    if scheme not in PLUGINS:
        raise RemoteError(f"DVC remote {redact_url(url)}: unknown scheme {scheme!r}; known: "
                          f"{', '.join(sorted(PLUGINS))} or a folder path")
    module, package = PLUGINS[scheme]
    if importlib.util.find_spec(module) is None:
        raise RemoteError(f"a {scheme}:// DVC remote needs the {package} plugin: pip install {package}")
    if scheme == "ssh" and not urlsplit(url).hostname:
        raise RemoteError(f"DVC remote {redact_url(url)} names no host; write ssh://[user@]host[:port]/path")
    return scheme


def parse_options(pairs: list[str] | None) -> dict[str, str]:
    """`["keyfile=/k", "port=2222"]` -> a dict; a pair without `=` is refused."""
    options: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RemoteError(f"--remote-option {pair!r}: write KEY=VALUE (e.g. keyfile=~/.ssh/id_ed25519)")
        options[key.strip()] = value.strip()
    return options


def default_remote(ws: Workspace) -> tuple[str, str] | None:
    """(name, url) of the workspace's default remote, or None when it has none."""
    from ifd.data.dvc_store import _repo

    with _repo(ws) as repo:
        conf = repo.config
        name = conf["core"].get("remote")
        if not name or name not in conf["remote"]:
            return None
        return name, str(conf["remote"][name].get("url", ""))


def configure_remote(ws: Workspace, url: str | None = None, options: Mapping[str, str] | None = None) -> str:
    """Make `url` the default remote (None: keep the present one, else the local folder); returns its name."""
    from ifd.data.dvc_store import _repo

    if url is None:
        present = default_remote(ws)
        if present is not None:
            if options:
                _write_local_options(ws, present[0], options)
            return present[0]
        ws.dvc_remote_dir.mkdir(parents=True, exist_ok=True)
        # DVC reads a relative URL against the cwd and stores it relative to .dvc/, so clones keep working.
        url = os.path.relpath(ws.dvc_remote_dir)
    name = remote_name(url)
    if name == LOCAL_NAME and "://" not in url:
        os.makedirs(url, exist_ok=True)
    with _repo(ws) as repo:
        with repo.config.edit() as conf:
            conf["remote"][name] = {"url": url}
            conf["core"]["remote"] = name
    if options:
        _write_local_options(ws, name, options)
    return name


def _write_local_options(ws: Workspace, name: str, options: Mapping[str, str]) -> None:
    from ifd.data.dvc_store import _repo

    try:
        with _repo(ws) as repo:
            with repo.config.edit("local") as conf:
                conf["remote"].setdefault(name, {}).update(options)
    except Exception as exc:  # DVC's ConfigError names the bad option; its class lives in dvc
        if type(exc).__name__ != "ConfigError":
            raise
        raise RemoteError(f"--remote-option for remote {name!r}: {exc}") from exc
