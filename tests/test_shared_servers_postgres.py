"""`make mlflow-pg` and `make prefect-pg` as they run: the real MLflow tracking server and the real Prefect
server on a real PostgreSQL cluster, each used by a client in another process; and two `ifd serve`
replicas writing one prediction log in the cluster that the monitor then reads. Slow: each server
migrates its schema on first start (MLflow ~30 s here), the replicas need a trained champion."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pg_cluster import free_port, started_cluster

from ifd.servers.postgres import Cluster

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

MLFLOW_CLIENT = """
import os, sys, tempfile, mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("shared")
with mlflow.start_run() as run:
    mlflow.log_metric("auc", 0.875)
    path = os.path.join(tempfile.mkdtemp(), "note.txt")
    open(path, "w").write("proxied")
    mlflow.log_artifact(path)
print(run.info.run_id, run.info.artifact_uri)
"""

PREFECT_CLIENT = """
from prefect import flow, task
@task
def add(a, b):
    return a + b
@flow(name="shared-pg")
def total():
    return add(1, 2)
print(total())
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with started_cluster() as c:
        yield c


@contextmanager
def _server(cmd: list[str], health: str, env: dict[str, str], log: Path, timeout_s: float = 240) -> Iterator[None]:
    """Start `cmd`, wait until `health` answers, stop its whole process group at the end."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group: the workers stop with it
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(health, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"{health} not up: {log.read_text()[-2000:]}"
                time.sleep(0.5)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _query(cluster: Cluster, db: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(cluster.url(db).replace("+psycopg", "")) as con:
        return con.execute(sql).fetchall()


def test_mlflow_server_on_postgres_proxies_artifacts(cluster: Cluster, tmp_path: Path) -> None:
    port, artifacts = free_port(), tmp_path / "mlartifacts"
    cmd = [str(BIN / "mlflow"), "server", "--serve-artifacts", "--artifacts-destination", str(artifacts),
           "--host", "127.0.0.1", "--port", str(port)]
    env = {"MLFLOW_BACKEND_STORE_URI": cluster.url("mlflow")}  # as make mlflow-pg: the password stays out of ps
    with _server(cmd, f"http://127.0.0.1:{port}/health", env, tmp_path / "mlflow.log"):
        out = subprocess.run([sys.executable, "-c", MLFLOW_CLIENT, f"http://127.0.0.1:{port}"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    run_id, artifact_uri = out.stdout.split()[-2:]
    assert artifact_uri.startswith("mlflow-artifacts:")  # the client never writes the store itself
    assert (artifacts / "1" / run_id / "artifacts" / "note.txt").read_text() == "proxied"
    assert _query(cluster, "mlflow", f"SELECT key, value FROM metrics WHERE run_uuid = '{run_id}'") == [("auc", 0.875)]


def test_prefect_server_on_postgres_records_flow_runs(cluster: Cluster, tmp_path: Path) -> None:
    port = free_port()
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": cluster.url("prefect", driver="asyncpg")}
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with _server(cmd, f"http://127.0.0.1:{port}/api/health", env, tmp_path / "prefect.log"):
        client_env = {**os.environ, "PREFECT_HOME": env["PREFECT_HOME"], "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        out = subprocess.run([sys.executable, "-c", PREFECT_CLIENT], cwd=tmp_path, env=client_env,
                             capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "3"
    rows = _query(cluster, "prefect", "SELECT s.type FROM flow_run r JOIN flow f ON f.id = r.flow_id "
                                      "JOIN flow_run_state s ON s.id = r.state_id WHERE f.name = 'shared-pg'")
    assert rows == [("COMPLETED",)]


def test_two_serve_replicas_write_one_log_that_the_monitor_reads(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    from lifecycle_helpers import fresh_workspace, tiny_lid

    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve
    from ifd.monitoring.service import monitor_champion

    ws = fresh_workspace(tmp_path_factory, "replicas")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=lambda _: None)
    approve(ws, "1", "alice", "replicas")
    env = {"OMP_NUM_THREADS": "1", "IFD_PREDICTION_LOG_URL": cluster.url("predictions")}
    images = sorted(ws.batch_dir("task0").glob("img/*.png"))[:3]
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        for i, port in enumerate(ports):
            cmd = [sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws.root), "--port", str(port),
                   "--poll", "5", "--no-shadow"]
            stack.enter_context(_server(cmd, f"http://127.0.0.1:{port}/healthz", env, ws.root / f"serve{i}.log"))
        for port in ports:
            for path in images:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/score", timeout=60,
                               files=[("files", (path.name, path.read_bytes(), "image/png"))])
                assert r.status_code == 200, r.text
    assert not (ws.state_dir / "monitoring" / "predictions.db").exists()  # nothing went to the SQLite default
    monkeypatch.setenv("IFD_PREDICTION_LOG_URL", cluster.url("predictions"))
    report = monitor_champion(str(ws.root), holdout=False)
    assert report["values"]["window"] == 2 * len(images)
