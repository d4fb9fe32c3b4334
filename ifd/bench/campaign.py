"""A campaign that runs in pieces: `ifd bench --out DIR` keeps every finished (strategy, seed) of DIR.

A run folder `DIR/runs/<strategy>__seed<k>/` that holds a successful `result.json` made from the same
spec (torch threads aside) is not run again; one made from another spec stops the campaign before
anything runs, naming the settings that differ (use another `--out`, or `--fresh` to run it again). The
results are then built from *every* run in DIR, also those of strategies or seeds not asked for this time,
so a campaign run strategy by strategy or seed by seed across sessions ends in one table. Runs in DIR
must share the stream, tasks, shared config and split; a folder that does not is refused, by name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ifd.bench.spec import RESULT_FILE, SPEC_FILE, RunResult, RunSpec
from ifd.errors import IfdError

IGNORED = ("threads", "peer_metrics")
SHARED = ("stream", "tasks", "lid", "eval_split")


def _comparable(spec: RunSpec) -> dict[str, Any]:
    data = spec.model_dump(mode="json")
    for key in IGNORED:
        data.pop(key, None)
    data["baseline_params"] = data.get("baseline_params", {}).get(spec.strategy, {})
    return data


def _stored_spec(folder: Path) -> RunSpec | None:
    try:
        return RunSpec.model_validate(json.loads((folder / SPEC_FILE).read_text()))
    except (OSError, ValueError):
        return None


def finished(spec: RunSpec) -> RunResult | None:
    """The successful result already in the spec's folder, if made from the same spec; an error if the
    folder holds a result of another spec (the campaign would mix settings)."""
    folder = Path(spec.work_dir)
    if not (folder / RESULT_FILE).is_file():
        return None
    stored = _stored_spec(folder)
    try:
        result = RunResult.load(folder / RESULT_FILE)
    except (OSError, ValueError, TypeError):
        return None
    if not result.ok:
        return None
    if stored is None:
        raise IfdError(f"{folder}: a result without a readable {SPEC_FILE}; remove the folder or use --fresh")
    old, new = _comparable(stored), _comparable(spec)
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        raise IfdError(f"{folder} holds a result made with other {', '.join(differ)}; use another --out, or --fresh to rerun")
    return result


def collect(out: Path, order: Sequence[str] = ()) -> tuple[dict[str, list[RunResult]], list[int]]:
    """Every run of DIR (finished or failed), by strategy (asked ones first), and the union of their seeds."""
    found: dict[str, list[RunResult]] = {}
    reference: tuple[Path, dict[str, Any]] | None = None
    for folder in sorted((Path(out) / "runs").glob("*__seed*")):
        spec = _stored_spec(folder)
        if spec is None or not (folder / RESULT_FILE).is_file():
            continue
        shared = {k: spec.model_dump(mode="json").get(k) for k in SHARED}
        if reference is None:
            reference = (folder, shared)
        elif shared != reference[1]:
            differ = sorted(k for k in SHARED if shared[k] != reference[1][k])
            raise IfdError(f"{folder} and {reference[0]} were run with other {', '.join(differ)}; one --out holds one campaign")
        try:
            found.setdefault(spec.strategy, []).append(RunResult.load(folder / RESULT_FILE))
        except (OSError, ValueError, TypeError) as exc:
            found.setdefault(spec.strategy, []).append(RunResult(spec.strategy, spec.seed, error=f"unreadable result ({exc})"))
    names = [n for n in order if n in found] + sorted(n for n in found if n not in order)
    runs = {n: sorted(found[n], key=lambda r: r.seed) for n in names}
    seeds = sorted({r.seed for rs in runs.values() for r in rs})
    return runs, seeds
