"""Reviewer decisions on registered versions, recorded in version tags (who, when, why).

- approve: only a version that passed the gate, has no decision yet and was trained on top of the
  current champion (so approving it keeps everything the champion learned); `champion` moves to it
  and `challenger` is removed if it pointed there.
- reject: a version with no decision yet; `challenger` is removed if it pointed there.
- rollback: `champion` back to the newest approved version older than the current one (versions
  rolled back from are skipped and tagged `rolled_back_at` / `rolled_back_by`).

The reviewer is the user the tracking server authenticated when it runs MLflow's basic auth
(ifd/tracking/identity.py; `reviewer_source` = `mlflow-auth`), else the `--reviewer` name
(`reviewer_source` = `flag`). Decisions take the workspace's registry lock and re-read the version
under it, so of two concurrent approvals one wins and the other is refused. Every champion move is
recorded on the registered model first (ifd/lifecycle/champion.py), so a move made elsewhere shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ifd.errors import IfdError
from ifd.faults import maybe_fault
from ifd.workspace import Workspace

DECISION_TAGS = ("decision", "reviewer", "reviewer_source", "decided_at", "note")


class ReviewRefused(IfdError):
    """A decision the version's state does not allow; the message says why."""

    exit_code = 6


@dataclass(frozen=True)
class Caller:
    """Who decides, and how that is known: `mlflow-auth` (the server checked it) or `flag` (--reviewer)."""

    name: str
    source: str


@contextmanager
def deciding(ws: Workspace) -> Iterator[None]:
    """One decision at a time per workspace (two reviewers approving at once would race on `champion`),
    all its tracking calls under one retry budget."""
    from ifd.locks import workspace_lock
    from ifd.tracking.retry import retry_budget

    with workspace_lock(ws, "registry", timeout=30.0), retry_budget():
        yield


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_note(note: str) -> None:
    if not note.strip():
        raise ReviewRefused("a decision needs a note saying why (--note TEXT)")


def who(ws: Workspace, reviewer: str | None) -> Caller:
    """The reviewer: the user the tracking server authenticated, else the --reviewer name."""
    from ifd.tracking.identity import AUTHENTICATED, FLAG, authenticated_user

    user = authenticated_user(ws)
    given = (reviewer or "").strip()
    if user is not None:
        if given and given != user:
            raise ReviewRefused(
                f"you are signed in to the tracking server as {user!r}; --reviewer {given!r} does not match "
                "(leave --reviewer out: the signed-in user is recorded)"
            )
        return Caller(user, AUTHENTICATED)
    if not given:
        raise ReviewRefused(
            "a decision needs a reviewer: sign in to a basic-auth MLflow server "
            "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) or pass --reviewer NAME"
        )
    return Caller(given, FLAG)


Step = tuple[Callable[[], Any], Callable[[], Any] | None]


def all_or_nothing(steps: list[Step]) -> None:
    """Do each step; when one fails (the server refused, or stopped answering), undo the done ones, newest first.

    The step that needs the most permission comes first, so a refusal usually changes nothing at all.
    """
    undo: list[Callable[[], Any]] = []
    try:
        for do, undo_it in steps:
            if undo_it is not None:  # before: a step that fails half-way is undone too
                undo.append(undo_it)
            do()
    except BaseException:
        for fn in reversed(undo):
            try:
                fn()
            except Exception:  # best effort: the first error is the one to report
                pass
        raise


def _ledger_step(ws: Workspace, version: str | None, how: str, by: str, previous: str | None) -> Step:
    from ifd.lifecycle import champion as ledger

    old: list[dict[str, str]] = []

    def do() -> None:
        old.append(ledger.current_record(ws))
        ledger.record_move(ws, version, how, by, previous)

    return do, lambda: ledger.restore(ws, old[0]) if old else None


def _interrupted_approval(info: Any, reviewer: str) -> bool:
    """Approved by `reviewer`, never champion since (no alias, never rolled back from): a decision cut short."""
    return (
        info.tags.get("decision") == "approved"
        and info.tags.get("reviewer") == reviewer
        and "champion" not in info.aliases
        and "rolled_back_at" not in info.tags
    )


def _undecided(info: Any) -> None:
    if info.tags.get("decision"):
        raise ReviewRefused(
            f"version {info.version} was already {info.tags['decision']} by {info.tags.get('reviewer', '?')} "
            f"at {info.tags.get('decided_at', '?')}"
        )


def approve(ws: Workspace, version: str, reviewer: str | None, note: str) -> dict[str, Any]:
    """Make `version` the champion; refused unless it passed the gate and extends the current champion."""
    with deciding(ws):
        return _approve(ws, version, reviewer, note)


