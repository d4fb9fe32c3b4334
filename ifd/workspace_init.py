"""`ifd init`: make a directory an ifd workspace (DVC project, empty catalogue, data.dvc)."""

from __future__ import annotations

from ifd.data import dvc_store
from ifd.data.catalog import Catalog, save_catalog
from ifd.workspace import Workspace


def init_workspace(ws: Workspace) -> Workspace:
    """Idempotent: an existing workspace is left as it is."""
    ws.root.mkdir(parents=True, exist_ok=True)
    dvc_store.init_dvc(ws)
    ws.data_dir.mkdir(exist_ok=True)
    if not ws.catalog_path.exists():
        save_catalog(Catalog(), ws.catalog_path)
    if not ws.data_dvc.exists():
        dvc_store.track_data(ws)
    return ws
