"""The workspace id: which workspace an `ifd.batch.landed` event is about, independent of where it lives.

It is `workspace_id` in the workspace's params.yaml, derived once (`<folder>-<12 random hex>`) and
appended there by `ifd init`, or later by the first command that needs it (ingest, `ifd worker deploy`)
in a workspace made before ids existed. params.yaml is tracked with the workspace, so every clone of it
(on every worker machine) has the same id; set it by hand to name a workspace (letters, digits, `.`,
`_`, `-`). Two copies of one workspace that should not trigger each other's retrains need two ids.
"""

from __future__ import annotations

import re
import uuid

from ifd.errors import ConfigError
from ifd.workspace import Workspace

KEY = "workspace_id"


def read_workspace_id(ws: Workspace) -> str | None:
    """The id params.yaml records, or None (a ConfigError names a malformed one)."""
    from ifd.config import load_config

    return load_config(ws.params_path).workspace_id


def derive_workspace_id(ws: Workspace) -> str:
    """A new id: the folder name as a slug, then 12 random hex digits (unique across machines)."""
    slug = re.sub(r"[^a-z0-9]+", "-", ws.root.name.lower()).strip("-")[:40] or "ws"
    return f"{slug}-{uuid.uuid4().hex[:12]}"


def ensure_workspace_id(ws: Workspace) -> str:
    """The recorded id; none yet: derive one and append it to params.yaml (its other lines untouched)."""
    found = read_workspace_id(ws)
    if found is not None:
        return found
    new = derive_workspace_id(ws)
    path = ws.params_path
    before = path.read_text() if path.exists() else None
    text = before or ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(f"{text}# which workspace ifd.batch.landed events name (written by ifd init)\n{KEY}: {new}\n")
    try:
        written = read_workspace_id(ws)
    except ConfigError:
        written = None
    if written != new:  # e.g. a flow-style mapping that a block line cannot extend
        if before is None:
            path.unlink()
        else:
            path.write_text(before)
        raise ConfigError(f"{path}: could not add `{KEY}: {new}`; add a `{KEY}:` line to it yourself")
    return new
