"""Reviewer decisions on registered versions, recorded in version tags (who, when, why).

- approve: only a version that passed the gate, has no decision yet and was trained on top of the
  current champion (so approving it keeps everything the champion learned); `champion` moves to it
  and `challenger` is removed if it pointed there.
- reject: a version with no decision yet; `challenger` is removed if it pointed there.
- rollback: `champion` back to the newest approved version older than the current one (versions
  rolled back from are skipped and tagged `rolled_back_at` / `rolled_back_by`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace

DECISION_TAGS = ("decision", "reviewer", "decided_at", "note")


class ReviewRefused(IfdError):
    """A decision the version's state does not allow; the message says why."""

    exit_code = 6


@contextmanager
def _deciding(ws: Workspace) -> Iterator[None]:
    """One decision at a time per workspace (two reviewers approving at once would race on `champion`)."""
    from ifd.locks import workspace_lock

    with workspace_lock(ws, "registry", timeout=30.0):
        yield


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_reviewer(reviewer: str, note: str) -> None:
    if not reviewer.strip():
        raise ReviewRefused("a decision needs a reviewer name (--reviewer NAME)")
    if not note.strip():
        raise ReviewRefused("a decision needs a note saying why (--note TEXT)")


def _undecided(info: Any) -> None:
    if info.tags.get("decision"):
        raise ReviewRefused(
            f"version {info.version} was already {info.tags['decision']} by {info.tags.get('reviewer', '?')} "
            f"at {info.tags.get('decided_at', '?')}"
        )


def approve(ws: Workspace, version: str, reviewer: str, note: str) -> dict[str, Any]:
    """Make `version` the champion; refused unless it passed the gate and extends the current champion."""
    with _deciding(ws):
        return _approve(ws, version, reviewer, note)


def _approve(ws: Workspace, version: str, reviewer: str, note: str) -> dict[str, Any]:
    from ifd.tracking import model_registry as reg

    _check_reviewer(reviewer, note)
    info = reg.resolve(ws, version)
    if info.tags.get("gate") != "passed":
        raise ReviewRefused(f"version {info.version} did not pass the gate ({info.tags.get('gate', 'no gate tag')}); it cannot be approved")
    _undecided(info)
    champion = reg.version_by_alias(ws, reg.CHAMPION)
    parent = info.tags.get("parent_version", "none")
    current = champion.version if champion else "none"
    if parent != current:
        raise ReviewRefused(
            f"version {info.version} was trained on top of version {parent}, but the champion is now {current}; "
            f"approving it would drop what {current} learned: run `ifd retrain {info.tags.get('new_task', 'NAME')}` again"
        )
    tags = {"decision": "approved", "reviewer": reviewer, "decided_at": _now(), "note": note}
    reg.set_tags(ws, info.version, tags)
    try:
        reg.set_alias(ws, reg.CHAMPION, info.version)
    except Exception:
        reg.delete_tags(ws, info.version, list(DECISION_TAGS))
        raise
    if reg.CHALLENGER in info.aliases:
        reg.delete_alias(ws, reg.CHALLENGER)
    return {"version": info.version, "champion": info.version, "previous_champion": champion.version if champion else None, **tags}


def reject(ws: Workspace, version: str, reviewer: str, note: str) -> dict[str, Any]:
    """Record a rejection; the version stays in the registry without an alias."""
    with _deciding(ws):
        return _reject(ws, version, reviewer, note)


def _reject(ws: Workspace, version: str, reviewer: str, note: str) -> dict[str, Any]:
    from ifd.tracking import model_registry as reg

    _check_reviewer(reviewer, note)
    info = reg.resolve(ws, version)
    _undecided(info)
    if reg.CHAMPION in info.aliases:
        raise ReviewRefused(f"version {info.version} is the champion; use `ifd rollback` to replace it")
    tags = {"decision": "rejected", "reviewer": reviewer, "decided_at": _now(), "note": note}
    reg.set_tags(ws, info.version, tags)
    if reg.CHALLENGER in info.aliases:
        reg.delete_alias(ws, reg.CHALLENGER)
    return {"version": info.version, **tags}


def rollback(ws: Workspace, reviewer: str, note: str) -> dict[str, Any]:
    """Move `champion` back to the newest approved version older than the current champion."""
    with _deciding(ws):
        return _rollback(ws, reviewer, note)


def _rollback(ws: Workspace, reviewer: str, note: str) -> dict[str, Any]:
    from ifd.tracking import model_registry as reg

    _check_reviewer(reviewer, note)
    versions = reg.list_versions(ws)
    current = next((v for v in versions if reg.CHAMPION in v.aliases), None)
    if current is None:
        raise ReviewRefused("there is no champion to roll back")
    earlier = [v for v in versions if int(v.version) < int(current.version) and is_approved(v)]
    if not earlier:
        raise ReviewRefused(f"no approved version older than the champion (version {current.version}) to roll back to")
    target = earlier[-1]
    reg.set_tags(ws, current.version, {"rolled_back_at": _now(), "rolled_back_by": reviewer, "rollback_note": note})
    reg.set_alias(ws, reg.CHAMPION, target.version)
    return {"champion": target.version, "rolled_back_from": current.version, "reviewer": reviewer, "note": note}


def is_approved(info: Any) -> bool:
    """Approved and never rolled back from."""
    return info.tags.get("decision") == "approved" and "rolled_back_at" not in info.tags


def registry_rows(ws: Workspace) -> list[dict[str, Any]]:
    """Every version, newest first, with its gate numbers, decision, reviewer and aliases."""
    from ifd.tracking import model_registry as reg

    rows = []
    for v in reversed(reg.list_versions(ws)):
        t = v.tags
        rows.append(
            {
                "version": v.version,
                "aliases": v.aliases,
                "tasks": v.tasks,
                "new_task": t.get("new_task"),
                "parent_version": t.get("parent_version"),
                "gate": t.get("gate"),
                "gate_rules": {k.removeprefix("gate."): val for k, val in t.items() if k.startswith("gate.") and k != "gate.failed_rules"},
                "AA": t.get("AA"),
                "AF": t.get("AF"),
                "decision": t.get("decision", "pending"),
                "reviewer": t.get("reviewer"),
                "decided_at": t.get("decided_at"),
                "note": t.get("note"),
                "rolled_back_at": t.get("rolled_back_at"),
                "data_version": t.get("data_version"),
                "run_id": v.run_id,
                "uri": v.uri,
            }
        )
    return rows


def registry_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no registered version yet; run `ifd retrain NAME`"
    out = []
    for r in rows:
        alias = f" [{', '.join(r['aliases'])}]" if r["aliases"] else ""
        decided = f" by {r['reviewer']} at {r['decided_at']}: {r['note']}" if r["reviewer"] else ""
        rolled = f" (rolled back at {r['rolled_back_at']})" if r["rolled_back_at"] else ""
        out.append(f"version {r['version']}{alias}: +{r['new_task']} on top of {r['parent_version']}; tasks {','.join(r['tasks'])}")
        out.append(f"  gate {r['gate']}; AA {r['AA']} AF {r['AF']}; {r['decision']}{decided}{rolled}")
        out.extend(f"    {rule}: {detail}" for rule, detail in sorted(r["gate_rules"].items()))
    return "\n".join(out)
