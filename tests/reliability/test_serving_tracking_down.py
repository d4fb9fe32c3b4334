"""Serving survives its tracking server: a real `mlflow server` on a free loopback port holds the registry
(the champion was registered and approved through it, its artifacts are served by it), `ifd serve` polls
it in the background; then the tracking server is SIGKILLed (its whole process group).

- /v1/score keeps answering with the last champion, fast (no request waits for the registry);
- /healthz turns `stale` (still 200: the API answers) with the registry unreachable and the error named;
  /metrics says `ifd_registry_up 0` and `ifd_model_stale 1`;
- an `ifd serve` started while the tracking server is down serves the last champion from its local copy;
- when the tracking server is back, /healthz is `ok` again without a restart;
- a hung tracking server (SIGSTOP: connections accepted, never answered) holds up no request either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid
from serving_helpers import QUIET, free_port, png_bytes, serve, stop, wait_until_up

from ifd.workspace import Workspace

pytestmark = pytest.mark.slow  # two tracking-server starts, a retrain, two API starts (~1 min on 2 cores)
STALE_AFTER_S = 3.0


def start_tracking(ws: Workspace, port: int, log: Path) -> subprocess.Popen:
    """`mlflow server` on the workspace's SQLite store, serving artifacts, in a process group of its own."""
    artifacts = ws.state_dir / "served-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", f"sqlite:///{ws.state_dir / 'mlflow.db'}",
         "--serve-artifacts", "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,  # noqa: SIM115
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not come up: {log.read_text()[-2000:]}")


def kill_tracking(proc: subprocess.Popen) -> None:
    """SIGKILL the tracking server and its workers (no shutdown, no goodbye)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve

    ws = fresh_workspace(tmp_path_factory, "tracking-down")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
           "IFD_TRACKING_ATTEMPTS": "1", "IFD_TRACKING_BACKOFF_S": "0"}
    tracking_log = ws.root / "mlflow-server.log"
    servers: list[subprocess.Popen] = []
    # the tests replace "tracking" when they restart the server: the teardown kills whichever runs last
    state: dict[str, Any] = {"ws": ws, "env": env, "tracking": start_tracking(ws, port, tracking_log),
                             "tracking_port": port, "tracking_log": tracking_log, "servers": servers}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            rt.run_retrain(ws, "task0", tiny_lid(), progress=QUIET)  # version 1, registered through the server
            approve(ws, "1", "alice", "first")
            yield state
        finally:
            for proc in servers:
                stop(proc)
            kill_tracking(state["tracking"])


def start_api(setup: dict[str, Any], name: str) -> str:
    port, log = free_port(), setup["ws"].root / f"serve-{name}.log"
    proc = serve(setup["ws"], port, "--poll", "1", "--stale-after", str(STALE_AFTER_S), env=setup["env"], log=log)
    setup["servers"].append(proc)
    wait_until_up(port, proc, log=log)
    return f"http://127.0.0.1:{port}"


def score(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/score", files=[("files", ("a.png", png_bytes(seed=1), "image/png"))], timeout=30)


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_api_keeps_answering_with_the_last_champion_while_the_tracking_server_is_down(setup: dict[str, Any]) -> None:
    url = start_api(setup, "first")
    r = score(url)
    assert r.status_code == 200 and r.json()["model_version"] == "1"
    health = httpx.get(f"{url}/healthz", timeout=30).json()
    assert health["status"] == "ok" and health["registry"]["reachable"] and health["champion"] == "1"
    assert metric(url, "ifd_registry_up") == 1.0

    kill_tracking(setup["tracking"])
    deadline = time.time() + STALE_AFTER_S + 4
    latencies = []
    while time.time() < deadline:
        t0 = time.perf_counter()
        r = score(url)
        latencies.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == "1"
        time.sleep(0.2)
    assert max(latencies) < 5.0, f"a request waited {max(latencies):.1f} s: the registry is on the request path"

    health = httpx.get(f"{url}/healthz", timeout=30)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "stale" and body["champion"] == "1"
    assert body["registry"]["reachable"] is False and body["registry"]["error"]
    assert body["registry"]["seconds_since_ok"] > STALE_AFTER_S
    assert metric(url, "ifd_registry_up") == 0.0 and metric(url, "ifd_model_stale") == 1.0
    assert metric(url, "ifd_registry_check_failures_total") >= 1
    setup["first_url"] = url


def test_a_server_started_while_the_tracking_server_is_down_serves_the_last_champion(setup: dict[str, Any]) -> None:
    if "first_url" not in setup:
        pytest.skip("needs the previous test's state (tracking server killed)")
    url = start_api(setup, "restarted")
    r = score(url)
    assert r.status_code == 200 and r.json()["model_version"] == "1"
    body = httpx.get(f"{url}/healthz", timeout=30).json()
    assert body["status"] == "stale" and body["champion_from_local_copy"] is True


def test_when_the_tracking_server_is_back_health_is_ok_without_a_restart(setup: dict[str, Any]) -> None:
    if "first_url" not in setup:
        pytest.skip("needs the previous test's state (tracking server killed)")
    setup["tracking"] = start_tracking(setup["ws"], setup["tracking_port"], setup["tracking_log"])
    url = setup["first_url"]
    deadline = time.time() + 60
    while time.time() < deadline:
        body = httpx.get(f"{url}/healthz", timeout=30).json()
        if body["status"] == "ok":
            break
        time.sleep(0.5)
    assert body["status"] == "ok" and body["registry"]["reachable"] and body["champion"] == "1"
    assert metric(url, "ifd_registry_up") == 1.0 and metric(url, "ifd_model_stale") == 0.0
    assert score(url).json()["model_version"] == "1"


def test_a_hung_tracking_server_does_not_hold_up_requests(setup: dict[str, Any]) -> None:
    """SIGSTOP: the port still accepts connections but nothing answers (the worst case for a client)."""
    if "first_url" not in setup:
        pytest.skip("needs the previous tests' state")
    url, tracking = setup["first_url"], setup["tracking"]
    os.killpg(tracking.pid, signal.SIGSTOP)
    try:
        deadline = time.time() + STALE_AFTER_S + 6  # past MLFLOW_HTTP_REQUEST_TIMEOUT (5 s) and the staleness limit
        latencies = []
        while time.time() < deadline:
            t0 = time.perf_counter()
            r = score(url)
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["model_version"] == "1"
            time.sleep(0.2)
        assert max(latencies) < 5.0, f"a request waited {max(latencies):.1f} s on a hung tracking server"
        assert httpx.get(f"{url}/healthz", timeout=30).json()["status"] == "stale"
    finally:
        os.killpg(tracking.pid, signal.SIGCONT)
    deadline = time.time() + 60
    while time.time() < deadline and httpx.get(f"{url}/healthz", timeout=30).json()["status"] != "ok":
        time.sleep(0.5)
    assert httpx.get(f"{url}/healthz", timeout=30).json()["status"] == "ok"
