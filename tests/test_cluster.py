"""`make cluster` and `make demo-cluster` as they run, at tiny size: the project's own supervisor
(`python -m ifd.servers.cluster up`) starts Postgres, MLflow and Prefect on it, 2 Prefect workers on the
retrain pool, a Dask scheduler with 2 workers and 2 `ifd serve` replicas on free loopback ports in a temp
folder; `python -m ifd.demo_cluster` runs the loop on it; `python -m ifd.servers.cluster stop` (what
`make cluster-stop` runs) takes it all down. Plus the supervisor's own mechanics, in seconds, without servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lifecycle_helpers import PERMISSIVE
from pg_cluster import free_port

from ifd.errors import ConfigError, IfdError
from ifd.servers import cluster as cl
from ifd.servers.cluster_config import ClusterConfig, check_ports_free
from ifd.servers.postgres import Cluster, binaries_available
from ifd.servers.processes import is_same_process, process_start_time, stop_groups

TINY_PARAMS = """\
synth: {tasks: 2, per_class: 8, size: 32, seed: 0}
ingest: {min_size: 16}
train:
  preset: paper
  overrides: {backbone: ifd_cnn_tiny, img_size: 16, epochs: 1, batch_size: 8, step_size: 1,
              replay_per_class_per_task: 2, budget_per_task: 8, seed: 3}
