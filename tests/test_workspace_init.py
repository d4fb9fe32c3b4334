"""`ifd init` in a fresh clone of a workspace: git holds data.dvc but neither data/ nor DVC's cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from batchgen import make_batch

from ifd.data import dvc_store
from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.errors import IfdError
from ifd.workspace import Workspace
from ifd.workspace_init import init_workspace


def _as_fresh_clone(ws: Workspace) -> None:
    """Drop what git would not carry: data/, DVC's cache and the local remote under .ifd/."""
    shutil.rmtree(ws.data_dir)
    shutil.rmtree(ws.root / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(ws.root / ".ifd", ignore_errors=True)


def test_init_in_a_clone_with_the_empty_catalogue_leaves_dvc_status_clean(workspace: Workspace) -> None:
    recorded = workspace.data_dvc.read_text()
    _as_fresh_clone(workspace)
    assert dvc_store.status(workspace) != {}
    init_workspace(workspace)
    assert workspace.data_dvc.read_text() == recorded
    assert dvc_store.status(workspace) == {}


def test_init_in_a_clone_with_real_batches_refuses_and_keeps_data_dvc(workspace: Workspace, tmp_path: Path) -> None:
    ingest_batch(make_batch(tmp_path / "batch", n_sources=4), "one", workspace, IngestConfig())
    recorded = workspace.data_dvc.read_text()
    _as_fresh_clone(workspace)
    with pytest.raises(IfdError, match="dvc pull"):
        init_workspace(workspace)
    assert workspace.data_dvc.read_text() == recorded
    assert not workspace.data_dir.exists()
