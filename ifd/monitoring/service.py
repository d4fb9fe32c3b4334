"""Entry point of a monitor run for the CLI and the flow: find the champion, load its state and tasks,
run the checks (ifd/monitoring/run.py), return a JSON-ready report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace


def monitor_champion(root: str, policy_path: str | None = None, holdout: bool = True) -> dict[str, Any]:
    from ifd.data.tasks import tasks_from_dirs
    from ifd.monitoring.run import run_monitor
    from ifd.tracking import model_registry as reg
    from ifd.train.state import IncrementalState
    from monitoring.policy import load_policy

    ws = Workspace.at(root).require()
    policy = load_policy(ws.root, Path(policy_path) if policy_path else None)
    info = reg.version_by_alias(ws, reg.CHAMPION)
    if info is None:
        raise IfdError("no champion to monitor yet: approve a version with `ifd approve VERSION`")
    state = IncrementalState.load(reg.download_state(ws, info.version))
    missing = [n for n in state.task_names if not (ws.batch_dir(n) / "manifest.csv").is_file()]
    if missing:
        raise IfdError(f"the champion learned {missing}, which are not in {ws.batches_dir}; check out the data version it was trained on")
    tasks = tasks_from_dirs([ws.batch_dir(n) for n in state.task_names])
    return run_monitor(ws, policy, info.version, state, tasks, check_holdout=holdout).to_dict()
