"""Ingest is all or nothing: a refused or failing batch leaves data/, data.dvc and the catalogue alone."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from batchgen import image_bytes, make_batch, make_folders, read_rows, write_rows

from ifd.data import dvc_store
from ifd.data.catalog import load_catalog
from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.errors import BatchRefused, IfdError
from ifd.workspace import Workspace
from ifd.workspace_init import init_workspace

CFG = IngestConfig()


def fingerprint(ws: Workspace) -> dict[str, str]:
    """sha256 of data.dvc and of every file under data/ (catalog.json included)."""
    files = [ws.data_dvc, *sorted(p for p in ws.data_dir.rglob("*") if p.is_file())]
    return {str(p.relative_to(ws.root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def leftovers(ws: Workspace) -> list[Path]:
    return list(ws.staging_dir.iterdir()) if ws.staging_dir.exists() else []


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path]:
    """A workspace that already holds one batch, `first`; refusals must leave it exactly as it is."""
    root = tmp_path_factory.mktemp("filled")
    ws = init_workspace(Workspace.at(root / "ws"))
    first = make_batch(root / "first")
    ingest_batch(first, "first", ws, CFG)
    return ws, first


def _truncate(batch: Path) -> None:
    path = batch / read_rows(batch).loc[0, "path"]
    path.write_bytes(path.read_bytes()[:60])


def _edit(column: str, value: str, row: int = 0):
    def edit(batch: Path) -> None:
        frame = read_rows(batch)
        frame.loc[row, column] = value
        write_rows(batch, frame)

    return edit


REFUSALS = {
    "truncated": (_truncate, "image_decodes"),
    "dotdot": (_edit("path", "../first/images/real_000.png"), "path_inside_batch"),
    "label": (_edit("label", "deepfake"), "label_values"),
    "source": (_edit("split", "test"), "source_in_one_split"),
}


@pytest.mark.parametrize("case", [*REFUSALS, "copy_of_first"])
def test_refused_batch_leaves_no_trace(filled: tuple[Workspace, Path], tmp_path: Path, case: str) -> None:
    ws, first = filled
    if case == "copy_of_first":
        batch, check = shutil.copytree(first, tmp_path / "renamed"), "not_already_ingested"
    else:
        edit, check = REFUSALS[case]
        batch = make_batch(tmp_path / case)
        edit(batch)
    before = fingerprint(ws)
    with pytest.raises(BatchRefused, match=rf"failed checks: .*{check}") as info:
        ingest_batch(batch, f"b-{case}", ws, CFG)
    assert check in [c.name for c in info.value.report.failures()]
    if case == "copy_of_first":
        assert "'ingested_in': 'first'" in str(info.value).replace('"', "'")
    assert fingerprint(ws) == before
    assert leftovers(ws) == []
    assert load_catalog(ws.catalog_path).names() == ["first"]


def test_ingest_copies_records_versions_and_pushes(workspace: Workspace, tmp_path: Path) -> None:
    version_before = dvc_store.data_version(workspace)
    batch = make_batch(tmp_path / "batch", n_sources=4)
    result = ingest_batch(batch, "one", workspace, CFG)
    assert result.n_rows == 8 and result.methods == ["gan"] and not result.replaced
    assert result.counts == {
        "train": {"fake": 2, "real": 2},
        "test": {"fake": 1, "real": 1},
        "val": {"fake": 1, "real": 1},
    }
    assert result.data_version == dvc_store.data_version(workspace) != version_before
    stored = workspace.batch_dir("one")
    assert all((stored / p).read_bytes() == (batch / p).read_bytes() for p in read_rows(stored)["path"])
    record = load_catalog(workspace.catalog_path).get("one")
    assert len(record.hashes) == 8 and record.format == "manifest"
    assert dvc_store.status(workspace) == {}
    assert dvc_store.status(workspace, cloud=True) == {}
    assert leftovers(workspace) == []


def test_failure_mid_commit_rolls_back(workspace: Workspace, tmp_path: Path) -> None:
    """A real failure inside `dvc add` (DVC's cache moved under a regular file). The batch is moved out
    again at once; DVC cannot confirm data/ against data.dvc without its cache, so the journal stays and
    the next command, once the cache is back, finishes the rollback. A replaced batch comes back by a
    rename, not from a copy."""
    from ifd.data.journal import RepairFailed

    ingest_batch(make_batch(tmp_path / "a"), "a", workspace, CFG)
    before = fingerprint(workspace)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so no cache can live under it")
    for name, replace in (("b", False), ("a", True)):
        with dvc_store._repo(workspace) as repo, repo.config.edit() as conf:
            conf["cache"]["dir"] = str(blocker / "cache")
        with pytest.raises(RepairFailed, match="the journal is kept") as info:
            ingest_batch(make_batch(tmp_path / f"{name}2"), name, workspace, CFG, replace=replace)
        assert isinstance(info.value.__context__, OSError)  # the failure of `dvc add` itself
        assert not workspace.batch_dir("b").exists() and workspace.journal_path.exists()
        with dvc_store._repo(workspace) as repo, repo.config.edit() as conf:
            del conf["cache"]["dir"]
        workspace.require()
        assert fingerprint(workspace) == before
        assert leftovers(workspace) == [] and not workspace.journal_path.exists()
        assert dvc_store.status(workspace) == {}


def test_same_name_needs_replace(workspace: Workspace, tmp_path: Path) -> None:
    ingest_batch(make_batch(tmp_path / "a"), "a", workspace, CFG)
    newer = make_batch(tmp_path / "a2", n_sources=8)
    with pytest.raises(IfdError, match="already ingested; pass --replace"):
        ingest_batch(newer, "a", workspace, CFG)
    result = ingest_batch(newer, "a", workspace, CFG, replace=True)
    assert result.replaced and result.n_rows == 16
    catalog = load_catalog(workspace.catalog_path)
    assert catalog.names() == ["a"] and len(catalog.get("a").hashes) == 16
    assert dvc_store.status(workspace) == {} and dvc_store.status(workspace, cloud=True) == {}


def test_synth_stream_ingests_batch_by_batch(workspace: Workspace, tmp_path: Path) -> None:
    from ifd.synth.config import SynthConfig
    from ifd.synth.stream import write_stream

    batches = write_stream(tmp_path / "stream", SynthConfig(tasks=2, per_class=6, size=32))
    for batch in batches:
        ingest_batch(batch, batch.name, workspace, CFG)
    assert load_catalog(workspace.catalog_path).names() == [b.name for b in batches]
    assert dvc_store.status(workspace) == {}


def test_other_formats_go_through_the_same_path(workspace: Workspace, tmp_path: Path) -> None:
    result = ingest_batch(
        make_folders(tmp_path / "celebs", n_per_class=4), "celebs", workspace, CFG, fmt="folders"
    )
    assert result.adapter_notes["skipped_files"] == 1
    assert load_catalog(workspace.catalog_path).get("celebs").format == "folders"


def test_flow_ingests_and_announces_the_batch(
    prefect_server: None, workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.ingest as flow_module

    real_emit, sent = flow_module.emit_event, []

    def recording_emit(**kwargs):
        event = real_emit(**kwargs)
        sent.append(event)
        return event

    monkeypatch.setattr(flow_module, "emit_event", recording_emit)
    result = flow_module.ingest_flow(
        src=str(make_batch(tmp_path / "batch")), name="flowed", root=str(workspace.root), cfg=CFG.model_dump()
    )
    assert result["n_rows"] == 8 and result["data_version"] == dvc_store.data_version(workspace)
    assert [e.event for e in sent] == ["ifd.batch.landed"]  # None would mean no events client took it
    assert sent[0].payload["name"] == "flowed" and sent[0].resource.id == "ifd.batch.flowed"
    assert leftovers(workspace) == []


def test_cli_refusal_is_one_line_and_non_zero(
    prefect_server: None, workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ifd.cli import main

    bad = make_batch(tmp_path / "bad")
    (bad / read_rows(bad).loc[0, "path"]).write_bytes(image_bytes("x")[:50])
    before = fingerprint(workspace)
    code = main(["ingest", str(bad), "--workspace", str(workspace.root)])
    assert code == BatchRefused.exit_code
    reasons = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ifd: error:")]
    assert reasons == ["ifd: error: batch 'bad' refused: failed checks: image_decodes"]
    assert fingerprint(workspace) == before
    assert leftovers(workspace) == []
