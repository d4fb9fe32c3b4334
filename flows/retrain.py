"""The retrain flow: champion -> learn task NAME -> gate -> log the run, register a challenger if it passed.

Thin: each task calls one ifd.lifecycle function on paths, names and dicts. No task retries: the one
retry layer is ifd.tracking.retry (bounded, `IFD_TRACKING_BUDGET_S`), and a tracking step that still
fails ends the flow with TrackingUnavailable; running the same retrain again resumes it. One retrain at
a time: a slot of Prefect's global concurrency limit `retrain` where the server has it (`ifd worker
deploy` creates it), across all workers, then the workspace's file lock (ifd/lifecycle/retrain_slot.py);
`wait_s` queues behind a running one. `ifd retrain NAME` runs it by hand; `ifd worker deploy` deploys it
on a work pool (and `ifd worker` serves it) with a trigger on `ifd.batch.landed` (the ingest flow).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from ifd.lifecycle import retrain
from ifd.lifecycle.retrain_slot import retrain_slot
from ifd.tracking.retry import retry_budget
from ifd.workspace import Workspace


@task(name="fetch-champion")
def champion(root: str) -> dict[str, Any]:
    return retrain.fetch_champion(Workspace.at(root))


@task(name="learn-task")
def learn(root: str, name: str, champ: dict[str, Any], lid: dict[str, Any], fresh: bool) -> dict[str, Any]:
    return retrain.learn_candidate(Workspace.at(root), name, champ, lid, fresh=fresh)


@task(name="gate")
def gate(root: str, candidate: dict[str, Any], champ: dict[str, Any], policy_file: str | None) -> dict[str, Any]:
    return retrain.gate_candidate(Workspace.at(root), candidate, champ, policy_file)


@task(name="log-and-register")
def record(root: str, candidate: dict[str, Any], champ: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    return retrain.record_candidate(Workspace.at(root), candidate, champ, report)


@flow(name="retrain", log_prints=True)
def retrain_flow(
    name: str,
    root: str = ".",
    lid: dict[str, Any] | None = None,
    policy_file: str | None = None,
    wait_s: float = 0.0,
    fresh: bool = False,
) -> dict[str, Any]:
    """Learn batch `name` on top of the champion; `lid` defaults to the workspace's params.yaml."""
    ws = Workspace.at(root)
    lid = lid if lid is not None else retrain.workspace_lid(ws)
    with retrain_slot(ws, wait_s), retry_budget():  # one budget of failing time for the whole retrain
        champ = champion(root)
        candidate = learn(root, name, champ, lid, fresh)
        report = gate(root, candidate, champ, policy_file)
        return record(root, candidate, champ, report)
