"""`ifd init`: make a directory an ifd workspace (DVC project, empty catalogue, data.dvc, a workspace id)."""

from __future__ import annotations

import shutil

from ifd.data import dvc_store
from ifd.data.catalog import Catalog, save_catalog
from ifd.errors import IfdError
from ifd.workspace import Workspace
from ifd.workspace_id import ensure_workspace_id


def init_workspace(ws: Workspace, remote: str | None = None,
                   remote_options: dict[str, str] | None = None) -> Workspace:
    """Idempotent: an existing workspace is left as it is (an interrupted ingest is repaired first). In a
    fresh clone of a workspace (data/ and DVC's cache are not in git) whose data.dvc records the empty
    catalogue, the empty catalogue is restored and cached, so `dvc status` is clean; a data.dvc
    recording real batches is refused: `dvc pull` them."""
    if (ws.root / ".dvc").is_dir():
        from ifd.data.journal import repair_if_needed

        repair_if_needed(ws)  # before anything is (re)created from what a killed ingest left
    ws.root.mkdir(parents=True, exist_ok=True)
    dvc_store.init_dvc(ws, remote, remote_options)  # no remote given: the present one is kept
    data_missing = not ws.data_dir.exists()
    ws.data_dir.mkdir(exist_ok=True)
    if not ws.catalog_path.exists():
        save_catalog(Catalog(), ws.catalog_path)
    if not ws.data_dvc.exists():
        dvc_store.track_data(ws)
    elif data_missing:
        _restore_empty_data(ws)
    elif remote is not None:
        dvc_store.push_data(ws)  # a new remote gets the version data.dvc already records
    ensure_workspace_id(ws)  # once: a workspace keeps the id params.yaml records
    return ws


def _restore_empty_data(ws: Workspace) -> None:
    recorded = ws.data_dvc.read_text()
    try:
        dvc_store.track_data(ws)
    finally:
        changed = ws.data_dvc.read_text() != recorded
        if changed:
            ws.data_dvc.write_text(recorded)
            shutil.rmtree(ws.data_dir)
    if changed:
        raise IfdError(
            f"{ws.data_dvc} records data that is not in {ws.data_dir}; fetch it with `dvc pull` "
            "(data.dvc was left as it was)"
        )