def _approve(ws: Workspace, version: str, reviewer: str | None, note: str) -> dict[str, Any]:
    from ifd.tracking import model_registry as reg

    check_note(note)
    caller = who(ws, reviewer)
    info = reg.resolve(ws, version)
    if info.tags.get("gate") != "passed":
        raise ReviewRefused(f"version {info.version} did not pass the gate ({info.tags.get('gate', 'no gate tag')}); it cannot be approved")
    # The same reviewer's approval that was interrupted before `champion` moved is finished, not refused.
    resuming = _interrupted_approval(info, caller.name)
    if not resuming:
        _undecided(info)
    champion = reg.version_by_alias(ws, reg.CHAMPION)
    parent = info.tags.get("parent_version", "none")
    current = champion.version if champion else "none"
    if parent != current:
        raise ReviewRefused(
            f"version {info.version} was trained on top of version {parent}, but the champion is now {current}; "
            f"approving it would drop what {current} learned: run `ifd retrain {info.tags.get('new_task', 'NAME')}` again"
        )
    maybe_fault("review.checked")  # test-only: widens the window between the checks and the writes
    tags = {"decision": "approved", "reviewer": caller.name, "reviewer_source": caller.source, "decided_at": _now(), "note": note}
    if resuming:
        tags = {k: info.tags.get(k, v) for k, v in tags.items()}
    previous = champion.version if champion else None
    steps: list[Step] = []
    if reg.CHALLENGER in info.aliases:  # first: it needs the most permission (MANAGE), and nothing is changed yet
        steps.append((lambda: reg.delete_alias(ws, reg.CHALLENGER), lambda: reg.set_alias(ws, reg.CHALLENGER, info.version)))
    if not resuming:
        steps.append((lambda: reg.set_tags(ws, info.version, tags), lambda: reg.delete_tags(ws, info.version, list(DECISION_TAGS))))
    steps.append((lambda: maybe_fault("review.decision_tagged"), None))
    steps.append(_ledger_step(ws, info.version, "approve", caller.name, previous))
    steps.append((lambda: reg.set_alias(ws, reg.CHAMPION, info.version), None))
    all_or_nothing(steps)
    return {"version": info.version, "champion": info.version, "previous_champion": champion.version if champion else None, **tags}


def reject(ws: Workspace, version: str, reviewer: str | None, note: str) -> dict[str, Any]:
    """Record a rejection; the version stays in the registry without an alias."""
    with deciding(ws):
        return _reject(ws, version, reviewer, note)


def _reject(ws: Workspace, version: str, reviewer: str | None, note: str) -> dict[str, Any]:
    from ifd.tracking import model_registry as reg

    check_note(note)
    caller = who(ws, reviewer)
    info = reg.resolve(ws, version)
    _undecided(info)
    if reg.CHAMPION in info.aliases:
        raise ReviewRefused(f"version {info.version} is the champion; use `ifd rollback` to replace it")
    tags = {"decision": "rejected", "reviewer": caller.name, "reviewer_source": caller.source, "decided_at": _now(), "note": note}
    steps: list[Step] = []
    if reg.CHALLENGER in info.aliases:
        steps.append((lambda: reg.delete_alias(ws, reg.CHALLENGER), lambda: reg.set_alias(ws, reg.CHALLENGER, info.version)))
    steps.append((lambda: reg.set_tags(ws, info.version, tags), None))
    all_or_nothing(steps)
    return {"version": info.version, **tags}


def rollback(ws: Workspace, reviewer: str | None, note: str) -> dict[str, Any]:
    """Move `champion` back to the newest approved version older than the current champion."""
    with deciding(ws):
        return _rollback(ws, reviewer, note)


def _rollback(ws: Workspace, reviewer: str | None, note: str) -> dict[str, Any]:
    from ifd.tracking import model_registry as reg

    check_note(note)
    caller = who(ws, reviewer)
    versions = reg.list_versions(ws)
    current = next((v for v in versions if reg.CHAMPION in v.aliases), None)
    if current is None:
        raise ReviewRefused("there is no champion to roll back")
    earlier = [v for v in versions if int(v.version) < int(current.version) and is_approved(v)]
    if not earlier:
        raise ReviewRefused(f"no approved version older than the champion (version {current.version}) to roll back to")
    target = earlier[-1]
    marks = {"rolled_back_at": _now(), "rolled_back_by": caller.name, "rollback_note": note}
    all_or_nothing(
        [
            (lambda: reg.set_tags(ws, current.version, marks), lambda: reg.delete_tags(ws, current.version, list(marks))),
            _ledger_step(ws, target.version, "rollback", caller.name, current.version),
            (lambda: reg.set_alias(ws, reg.CHAMPION, target.version), None),
        ]
    )
    return {"champion": target.version, "rolled_back_from": current.version, "reviewer": caller.name, "reviewer_source": caller.source, "note": note}


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
                "reviewer_source": t.get("reviewer_source"),
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
        signed = " (signed in to MLflow)" if r.get("reviewer_source") == "mlflow-auth" else ""
        decided = f" by {r['reviewer']}{signed} at {r['decided_at']}: {r['note']}" if r["reviewer"] else ""
        rolled = f" (rolled back at {r['rolled_back_at']})" if r["rolled_back_at"] else ""
        out.append(f"version {r['version']}{alias}: +{r['new_task']} on top of {r['parent_version']}; tasks {','.join(r['tasks'])}")
        out.append(f"  gate {r['gate']}; AA {r['AA']} AF {r['AF']}; {r['decision']}{decided}{rolled}")
        out.extend(f"    {rule}: {detail}" for rule, detail in sorted(r["gate_rules"].items()))
    return "\n".join(out)
