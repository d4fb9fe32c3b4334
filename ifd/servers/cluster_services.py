"""What the local cluster runs, as commands: the stage-1 servers (MLflow and Prefect on Postgres, the Dask
scheduler) and the stage-2 processes that need them (Prefect workers on the retrain pool, Dask workers,
`ifd serve` replicas), each with its environment and health probe; and the environment a client of the
cluster gets (`<state>/env`)."""

from __future__ import annotations

import sys
from pathlib import Path

from ifd.lifecycle.deploy import worker_argv
from ifd.servers.cluster_config import HOST, ClusterConfig
from ifd.servers.postgres import Cluster
from ifd.servers.processes import (
    Service,
    dask_worker_joined,
    http_answers,
    prefect_worker_online,
    tcp_accepts,
)

BIN = Path(sys.executable).parent


def postgres_of(cfg: ClusterConfig) -> Cluster:
    return Cluster(cfg.postgres_dir, cfg.postgres_port, durable=cfg.postgres_durable)


def client_env(cfg: ClusterConfig, pg: Cluster) -> dict[str, str]:
    """What a client of the cluster needs in its environment (also written to `<state>/env`)."""
    return {
        "MLFLOW_TRACKING_URI": cfg.mlflow_url,
        "PREFECT_API_URL": cfg.prefect_api_url,
        "IFD_PREDICTION_LOG_URL": pg.url("predictions"),
        "IFD_DASK_SCHEDULER": cfg.dask_scheduler,
        "IFD_SERVE_URLS": ",".join(cfg.serve_urls),
        "IFD_WORKSPACE": str(cfg.workspace),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _project_root() -> Path:
    """The folder holding the `flows` package: where a process worker runs the retrain flow's entrypoint."""
    import flows

    return Path(flows.__file__).resolve().parent.parent


def servers(cfg: ClusterConfig, pg: Cluster) -> list[Service]:
    """Stage 1: the tracking server, the Prefect server and the Dask scheduler (all on their own)."""
    prefect_home = str(cfg.state_dir / "prefect-home")
    mlflow = Service(
        "mlflow",
        [str(BIN / "mlflow"), "server", "--serve-artifacts", "--artifacts-destination",
         str(cfg.state_dir / "mlartifacts"), "--host", HOST, "--port", str(cfg.mlflow_port),
         "--workers", str(cfg.mlflow_workers)],
        # The URL in the environment: the password stays out of `ps`. No MLflow job runner (huey consumers for
        # GenAI jobs on a SQL store): ifd runs none, and they outlast SIGTERM by more than 20 s.
        {"MLFLOW_BACKEND_STORE_URI": pg.url("mlflow"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        http_answers(f"{cfg.mlflow_url}/health"), cfg.mlflow_url)
    prefect = Service(
        "prefect-server",
        [str(BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(cfg.prefect_port)],
        {"PREFECT_HOME": prefect_home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
         "PREFECT_API_DATABASE_CONNECTION_URL": pg.url("prefect", driver="asyncpg")},
        http_answers(f"{cfg.prefect_api_url}/health"), cfg.prefect_api_url)
    dask = Service(
        "dask-scheduler",
        [str(BIN / "dask"), "scheduler", "--host", HOST, "--port", str(cfg.dask_port), "--no-dashboard"],
        {}, tcp_accepts(HOST, cfg.dask_port), cfg.dask_scheduler)
    return [mlflow, prefect, dask]


def workers(cfg: ClusterConfig, pg: Cluster) -> list[Service]:
    """Stage 2: Prefect workers on the pool, Dask workers, serve replicas (each needs a stage-1 server)."""
    env = {**client_env(cfg, pg), "PREFECT_HOME": str(cfg.state_dir / "prefect-home")}
    out = []
    for i in range(1, cfg.prefect_workers + 1):
        name = f"prefect-worker-{i}"
        out.append(Service(name, worker_argv(cfg.work_pool, name, limit=1),
                           {**env, "PREFECT_WORKER_QUERY_SECONDS": str(cfg.worker_poll_s)},
                           prefect_worker_online(cfg.prefect_api_url, cfg.work_pool, name), cwd=_project_root()))
    for i in range(1, cfg.dask_workers + 1):
        name = f"dask-worker-{i}"
        out.append(Service(
            name,
            [str(BIN / "dask"), "worker", cfg.dask_scheduler, "--name", name, "--host", HOST,
             "--nthreads", "1", "--no-dashboard", "--local-directory", str(cfg.state_dir / "dask")],
            {**env, "OMP_NUM_THREADS": "1"}, dask_worker_joined(cfg.dask_scheduler, name), cwd=_project_root()))
    for i, (port, url) in enumerate(zip(cfg.serve_ports, cfg.serve_urls, strict=True), start=1):
        out.append(Service(
            f"serve-{i}",
            [sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(cfg.workspace), "--host", HOST,
             "--port", str(port), "--poll", str(cfg.serve_poll_s)],
            {**env, "OMP_NUM_THREADS": "1"},
            http_answers(f"{url}/healthz", accept=(200, 503)), url))  # 503: up, no champion approved yet
    return out
