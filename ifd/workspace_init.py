"""`ifd init`: make a directory an ifd workspace (DVC project, empty catalogue, data.dvc)."""

from __future__ import annotations

import shutil

from ifd.data import dvc_store
from ifd.data.catalog import Catalog, save_catalog
from ifd.errors import IfdError
from ifd.workspace import Workspace


def init_workspace(ws: Workspace) -> Workspace:
    """Idempotent: an existing workspace is left as it is. In a fresh clone of a workspace (data/ and DVC's
    cache are not in git) whose data.dvc records the empty catalogue, the empty catalogue is restored and
    cached, so `dvc status` is clean; a data.dvc recording real batches is refused: `dvc pull` them."""
    ws.root.mkdir(parents=True, exist_ok=True)
    dvc_store.init_dvc(ws)
    data_missing = not ws.data_dir.exists()
    ws.data_dir.mkdir(exist_ok=True)
    if not ws.catalog_path.exists():
        save_catalog(Catalog(), ws.catalog_path)
    if not ws.data_dvc.exists():
        dvc_store.track_data(ws)
    elif data_missing:
        _restore_empty_data(ws)
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
