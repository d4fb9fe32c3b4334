"""One retry layer with a bounded total time: a real `mlflow server` is stopped (SIGSTOP: hung) and then
SIGKILLed, and `ifd approve` and `ifd retrain` fail with exit 5 and a one-line reason within
IFD_TRACKING_BUDGET_S (MLflow's own HTTP retries, 7 with backoff by default, would take minutes),
leaving nothing half-made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid
from mlflow_server import mlflow_server

from ifd.lifecycle import retrain as rt
from ifd.tracking import retry
from ifd.tracking.identity import authenticated_user
from ifd.workspace import Workspace

BUDGET_S = 6.0
START_S = 25.0  # a fresh interpreter importing ifd, mlflow (and prefect) on a busy 2-core machine


def _ifd(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).with_name("ifd")), *args], capture_output=True, text=True, env=env, timeout=600)
    return proc, time.monotonic() - started


def _assert_clean_failure(proc: subprocess.CompletedProcess[str], took: float, bound: float, prefect: bool = False) -> None:
    assert proc.returncode == 5, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ifd: error: the tracking server did not answer"), proc.stderr[-3000:]
    if not prefect:  # Prefect logs the failed task's traceback for its UI; the command's own reason is the last line
        assert "Traceback" not in proc.stderr
    assert took < bound, f"took {took:.1f} s, bound {bound:.1f} s"


def test_defaults_bound_a_clean_failure_under_two_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("IFD_TRACKING_ATTEMPTS", "IFD_TRACKING_BACKOFF_S", "IFD_TRACKING_BUDGET_S", "IFD_TRACKING_TIMEOUT_S"):
        monkeypatch.delenv(key, raising=False)
    pol = retry.policy_from_env()
    assert pol.budget_s < 120 and pol.timeout_s <= pol.budget_s
    from ifd.tracking.store import one_retry_layer

    one_retry_layer()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_a_shared_budget_stops_retrying_across_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IFD_TRACKING_TIMEOUT_S", "1")
    calls: list[float] = []

    def down() -> None:
        calls.append(time.monotonic())
        raise ConnectionError("Connection refused")

    started = time.monotonic()
    with retry.retry_budget(3.0):
        with pytest.raises(retry.TrackingUnavailable):
            retry.with_retries(down, "first", attempts=10, backoff_s=0.5)
        with pytest.raises(retry.TrackingUnavailable):
            retry.with_retries(down, "second", attempts=10, backoff_s=0.5)
    assert time.monotonic() - started < 3.0
    assert len(calls) >= 3  # it did retry, then the shared budget ended both


@pytest.mark.slow
def test_killed_tracking_server_fails_cleanly_within_the_budget(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    ws: Workspace = fresh_workspace(tmp_path_factory, "budget")
    lid = tiny_lid()
    with mlflow_server(tmp_path / "server") as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        first = rt.run_retrain(ws, "task0", lid, progress=lambda _: None)
        assert first["version"] == "1" and first["tracking_uri"] == server.url
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "eve")  # a server without the auth app: no identity to trust
        assert authenticated_user(ws) is None
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        champion = rt.fetch_champion(ws, lambda _: None)
        candidate = rt.learn_candidate(ws, "task1", champion, lid, lambda _: None)
        env = {**os.environ, "IFD_TRACKING_BUDGET_S": str(BUDGET_S), "IFD_TRACKING_TIMEOUT_S": "2", "IFD_TRACKING_BACKOFF_S": "0.5"}
        approve = ("approve", "1", "--reviewer", "erin", "--note", "ok", "--workspace", str(ws.root))

        os.killpg(server.proc.pid, signal.SIGSTOP)  # a hung server: connections are accepted, never answered
        proc, took = _ifd(*approve, env=env)
        _assert_clean_failure(proc, took, BUDGET_S + START_S)
        server.kill()  # a dead one: connections are refused
        proc, took = _ifd(*approve, env=env)
        _assert_clean_failure(proc, took, BUDGET_S + START_S)

        overrides = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in lid.items() if v is not None)
        (ws.root / "params.yaml").write_text("train:\n  preset: paper\n  overrides:\n" + overrides)
        env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        proc, took = _ifd("retrain", "task1", "--workspace", str(ws.root), env=env)
        _assert_clean_failure(proc, took, BUDGET_S + START_S + 20, prefect=True)  # + Prefect's flow start

        job = Path(candidate["job"])
        assert not (job / rt.RESULT_FILE).exists() and not (job / rt.RUN_ID_FILE).exists()
