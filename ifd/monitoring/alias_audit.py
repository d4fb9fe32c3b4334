"""Is `champion` where ifd put it? An alias moved outside `ifd approve` / `ifd rollback` (the MLflow UI,
a script, an interrupted decision) becomes a `champion_alias` alert with the one command that reverts it.

ifd records every champion move on the registered model (ifd/lifecycle/champion.py). A registry from
before that record existed is judged by the version's own tags instead: its champion must be an
approved version that was never rolled back from.
"""

from __future__ import annotations

from typing import Any

from ifd.monitoring.alerts import Alert
from ifd.workspace import Workspace

KIND = "champion_alias"
REVERT = "ifd revert-champion --note TEXT"


def audit_champion(ws: Workspace) -> tuple[dict[str, Any], list[Alert]]:
    """({"champion_alias": "ok" | "moved" | ..., ...}, [alert]) for the workspace's registry."""
    from ifd.lifecycle.champion import recorded
    from ifd.lifecycle.review import is_approved
    from ifd.tracking import model_registry as reg

    current = reg.aliases(ws).get(reg.CHAMPION)
    rec = recorded(ws)
    values: dict[str, Any] = {"champion_alias": "ok", "champion_recorded": rec["version"] if rec else None}
    if rec is None:
        if current is None or is_approved(reg.get_version(ws, current)):
            return values, []
        values["champion_alias"] = "moved"
        message = f"`champion` points at version {current}, which no reviewer approved with `ifd approve` (or it was rolled back from)"
        return values, [_alert(message, current, None, "`ifd rollback` or `ifd approve` a version")]
    target = None if rec["version"] == "none" else rec["version"]
    if current == target:
        return values, []
    values["champion_alias"] = "moved"
    where = f"version {current}" if current else "nothing (the alias was deleted)"
    message = (
        f"`champion` points at {where}, but ifd last put it on version {target or 'none'} "
        f"({rec['how']} by {rec['by']} at {rec['at']}): it was moved outside ifd approve/rollback, or a decision was interrupted"
    )
    return values, [_alert(message, current, rec, f"revert it: `{REVERT}` (or `ifd approve` the version if the move was meant)")]


def _alert(message: str, current: str | None, rec: dict[str, str] | None, action: str) -> Alert:
    details: dict[str, Any] = {"alias_version": current, "revert_command": REVERT}
    if rec is not None:
        details["recorded"] = rec
    return Alert(kind=KIND, message=message, value=1.0, threshold=0.0, version=current or "none", action=action, details=details)
