"""An unwritable DVC remote: `dvc push` really fails, the ingest rolls back and says so in one named line.

Tests run as root, and root ignores chmod, so the remote is made unwritable by pointing it at a path
under a regular file (NotADirectoryError from the push, whoever runs it).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from batchgen import make_batch
from ingest_faults import block_remote, consistent, fingerprint, run_ingest, set_remote

from ifd.data.catalog import load_catalog
from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.data.journal import RemotePushFailed, repair_if_needed
from ifd.workspace import Workspace

CFG = IngestConfig()


@pytest.fixture
def filled(workspace: Workspace, tmp_path: Path) -> Workspace:
    ingest_batch(make_batch(tmp_path / "a"), "a", workspace, CFG)
    return workspace


def test_failed_push_rolls_back_a_new_batch_and_a_replace(filled: Workspace, tmp_path: Path) -> None:
    before, old_hashes = fingerprint(filled), load_catalog(filled.catalog_path).get("a").hashes
    url = block_remote(filled)
    with pytest.raises(RemotePushFailed, match=r"dvc push to the remote .*remote-blocker/remote.* failed "
                       r"\(NotADirectoryError"):
        ingest_batch(make_batch(tmp_path / "b"), "b", filled, CFG)
    assert fingerprint(filled) == before
    with pytest.raises(RemotePushFailed, match="nothing was committed"):
        ingest_batch(make_batch(tmp_path / "a2", n_sources=6), "a", filled, CFG, replace=True)
    assert fingerprint(filled) == before
    assert load_catalog(filled.catalog_path).get("a").hashes == old_hashes
    set_remote(filled, url)
    assert consistent(filled) == ["a"]
    ingest_batch(make_batch(tmp_path / "b"), "b", filled, CFG)  # the remote is back: the same ingest goes through
    assert consistent(filled) == ["a", "b"]


def test_cli_names_the_failed_push_in_one_line(
    prefect_server: None, filled: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ifd.cli import main

    before = fingerprint(filled)
    block_remote(filled)
    code = main(["ingest", str(make_batch(tmp_path / "b")), "--workspace", str(filled.root)])
    assert code == RemotePushFailed.exit_code == 1
    reasons = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ifd: error:")]
    assert len(reasons) == 1 and "dvc push to the remote" in reasons[0] and "nothing was committed" in reasons[0]
    assert fingerprint(filled) == before


def test_repair_that_cannot_push_rolls_back(filled: Workspace, tmp_path: Path) -> None:
    """Killed after `dvc add` was journaled, before the push; the remote is gone when the next command
    repairs: rolling forward is impossible, so it rolls back, and the batch is fully out."""
    before = fingerprint(filled)
    code, err = run_ingest(filled, make_batch(tmp_path / "b"), "b", fault="ingest.pushing")
    assert code == -signal.SIGKILL, err
    url = block_remote(filled)
    done = repair_if_needed(filled)
    assert done is not None and "rolled back the interrupted ingest of 'b'" in done and "dvc push" in done
    assert fingerprint(filled) == before
    set_remote(filled, url)
    assert consistent(filled) == ["a"]
