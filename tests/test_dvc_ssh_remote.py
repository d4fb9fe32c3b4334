"""The workspace's data on a DVC remote over SSH: a real sshd on loopback (tests/sshd_loopback.py), the
real `ifd` CLI, dvc-ssh, and a fresh clone that pulls what the ingest pushed. `ifd init` keeps a remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sshd_loopback
from batchgen import make_batch

from ifd.data import dvc_store
from ifd.data.dvc_remote import RemoteError, configure_remote, default_remote, parse_options, remote_name
from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.workspace import Workspace

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sshd_loopback.SshServer]:
    if not sshd_loopback.available():
        pytest.skip("openssh-server absent: apt-get install -y openssh-server")
    with sshd_loopback.loopback_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _ifd(*args: str, cwd: Path) -> dict:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "ifd"), *args, "--json"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_init_ingest_push_and_pull_into_a_fresh_clone(sshd: sshd_loopback.SshServer, tmp_path: Path) -> None:
    store = tmp_path / "server-side" / "dvcstore"  # what the SSH server holds
    url = sshd.url(store)
    out = _ifd("init", "--workspace", "ws", "--remote", url, "--remote-option", f"keyfile={sshd.client_key}",
               cwd=tmp_path)
    assert out["remote"] == "ssh" and out["remote_url"] == url
    ws = Workspace.at(tmp_path / "ws")
    assert "keyfile" in (ws.root / ".dvc" / "config.local").read_text()  # the key path stays out of git
    assert "keyfile" not in (ws.root / ".dvc" / "config").read_text()
    assert any((store / "files" / "md5").rglob("*")), "init pushed the empty catalogue over SSH"
    assert not ws.dvc_remote_dir.exists()

    ingest_batch(make_batch(tmp_path / "batch", n_sources=4), "one", ws, IngestConfig())
    assert dvc_store.status(ws, cloud=True) == {}  # every object of the new version is on the server

    clone = tmp_path / "clone"  # what git carries: .dvc/config and data.dvc; each user adds their own key
    (clone / ".dvc").mkdir(parents=True)
    for rel in (".dvc/config", ".dvc/config.local", "data.dvc"):
        shutil.copy(ws.root / rel, clone / rel)
    proc = subprocess.run([str(BIN / "dvc"), "pull", "-q"], cwd=clone, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert _files(clone / "data") == _files(ws.data_dir)
    assert (clone / "data" / "batches" / "one").is_dir()


def test_init_again_keeps_the_remote(sshd: sshd_loopback.SshServer, tmp_path: Path) -> None:
    url = sshd.url(tmp_path / "store")
    _ifd("init", "--workspace", "ws", "--remote", url, "--remote-option", f"keyfile={sshd.client_key}", cwd=tmp_path)
    out = _ifd("init", "--workspace", "ws", cwd=tmp_path)
    assert (out["remote"], out["remote_url"]) == ("ssh", url)
    assert not (tmp_path / "ws" / ".ifd" / "dvc-remote").exists()


def test_init_with_a_new_remote_pushes_the_recorded_version(sshd: sshd_loopback.SshServer, tmp_path: Path) -> None:
    from ifd.workspace_init import init_workspace

    ws = init_workspace(Workspace.at(tmp_path / "ws"))
    ingest_batch(make_batch(tmp_path / "batch", n_sources=4), "one", ws, IngestConfig())
    init_workspace(ws, sshd.url(tmp_path / "store"), {"keyfile": str(sshd.client_key)})
    assert default_remote(ws)[0] == "ssh"
    assert dvc_store.status(ws, cloud=True) == {}  # the new remote holds the version data.dvc records


def test_init_keeps_a_remote_added_by_hand(tmp_path: Path) -> None:
    from ifd.workspace_init import init_workspace

    ws = init_workspace(Workspace.at(tmp_path / "ws"))
    assert default_remote(ws)[0] == "local"
    elsewhere = tmp_path / "elsewhere"
    subprocess.run([str(BIN / "dvc"), "remote", "add", "-d", "team", str(elsewhere)], cwd=ws.root, check=True,
                   capture_output=True)
    init_workspace(ws)
    assert default_remote(ws) == ("team", str(elsewhere))


def test_remote_urls_and_options_are_checked(tmp_path: Path) -> None:
    from ifd.workspace_init import init_workspace

    assert remote_name("ssh://u@h/p") == "ssh" and remote_name("/srv/dvc") == "local"
    with pytest.raises(RemoteError, match="unknown scheme 'ftp'"):
        remote_name("ftp://h/p")
    with pytest.raises(RemoteError, match="names no host"):
        remote_name("ssh:///p")
    with pytest.raises(RemoteError, match="KEY=VALUE"):
        parse_options(["keyfile"])
    ws = init_workspace(Workspace.at(tmp_path / "ws"))
    with pytest.raises(RemoteError, match="remote 'ssh'"):
        configure_remote(ws, "ssh://u@127.0.0.1/p", {"no_such_option": "1"})
