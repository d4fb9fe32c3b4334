"""The record of a running local cluster in its state folder: `cluster.json` (the supervisor's and every
service's pid with its start time, logs, URLs; 0600) and `env` (a file to `source`; 0600, it holds the
database password). `stop_recorded` is `make cluster-stop`: it asks the supervisor to stop, then stops
whatever a killed supervisor left behind, by recorded pid and start time only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.servers.postgres import Cluster
from ifd.servers.processes import is_same_process, stop_groups, stop_process

STATE_FILE = "cluster.json"
ENV_FILE = "env"


def write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def forget(state_dir: Path) -> None:
    for name in (STATE_FILE, ENV_FILE):
        (state_dir / name).unlink(missing_ok=True)


def read_state(state_dir: Path | str) -> dict[str, Any] | None:
    path = Path(state_dir) / STATE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def supervisor_alive(state: dict[str, Any]) -> bool:
    sup = state["supervisor"]
    return is_same_process(int(sup["pid"]), sup.get("started"))


def refuse_running(state_dir: Path) -> None:
    state = read_state(state_dir)
    if state is not None and supervisor_alive(state):
        raise IfdError(f"a cluster is already running from {state_dir} (supervisor pid "
                       f"{state['supervisor']['pid']}): stop it with `make cluster-stop`")


def stop_recorded(state_dir: Path | str, timeout_s: float = 120.0) -> list[str]:
    """Stop the cluster recorded in `state_dir`: ask its supervisor, then clean up what is left."""
    state_dir = Path(state_dir).resolve()
    state = read_state(state_dir)
    if state is None:
        return []
    stopped = []
    sup = state["supervisor"]
    if stop_process(int(sup["pid"]), sup.get("started"), timeout_s=timeout_s):
        stopped.append("supervisor")  # it stops its own children; what is left below was orphaned
    records = list(state["services"].items())
    took = stop_groups([(int(r["pid"]), r.get("started")) for _, r in records])
    stopped += [name for name, r in records if int(r["pid"]) in took]
    pg = state["postgres"]
    cluster = Cluster(Path(pg["dir"]), int(pg["port"]))
    if not pg["adopted"] and cluster.is_running():
        cluster.stop()
        stopped.append("postgres")
    forget(state_dir)
    return stopped


def status(state_dir: Path | str) -> dict[str, Any]:
    state = read_state(state_dir)
    if state is None:
        return {"running": False, "services": {}}
    services = {n: is_same_process(int(r["pid"]), r.get("started")) for n, r in state["services"].items()}
    running = supervisor_alive(state) and bool(state["ready"]) and all(services.values())
    return {"running": running, "ready": state["ready"], "services": services, "env": state["env"]}
