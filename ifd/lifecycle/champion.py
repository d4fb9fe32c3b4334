"""ifd's own record of where it put `champion`, so a move made anywhere else can be seen and undone.

Every `ifd approve`, `ifd rollback` and `ifd revert-champion` writes, on the registered model, the tags
`ifd.champion` (the version, or `none`), `ifd.champion.how`, `.by`, `.at` and `.previous`, right before
it moves the alias. An alias that disagrees with the record was moved outside ifd (the MLflow UI, a
script) or by a decision that was interrupted; the monitor reports it (ifd/monitoring/alias_audit.py)
and `ifd revert-champion` points the alias back at the recorded version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ifd.workspace import Workspace

RECORD = "ifd.champion"
_KEYS = (RECORD, *(f"{RECORD}.{k}" for k in ("how", "by", "at", "previous")))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def recorded(ws: Workspace) -> dict[str, str] | None:
    """{"version", "how", "by", "at", "previous"} of ifd's last champion move, or None (never recorded)."""
    from ifd.tracking import model_tags as mt

    tags = mt.model_tags(ws)
    if RECORD not in tags:
        return None
    return {"version": tags[RECORD], **{k: tags.get(f"{RECORD}.{k}", "") for k in ("how", "by", "at", "previous")}}


def current_record(ws: Workspace) -> dict[str, str]:
    """The record's tags as they are now ({} if none), for `restore`."""
    from ifd.tracking import model_tags as mt

    return {k: v for k, v in mt.model_tags(ws).items() if k in _KEYS}


def record_move(ws: Workspace, version: str | None, how: str, by: str, previous: str | None) -> None:
    """Write the record of a champion move (call right before moving the alias)."""
    from ifd.tracking import model_tags as mt

    mt.set_model_tags(
        ws,
        {RECORD: version or "none", f"{RECORD}.how": how, f"{RECORD}.by": by, f"{RECORD}.at": _now(), f"{RECORD}.previous": previous or "none"},
    )


def restore(ws: Workspace, old: dict[str, str]) -> None:
    """Put back a record `current_record` returned (a move whose alias could not be set); {} removes it."""
    from ifd.tracking import model_tags as mt

    mt.set_model_tags(ws, {k: v for k, v in old.items() if k in _KEYS})
    mt.delete_model_tags(ws, [k for k in _KEYS if k not in old])


def revert(ws: Workspace, reviewer: str | None, note: str) -> dict[str, Any]:
    """Point `champion` back at the version ifd recorded; refused when nothing disagrees or nothing is recorded."""
    from ifd.lifecycle.review import ReviewRefused, all_or_nothing, check_note, deciding, who
    from ifd.tracking import model_registry as reg

    with deciding(ws):
        check_note(note)
        caller = who(ws, reviewer)
        rec = recorded(ws)
        if rec is None:
            raise ReviewRefused("ifd has no record of where it put `champion` (no approval since ifd records them); use `ifd approve` or `ifd rollback`")
        current = reg.aliases(ws).get(reg.CHAMPION)
        target = None if rec["version"] == "none" else rec["version"]
        if current == target:
            raise ReviewRefused(f"`champion` already points where ifd put it (version {target or 'none'}); nothing to revert")
        move = (lambda: reg.delete_alias(ws, reg.CHAMPION)) if target is None else (lambda: reg.set_alias(ws, reg.CHAMPION, target))
        old = current_record(ws)
        all_or_nothing([(lambda: record_move(ws, target, "revert", caller.name, current), lambda: restore(ws, old)), (move, None)])
        if current is not None:
            reg.set_tags(ws, current, {"champion_reverted_at": _now(), "champion_reverted_by": caller.name, "champion_revert_note": note})
        return {"champion": target, "reverted_from": current, "reviewer": caller.name, "reviewer_source": caller.source, "note": note}
