"""The retrain on a Prefect work pool, on a real `prefect server start` (tests/prefect_server.py): `ifd worker
deploy` makes the pool, the `retrain` global concurrency limit and the triggered deployment; an ingest emits
`ifd.batch.landed` with the workspace id; the automation fires; a worker process (`ifd worker start`, or the
plain `prefect worker start`) runs the retrain; a challenger appears in MLflow's registry. Two triggered
retrains never overlap: both wait on the limit, then run one after the other (task-run timestamps)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid
from prefect_server import LiveServer, live_prefect_server  # noqa: F401  (the session fixture)
from test_train_data import write_tiny_batch

from ifd.cli import main
from ifd.errors import ConfigError
from ifd.workspace import Workspace

LID = tiny_lid()
BIN = Path(sys.executable).parent
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str, logs: tuple[Path, ...] = ()) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` (and the workers' log tails)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}\n{tails}")


def cli(*args: str) -> tuple[int, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*args, "--json"])
    return code, (json.loads(buf.getvalue()) if buf.getvalue().strip() else None)


def pool_workspace(tmp_path_factory: pytest.TempPathFactory, label: str) -> tuple[Workspace, str]:
    """A copy of the lifecycle workspace (task0..2 ingested) with its own id and the tiny detector."""
    ws = fresh_workspace(tmp_path_factory, label)
    workspace_id = f"{label}-{uuid.uuid4().hex[:8]}"
    overrides = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in LID.items() if v is not None)
    ws.params_path.write_text(f"workspace_id: {workspace_id}\ningest:\n  min_size: 16\n"
                              f"train:\n  preset: paper\n  overrides:\n{overrides}")
    return ws, workspace_id


# --- without a server -------------------------------------------------------------------------------------


def test_init_writes_a_workspace_id_once_and_keeps_it(tmp_path: Path) -> None:
    from ifd.workspace_id import read_workspace_id
    from ifd.workspace_init import init_workspace

    ws = Workspace.at(tmp_path / "My Lab_ws")
    ws.root.mkdir()
    ws.params_path.write_text("# our settings\nsynth:\n  tasks: 2\n")
    init_workspace(ws)
    first = read_workspace_id(ws)
    assert first is not None and first.startswith("my-lab-ws-") and len(first) == len("my-lab-ws-") + 12
    assert ws.params_path.read_text().startswith("# our settings\nsynth:\n  tasks: 2\n")  # appended, not rewritten
    init_workspace(ws)
    assert read_workspace_id(ws) == first and ws.params_path.read_text().count("workspace_id:") == 1
    ws.params_path.write_text("workspace_id: a/b\n")
    with pytest.raises(ConfigError, match="workspace_id"):
        read_workspace_id(ws)


def test_the_trigger_matches_the_workspace_id_and_never_takes_the_root_from_an_event(tmp_path: Path) -> None:
    from ifd.lifecycle.worker import EVENT, landing_trigger

    trigger = landing_trigger("lab-1234", wait_s=30)
    assert trigger.expect == {EVENT}
    assert trigger.match.get("ifd.workspace") in ("lab-1234", ["lab-1234"])
    assert trigger.parameters == {"name": "{{ event.payload.name }}", "wait_s": 30}


def test_deploy_and_start_need_a_server_and_valid_names(tmp_path: Path, workspace: Workspace,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ifd.lifecycle.deploy import worker_argv

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert cli("worker", "deploy", "--workspace", str(workspace.root))[0] == 1
    assert cli("worker", "deploy", "--workspace", str(workspace.root), "--pool", "bad/pool")[0] == 2
    assert cli("worker", "start", "--limit", "0")[0] == 2  # refused before anything starts
    assert worker_argv("p", "w1", 2)[1:] == ["worker", "start", "--pool", "p", "--type", "process", "--name", "w1", "--limit", "2"]
    env = {"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    start = subprocess.run([str(BIN / "ifd"), "worker", "start"], env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 1 and "PREFECT_API_URL" in start.stderr  # no server named: no worker starts


# --- on a real Prefect server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workers(live_prefect_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ...]]:  # noqa: F811
    """Two workers on the default pool: `ifd worker start` and the plain `prefect worker start`."""
    logs = tmp_path_factory.mktemp("workers")
    env = live_prefect_server.env(PREFECT_WORKER_QUERY_SECONDS="1", OMP_NUM_THREADS="1")
    commands = {"ifd-worker": [str(BIN / "ifd"), "worker", "start", "--name", "ifd-worker"],
                "plain-worker": [str(BIN / "prefect"), "worker", "start", "--pool", "ifd-retrain", "--type", "process",
                                 "--name", "plain-worker"]}
    procs, paths = [], []
    for name, argv in commands.items():
        path = logs / f"{name}.log"
        with path.open("wb") as out:
            procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=logs))
        paths.append(path)
    try:
        yield tuple(paths)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def deploy(server: LiveServer, ws: Workspace) -> dict[str, Any]:
    with server.settings():
        code, out = cli("worker", "deploy", "--workspace", str(ws.root), "--wait", "600")
    assert code == 0, out
    return out


def flow_runs(server: LiveServer, deployment_id: str) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with server.settings(), get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[uuid.UUID(deployment_id)])))


def retrain_window(server: LiveServer, flow_run_id: Any) -> tuple[Any, Any]:
    """(start of its first task run, end of its last): the span a retrain holds the slot for."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with server.settings(), get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert {t.name.rsplit("-", 1)[0] for t in tasks} >= {"fetch-champion", "learn-task", "gate", "log-and-register"}
    return min(t.start_time for t in tasks), max(t.end_time for t in tasks)


