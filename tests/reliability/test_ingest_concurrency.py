"""Two ingests of one name: exactly one wins, the other is refused by name; `--replace` is honoured under
the lock. The name and cross-batch content checks are repeated under the data lock, where the commit is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from batchgen import make_batch
from ingest_faults import consistent, file_hashes, ingest_process

from ifd.data.catalog import load_catalog
from ifd.data.ingest import commit_batch, discard_staged, stage_batch, validate_staged
from ifd.data.ingest_config import IngestConfig
from ifd.errors import BatchRefused, IfdError
from ifd.workspace import Workspace

CFG = IngestConfig()


def _staged(ws: Workspace, src: Path, name: str, replace: bool = False):
    staged = stage_batch(src, name, "manifest", ws, CFG, replace=replace)
    validate_staged(staged, ws, CFG)
    return staged


def test_second_commit_of_a_name_is_refused_unless_replace(workspace: Workspace, tmp_path: Path) -> None:
    """Both ingests pass the early name check; the later commit must not silently replace the first."""
    first = _staged(workspace, make_batch(tmp_path / "one"), "x")
    second = _staged(workspace, make_batch(tmp_path / "two", n_sources=6), "x")
    third = _staged(workspace, make_batch(tmp_path / "three", n_sources=8), "x", replace=True)
    commit_batch(first, workspace)
    kept = load_catalog(workspace.catalog_path).get("x").hashes
    with pytest.raises(IfdError, match="'x' is already ingested; pass --replace") as info:
        commit_batch(second, workspace)
    discard_staged(second)
    assert type(info.value).__name__ == "BatchExists" and info.value.exit_code == 3
    assert load_catalog(workspace.catalog_path).get("x").hashes == kept
    result = commit_batch(third, workspace, CFG)
    assert result.replaced and result.n_rows == 16
    assert consistent(workspace) == ["x"]


def test_content_committed_meanwhile_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    src = make_batch(tmp_path / "same")
    first, second = _staged(workspace, src, "p"), _staged(workspace, src, "q")
    commit_batch(first, workspace, CFG)
    with pytest.raises(BatchRefused, match="failed checks: not_already_ingested") as info:
        commit_batch(second, workspace, CFG)
    discard_staged(second)
    assert info.value.report.failures()[0].sample_rows[0]["ingested_in"] == "p"
    assert consistent(workspace) == ["p"]


@pytest.mark.parametrize("replace", [False, True])
def test_two_processes_one_name(workspace: Workspace, tmp_path: Path, replace: bool) -> None:
    """Two real processes, both validated before either commits (a 2 s pause before the lock lines them
    up): without --replace one wins and the other is refused by name; with it, both commit in turn."""
    sources = [make_batch(tmp_path / "left", n_sources=4), make_batch(tmp_path / "right", n_sources=6)]
    procs = [
        ingest_process(workspace, src, "dup", fault="ingest.before_lock=sleep:2", replace=replace) for src in sources
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert consistent(workspace) == ["dup"]
    stored = file_hashes(workspace.batch_dir("dup"))
    winners = [s for s in sources if all(stored.get(p) == h for p, h in file_hashes(s).items() if p != "manifest.csv")]
    assert len(winners) == 1
    if replace:
        assert codes == [0, 0]
    else:
        assert codes == [0, 3]  # BatchExists: a refused batch
        refusal = next(err for code, err in outcomes if code)
        assert "ifd: error: a batch named 'dup' is already ingested; pass --replace" in refusal


def test_a_commit_waits_for_the_lock_then_is_refused_as_busy(workspace: Workspace, tmp_path: Path) -> None:
    """`ingest.lock_wait_s`: a commit waits that long for another holder of the data lock, then exit 4."""
    from ifd.locks import WorkspaceBusy, workspace_lock

    staged = _staged(workspace, make_batch(tmp_path / "b"), "b")
    with workspace_lock(workspace, "data"), pytest.raises(WorkspaceBusy, match=r"waited 0.3 s") as info:
        commit_batch(staged, workspace, IngestConfig(lock_wait_s=0.3))
    discard_staged(staged)
    assert info.value.exit_code == 4
    assert consistent(workspace) == []
