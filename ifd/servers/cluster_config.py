"""What `make cluster` starts, as typed config: the state folder, the workspace the services act on, every
loopback port, how many Prefect and Dask workers, and the serve replicas (one port each).

Defaults are the documented ones (Postgres 5433, MLflow 5000, Prefect 4200, Dask 8786, serve 8001/8002);
a test passes free ports and temporary folders so it never meets a developer's running cluster.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ifd.errors import ConfigError
from ifd.lifecycle.deploy import DEFAULT_POOL, PREFECT_NAME

HOST = "127.0.0.1"


class ClusterConfig(BaseModel):
    """One local cluster; every path is resolved, every port distinct."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Path(".ifd/cluster")
    workspace: Path = Path(".ifd/cluster/workspace")
    postgres_dir: Path = Path(".ifd/postgres")
    postgres_port: int = Field(5433, ge=1, le=65535)
    postgres_durable: bool = True  # False: no fsync (tests); a crash may lose the cluster
    mlflow_port: int = Field(5000, ge=1, le=65535)
    mlflow_workers: int = Field(2, ge=1, le=16)
    prefect_port: int = Field(4200, ge=1, le=65535)
    prefect_workers: int = Field(2, ge=0, le=16)
    worker_poll_s: float = Field(5.0, gt=0)  # how often a Prefect worker asks for flow runs (Prefect's own: 10)
    work_pool: str = Field(DEFAULT_POOL, pattern=PREFECT_NAME)
    dask_port: int = Field(8786, ge=1, le=65535)
    dask_workers: int = Field(2, ge=0, le=16)
    serve_ports: tuple[int, ...] = (8001, 8002)
    serve_poll_s: float = Field(5.0, gt=0)
    start_timeout_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _distinct_ports(self) -> ClusterConfig:
        ports = [self.postgres_port, self.mlflow_port, self.prefect_port, self.dask_port, *self.serve_ports]
        if any(not 1 <= p <= 65535 for p in self.serve_ports):
            raise ValueError(f"serve ports must be in 1..65535, got {list(self.serve_ports)}")
        dupes = sorted({p for p in ports if ports.count(p) > 1})
        if dupes:
            raise ValueError(f"each service needs its own port; used twice: {dupes}")
        return self

    def resolved(self) -> ClusterConfig:
        return self.model_copy(update={k: Path(getattr(self, k)).resolve()
                                       for k in ("state_dir", "workspace", "postgres_dir")})

    # ---- addresses -------------------------------------------------------------------------------
    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://{HOST}:{self.prefect_port}/api"

    @property
    def dask_scheduler(self) -> str:
        return f"tcp://{HOST}:{self.dask_port}"

    @property
    def serve_urls(self) -> list[str]:
        return [f"http://{HOST}:{p}" for p in self.serve_ports]

    def ports_by_service(self) -> dict[str, int]:
        """The ports this cluster's own processes bind (Postgres is checked apart: it may be adopted)."""
        out = {"mlflow": self.mlflow_port, "prefect-server": self.prefect_port, "dask-scheduler": self.dask_port}
        out.update({f"serve-{i + 1}": p for i, p in enumerate(self.serve_ports)})
        return out


FLAGS = {"mlflow": "--mlflow-port", "prefect-server": "--prefect-port", "dask-scheduler": "--dask-port"}


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def check_ports_free(cfg: ClusterConfig) -> None:
    """Fail before starting anything when a port is taken, naming the service and the flag that moves it."""
    for name, port in cfg.ports_by_service().items():
        if port_in_use(port):
            flag = FLAGS.get(name, "--serve-ports")
            raise ConfigError(f"port {port} for {name} is in use on {HOST}: stop what holds it or pass {flag}")