def test_deploy_is_idempotent_and_makes_pool_limit_and_trigger(live_prefect_server: LiveServer,  # noqa: F811
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    from prefect import get_client

    ws, workspace_id = pool_workspace(tmp_path_factory, "deploy")
    first, again = deploy(live_prefect_server, ws), deploy(live_prefect_server, ws)
    assert again["deployment_id"] == first["deployment_id"] and not again["pool_created"]
    assert first["deployment"] == f"retrain/retrain-{workspace_id}" and first["workspace_id"] == workspace_id
    with live_prefect_server.settings(), get_client(sync_client=True) as client:
        assert client.read_work_pool("ifd-retrain").type == "process"
        limit = client.read_global_concurrency_limit_by_name("retrain")
        dep = client.read_deployment_by_name(first["deployment"])
        automations = client.read_resource_related_automations(f"prefect.deployment.{dep.id}")
    assert (limit.limit, limit.active) == (1, True)
    assert dep.work_pool_name == "ifd-retrain" and dep.entrypoint == "flows.retrain.retrain_flow"
    assert dep.parameters == {"root": str(ws.root)} and not dep.pull_steps  # workers import the installed ifd
    (automation,) = automations  # deployed twice, one trigger
    assert automation.trigger.expect == {"ifd.batch.landed"}
    assert automation.trigger.match.get("ifd.workspace") in (workspace_id, [workspace_id])


@pytest.mark.slow  # 71 s here (2 cores under load): worker subprocesses import torch/lightning/mlflow
def test_an_ingest_triggers_a_retrain_on_a_pool_worker_and_a_challenger_appears(
    live_prefect_server: LiveServer, workers: tuple[Path, ...], tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> None:
    from ifd.tracking import model_registry as reg

    ws, workspace_id = pool_workspace(tmp_path_factory, "e2e")
    out = deploy(live_prefect_server, ws)
    src = write_tiny_batch(tmp_path_factory.mktemp("late") / "late", seed=7, n_per_class=12)
    ingest = subprocess.run([str(BIN / "ifd"), "ingest", str(src), "--name", "late", "--workspace", str(ws.root), "--json"],
                            env=live_prefect_server.env(), capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr[-3000:]

    def finished() -> Any:
        runs = flow_runs(live_prefect_server, out["deployment_id"])
        return runs[0] if runs and runs[0].state.is_final() else None

    run = wait_for(finished, 300, "the triggered retrain to finish", workers)
    assert run.state.is_completed(), run.state
    assert run.parameters["name"] == "late" and run.parameters["root"] == str(ws.root)
    version = reg.version_by_alias(ws, "challenger")
    assert version is not None and version.version == "1"
    assert len(flow_runs(live_prefect_server, out["deployment_id"])) == 1  # one event, one retrain


_TAKE_SLOT = """
import sys, time
from ifd.lifecycle.retrain import RetrainBusy
from ifd.lifecycle.retrain_slot import retrain_slot
from ifd.workspace import Workspace
for wait_s in (0.0, 1.5):
    started = time.monotonic()
    try:
        with retrain_slot(Workspace.at(sys.argv[1]), wait_s):
            print("acquired", flush=True)
    except RetrainBusy as exc:
        print(f"busy {time.monotonic() - started:.1f} {exc}", flush=True)
"""


@contextlib.contextmanager
def held_retrain_slot(server: LiveServer) -> Iterator[None]:
    """Hold the one slot of `retrain` from the test process (a lease, as a running retrain holds it)."""
    from prefect import get_client

    with server.settings(), get_client(sync_client=True) as client:
        lease = client.increment_concurrency_slots_with_lease(names=["retrain"], slots=1, mode="concurrency",
                                                              lease_duration=600).json()["lease_id"]
    try:
        yield
    finally:
        with server.settings(), get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(uuid.UUID(lease))


def test_a_retrain_refuses_or_waits_while_another_holds_the_global_slot(
    live_prefect_server: LiveServer, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> None:
    ws, _ = pool_workspace(tmp_path_factory, "slot")
    deploy(live_prefect_server, ws)  # creates the `retrain` limit
    run = lambda: subprocess.run([sys.executable, "-c", _TAKE_SLOT, str(ws.root)], env=live_prefect_server.env(),  # noqa: E731
                                 capture_output=True, text=True, timeout=120)
    with held_retrain_slot(live_prefect_server):
        held = run()
    assert held.returncode == 0, held.stderr[-3000:]
    refused, waited = held.stdout.splitlines()
    assert refused.startswith("busy ") and "global concurrency limit 'retrain'" in refused
    assert waited.startswith("busy ") and float(waited.split()[1]) >= 1.4 and "after waiting 1.5 s" in waited
    free = run()
    assert free.stdout.splitlines() == ["acquired", "acquired"], free.stderr[-3000:]


_EMIT = """
import sys
from prefect.events import emit_event
for workspace_id, name in (a.split(":") for a in sys.argv[1:]):
    emit_event(event="ifd.batch.landed", resource={"prefect.resource.id": f"ifd.batch.{name}", "ifd.workspace": workspace_id},
               payload={"name": name, "workspace": workspace_id})
"""


@pytest.mark.slow  # 73 s here (2 cores under load): worker subprocesses import torch/lightning/mlflow
def test_two_triggered_retrains_never_run_at_once(
    live_prefect_server: LiveServer, workers: tuple[Path, ...], tmp_path_factory: pytest.TempPathFactory  # noqa: F811
) -> None:
    from ifd.tracking import model_registry as reg

    ws, workspace_id = pool_workspace(tmp_path_factory, "twice")
    out = deploy(live_prefect_server, ws)
    with held_retrain_slot(live_prefect_server):  # the test holds the slot first: both runs must wait
        emitted = subprocess.run([sys.executable, "-c", _EMIT, f"{workspace_id}:task0", f"{workspace_id}:task1",
                                  "another-workspace:task2"], env=live_prefect_server.env(), capture_output=True,
                                 text=True, timeout=120)
        assert emitted.returncode == 0, emitted.stderr[-3000:]

        def both_running() -> list[Any] | None:
            runs = flow_runs(live_prefect_server, out["deployment_id"])
            return runs if len(runs) == 2 and all(r.state.is_running() for r in runs) else None

        waiting = wait_for(both_running, 240, "both retrains to be running (waiting on the limit)", workers)
    released = time.time()
    for run in waiting:
        assert run.start_time.timestamp() < released

    def both_final() -> list[Any] | None:
        runs = flow_runs(live_prefect_server, out["deployment_id"])
        return runs if len(runs) == 2 and all(r.state.is_final() for r in runs) else None

    runs = wait_for(both_final, 300, "both retrains to finish", workers)
    assert all(r.state.is_completed() for r in runs), [r.state for r in runs]
    assert sorted(r.parameters["name"] for r in runs) == ["task0", "task1"]  # not another workspace's task2
    first, second = sorted(retrain_window(live_prefect_server, r.id) for r in runs)
    assert first[0].timestamp() >= released - 1.0  # neither retrain started its work while the test held the slot
    assert first[1] <= second[0], f"retrains overlapped: {first} and {second}"
    assert sorted(v.version for v in reg.list_versions(ws)) == ["1", "2"]