"""
IMAGES = 3


# ---- mechanics, no servers -----------------------------------------------------------------------
def test_cluster_config_refuses_shared_ports_and_bad_counts() -> None:
    with pytest.raises(ConfigError, match=r"used twice: \[5000\]"):
        cl.config_from_args(cl._parser().parse_args(["up", "--serve-ports", "5000,8002"]))
    with pytest.raises(ConfigError, match="prefect_workers"):
        cl.config_from_args(cl._parser().parse_args(["up", "--prefect-workers", "-1"]))
    with pytest.raises(ConfigError, match="work_pool"):
        cl.config_from_args(cl._parser().parse_args(["up", "--work-pool", "a pool"]))


def test_a_taken_port_is_named_with_the_flag_that_moves_it() -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cfg = ClusterConfig(mlflow_port=free_port(), prefect_port=free_port(), dask_port=port,
                            serve_ports=(free_port(),))
        with pytest.raises(ConfigError, match=rf"port {port} for dask-scheduler is in use.*--dask-port"):
            check_ports_free(cfg)


def test_stop_takes_the_whole_process_group_and_never_a_reused_pid() -> None:
    leader = subprocess.Popen(["bash", "-c", "sleep 300 & trap '' TERM; sleep 300; wait"], start_new_session=True)
    time.sleep(0.5)
    started = process_start_time(leader.pid)
    assert stop_groups([(leader.pid, (started or 0) - 60)]) == {}  # another start time: not ours, untouched
    assert is_same_process(leader.pid, started)
    assert stop_groups([(leader.pid, started)], timeout_s=2) == {leader.pid: None}  # it ignored SIGTERM: SIGKILL
    leader.wait(timeout=10)
    deadline = time.monotonic() + 5
    with pytest.raises(ProcessLookupError):  # the backgrounded `sleep` child went with its group
        while time.monotonic() < deadline:
            os.killpg(leader.pid, 0)
            time.sleep(0.1)


def test_up_refuses_a_second_cluster_on_the_same_state_dir_and_leaves_the_first_alone(tmp_path: Path) -> None:
    state = {"supervisor": {"pid": os.getpid(), "started": process_start_time(os.getpid())}}  # alive: this process
    (tmp_path / cl.STATE_FILE).write_text(json.dumps(state))
    (tmp_path / cl.ENV_FILE).write_text("export IFD_WORKSPACE=/elsewhere\n")
    cfg = ClusterConfig(state_dir=tmp_path, workspace=tmp_path / "ws", mlflow_port=free_port(),
                        prefect_port=free_port(), dask_port=free_port(), serve_ports=(free_port(),))
    with pytest.raises(IfdError, match="already running.*make cluster-stop"):
        cl.Supervisor(cfg, say=lambda _: None).up()
    assert (tmp_path / cl.STATE_FILE).is_file() and (tmp_path / cl.ENV_FILE).is_file()  # the running one's files
    assert not (tmp_path / "ws").exists()


def test_cluster_stop_cleans_up_after_a_killed_supervisor(tmp_path: Path) -> None:
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)  # a service whose supervisor died
    dead = subprocess.Popen(["true"])
    dead.wait()
    state = {"supervisor": {"pid": dead.pid, "started": 0.0}, "ready": True, "env": {},
             "postgres": {"dir": str(tmp_path / "pg"), "port": free_port(), "adopted": True},
             "services": {"serve-1": {"pid": orphan.pid, "started": process_start_time(orphan.pid)}}}
    (tmp_path / cl.STATE_FILE).write_text(json.dumps(state))
    assert cl.status(tmp_path)["running"] is False
    assert cl.stop_recorded(tmp_path) == ["serve-1"]
    orphan.wait(timeout=10)  # already reaped by stop_recorded (it is our child here)
    with pytest.raises(ProcessLookupError):
        os.killpg(orphan.pid, 0)
    assert not (tmp_path / cl.STATE_FILE).exists()


def test_demo_cluster_without_a_cluster_says_how_to_start_one(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "ifd.demo_cluster", "--state-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "start one with `make cluster`" in out.stderr


# ---- the cluster itself ----------------------------------------------------------------------------
@pytest.fixture
def cluster_root() -> Iterator[Path]:
    """A folder under /tmp the `postgres` user can traverse (pytest's own tmp is root's, 0700)."""
    if not binaries_available():
        pytest.skip("PostgreSQL binaries absent: apt-get install -y postgresql (15)")
    root = Path(tempfile.mkdtemp(prefix="ifd-cluster-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _query(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as con:
        return con.execute(sql).fetchall()


def _wait_ready(state_dir: Path, sup: subprocess.Popen[bytes], log: Path, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert sup.poll() is None, log.read_text()[-3000:]
        if cl.status(state_dir)["running"]:
            return cl.read_state(state_dir) or {}
        time.sleep(1)
    raise AssertionError(f"the cluster was not ready in {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.mark.cluster
@pytest.mark.slow  # ~2-3 minutes: in `make test` (CI), not in `make test-fast`
def test_make_cluster_runs_the_demo_loop_on_its_own_servers(cluster_root: Path) -> None:
    ws, state_dir = cluster_root / "ws", cluster_root / "state"
    (ws / "registry").mkdir(parents=True)
    (ws / "params.yaml").write_text(TINY_PARAMS)
    (ws / "registry" / "gate.yaml").write_text(PERMISSIVE)
    ports = [free_port() for _ in range(6)]
    argv = [sys.executable, "-m", "ifd.servers.cluster", "up", "--state-dir", str(state_dir), "--workspace", str(ws),
            "--postgres-dir", str(cluster_root / "pg"), "--no-fsync", "--postgres-port", str(ports[0]),
            "--mlflow-port", str(ports[1]), "--mlflow-workers", "1", "--prefect-port", str(ports[2]),
            "--dask-port", str(ports[3]), "--serve-ports", f"{ports[4]},{ports[5]}", "--serve-poll", "1", "--worker-poll", "1"]
    log = cluster_root / "supervisor.log"
    with log.open("w") as out:
        sup = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    try:
        state = _wait_ready(state_dir, sup, log, timeout_s=300)
        t_ready = time.monotonic()
        env = state["env"]
        env_file = state_dir / cl.ENV_FILE
        assert env_file.stat().st_mode & 0o777 == 0o600  # it holds the database password
        assert f"export IFD_DASK_SCHEDULER=tcp://127.0.0.1:{ports[3]}\n" in env_file.read_text()
        assert f"IFD_DASK_SCHEDULER=tcp://127.0.0.1:{ports[3]}" in log.read_text()  # printed for `--cluster`

        from distributed import Client

        with Client(env["IFD_DASK_SCHEDULER"], timeout=30, set_as_default=False) as dask:
            assert sorted(w["name"] for w in dask.scheduler_info()["workers"].values()) == ["dask-worker-1", "dask-worker-2"]

        demo = subprocess.run([sys.executable, "-m", "ifd.demo_cluster", "--state-dir", str(state_dir),
                               "--images", str(IMAGES), "--timeout", "300", "--json"],
                              capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stderr[-4000:]
        summary = json.loads(demo.stdout)
        steps = summary["steps"]
        t_demo = time.monotonic()
        assert [s["approved"] for s in steps] == [True, True]
        assert all(s["via"] == "pool ifd-retrain" for s in steps)  # each retrain ran on a pool worker
        assert {s["worker"] for s in steps} <= {"prefect-worker-1", "prefect-worker-2"}

        mlflow_db, log_db = Cluster(cluster_root / "pg", ports[0]).url("mlflow"), env["IFD_PREDICTION_LOG_URL"]
        aliases = dict(_query(mlflow_db, "SELECT alias, version FROM registered_model_aliases "
                                         "WHERE name = 'ifd-detector'"))
        assert aliases["champion"] == int(steps[-1]["version"])  # the registry lives in MLflow on Postgres

        replicas = summary["replicas"]
        assert sorted(replicas) == sorted(env["IFD_SERVE_URLS"].split(",")) and len(replicas) == 2
        assert all(r["images"] == IMAGES * len(steps) for r in replicas.values())  # both replicas answered
        ids = [rid for r in replicas.values() for rid in r["request_ids"]]
        rows = dict(_query(log_db, "SELECT request_id, count(*) FROM predictions WHERE role = 'champion' "
                                   "GROUP BY request_id"))
        assert {rid: rows.get(rid) for rid in ids} == dict.fromkeys(ids, IMAGES)  # every answer in the one log
        per_champion = IMAGES * len(replicas)  # what both replicas scored with the final champion
        assert summary["monitor"]["version"] == steps[-1]["version"]
        assert summary["monitor"]["window"] == per_champion  # `ifd monitor`'s flow read the shared log
    finally:
        stop = subprocess.run([sys.executable, "-m", "ifd.servers.cluster", "stop", "--state-dir", str(state_dir)],
                              capture_output=True, text=True, timeout=180)
        try:
            sup.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()
    print(f"\ncluster ready {t_ready - t0:.0f} s, demo {t_demo - t_ready:.0f} s "
          f"(steps {[s['wall_s'] for s in steps]}), stop {time.monotonic() - t_demo:.0f} s")
    assert stop.returncode == 0, stop.stderr
    assert sup.returncode == 0, log.read_text()[-3000:]
    text = log.read_text()
    stopped = [ln for ln in text.splitlines() if ln.startswith("[cluster] stopped ")]
    assert [ln.count(" s)") for ln in stopped[:2]] == [6, 3], stopped  # every service ended on SIGTERM, none killed
    assert "stopped PostgreSQL" in text and not Cluster(cluster_root / "pg", ports[0]).is_running()
    assert not (state_dir / cl.STATE_FILE).exists() and not (state_dir / cl.ENV_FILE).exists()
