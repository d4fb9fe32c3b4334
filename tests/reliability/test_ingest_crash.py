"""kill -9 at each named step of an ingest's commit, then the next ifd command: repaired, fully in or out.

Each ingest runs in a real process that SIGKILLs itself at the step `IFD_FAULT_AT` names (ifd/faults.py,
the steps of ifd/data/journal.py). The next command is `ifd catalog`; it must leave the workspace
consistent (tests/reliability/ingest_faults.py): the catalogue, data/, data.dvc, DVC's status and the
remote agree, no journal or staging is left, and the batch is either fully in or fully out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batchgen import make_batch
from ingest_faults import consistent, file_hashes, fingerprint, ingest_process, run_ingest

from ifd.cli import main
from ifd.data.catalog import load_catalog
from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.workspace import Workspace

# step -> is the batch in after the repair? (the fault lands after the step's effect, before the journal says so)
NEW_NAME = {
    "ingest.before_lock": False,
    "ingest.journal_written": False,
    "ingest.moved_in": False,
    "ingest.catalogued": False,
    "ingest.dvc_added": False,
    "ingest.pushing": True,
    "ingest.pushed": True,
    "ingest.cleaned": True,
}
REPLACE = {
    "ingest.aside": False,
    "ingest.moved_in": False,
    "ingest.dvc_added": False,
    "ingest.pushing": True,
    "ingest.cleaned": True,
}


@pytest.fixture
def filled(workspace: Workspace, tmp_path: Path) -> Workspace:
    ingest_batch(make_batch(tmp_path / "a"), "a", workspace, IngestConfig())
    return workspace


def _killed(ws: Workspace, src: Path, name: str, step: str, replace: bool = False) -> None:
    code, err = run_ingest(ws, src, name, fault=step, replace=replace)
    assert code == -signal.SIGKILL, err
    assert f"SIGKILL at {step}" in err


def _next_command(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["catalog", "--workspace", str(ws.root)]) == 0
    return capsys.readouterr().err


@pytest.mark.parametrize("step", list(NEW_NAME))
def test_kill_during_a_new_batch(
    filled: Workspace, tmp_path: Path, step: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprint(filled)
    src = make_batch(tmp_path / "b")
    _killed(filled, src, "b", step)
    err = _next_command(filled, capsys)
    assert "ifd: repair:" in err
    names = consistent(filled)
    if NEW_NAME[step]:
        assert names == ["a", "b"]
        stored, given = file_hashes(filled.batch_dir("b")), file_hashes(src)
        assert {p: h for p, h in stored.items() if p != "manifest.csv"} == {
            p: h for p, h in given.items() if p != "manifest.csv"
        }
    else:
        assert names == ["a"] and fingerprint(filled) == before
        ingest_batch(src, "b", filled, IngestConfig())  # nothing lost: the same ingest goes through
        assert consistent(filled) == ["a", "b"]


@pytest.mark.parametrize("step", list(REPLACE))
def test_kill_during_a_replace(
    filled: Workspace, tmp_path: Path, step: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = load_catalog(filled.catalog_path).get("a").hashes
    before, inode = fingerprint(filled), filled.batch_dir("a").stat().st_ino
    newer = make_batch(tmp_path / "a2", n_sources=6)
    _killed(filled, newer, "a", step, replace=True)
    _next_command(filled, capsys)
    assert consistent(filled) == ["a"]
    hashes = load_catalog(filled.catalog_path).get("a").hashes
    if REPLACE[step]:
        assert len(hashes) == 12 and set(hashes).isdisjoint(old)
    else:  # the old batch is back by a rename (same inode), not restored from DVC's cache
        assert hashes == old and fingerprint(filled) == before
        assert filled.batch_dir("a").stat().st_ino == inode


def test_no_repair_while_an_ingest_holds_the_lock(filled: Workspace, tmp_path: Path) -> None:
    """A journal is only ever acted on by whoever holds the data lock: a live commit is left alone."""
    proc = ingest_process(filled, make_batch(tmp_path / "b"), "b", fault="ingest.catalogued=sleep:6")
    try:
        deadline = time.monotonic() + 60
        while not (filled.journal_path.exists() and "b" in load_catalog(filled.catalog_path).names()):
            assert proc.poll() is None and time.monotonic() < deadline, "the ingest never reached its commit"
            time.sleep(0.05)
        filled.require()  # what every command runs first: it must leave the live commit alone
        assert filled.journal_path.exists() and filled.batch_dir("b").exists()
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert consistent(filled) == ["a", "b"]


def test_cli_ingest_killed_then_cli_catalog_repairs(prefect_server: None, filled: Workspace, tmp_path: Path) -> None:
    """The whole path: `ifd ingest` (Prefect flow) killed after the catalogue write; `ifd catalog` repairs."""
    import os

    from prefect.settings import PREFECT_API_URL

    ifd = str(Path(sys.executable).with_name("ifd"))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "IFD_FAULT_AT": "ingest.catalogued"}
    cmd = [ifd, "ingest", str(make_batch(tmp_path / "b")), "--workspace", str(filled.root)]
    killed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    env.pop("IFD_FAULT_AT")
    listed = subprocess.run(
        [ifd, "catalog", "--workspace", str(filled.root), "--json"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0, listed.stderr
    assert "rolled back the interrupted ingest of 'b'" in listed.stderr
    assert consistent(filled) == ["a"]


def test_replace_puts_the_old_batch_aside_by_rename(filled: Workspace, tmp_path: Path) -> None:
    """No full copy of the batch being replaced: it is renamed aside (same inode) and renamed back."""
    inode = filled.batch_dir("a").stat().st_ino
    _killed(filled, make_batch(tmp_path / "a2", n_sources=6), "a", "ingest.aside", replace=True)
    aside = [p for p in filled.staging_dir.iterdir() if p.name.startswith("aside-a-")]
    assert [p.stat().st_ino for p in aside] == [inode] and not filled.batch_dir("a").exists()
    filled.require()
    assert filled.batch_dir("a").stat().st_ino == inode
    assert consistent(filled) == ["a"]


@pytest.mark.parametrize("journaled", ["catalogued", "dvc_added"])
def test_kill_inside_dvc(filled: Workspace, tmp_path: Path, journaled: str) -> None:
    """An outside SIGKILL the moment the journal records `journaled`: it lands inside `dvc add` (or
    `dvc push`), not at one of our fault points. DVC's own locks die with the process; the repair still
    leaves the batch fully in or fully out."""
    import json
    import os

    proc = ingest_process(filled, make_batch(tmp_path / "b", n_sources=30), "b")
    deadline = time.monotonic() + 120
    def step() -> str | None:
        try:
            return json.loads(filled.journal_path.read_text())["done"]
        except FileNotFoundError:
            return None

    while step() != journaled:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert step() in ("catalogued", "dvc_added", "pushed")
    filled.require()
    assert consistent(filled) in (["a"], ["a", "b"])


def test_ifd_init_repairs_before_it_recreates_anything(filled: Workspace, tmp_path: Path) -> None:
    """`ifd init` on a workspace a commit died in settles the journal first, then finds nothing to create."""
    from ifd.workspace_init import init_workspace

    before = fingerprint(filled)
    _killed(filled, make_batch(tmp_path / "b"), "b", "ingest.catalogued")
    init_workspace(filled)
    assert consistent(filled) == ["a"] and fingerprint(filled) == before
