"""`ifd worker deploy` / `ifd worker start`: the retrain flow as a deployment on a Prefect process work pool.

Commands (the cluster scripts use exactly these; order: server, then deploy and workers in any order):

    export PREFECT_API_URL=http://127.0.0.1:4200/api   # a real `prefect server start` (make prefect / prefect-pg),
                                                        # for every command below and for `ifd ingest`
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000    # optional, for workers: a shared MLflow server (else the
                                                        # workspace's own .ifd/ SQLite store: one machine only)
    ifd worker deploy --workspace WS [--pool ifd-retrain] [--deployment NAME] [--wait 3600] [--json]
    ifd worker start [--pool ifd-retrain] [--name NAME] [--limit N]   # any number, on any machine
    prefect worker start --pool ifd-retrain --type process             # the same worker, plain Prefect

Optional: PREFECT_WORKER_QUERY_SECONDS (how often a worker polls the pool; Prefect's default 10 s).
`ifd worker start` needs no workspace; it execs `prefect worker start --pool P --type process` in this
environment (which the flow-run processes inherit) after checking PREFECT_API_URL is set.

`ifd worker deploy` is idempotent; each call creates or updates, on the server PREFECT_API_URL names:
1. the process work pool (default `ifd-retrain`), with Prefect's default process job template;
2. the global concurrency limit `retrain`, limit 1 (what `prefect gcl create retrain --limit 1` makes):
   the retrain flow holds its one slot for the whole retrain, so two retrains never run at once,
   whichever workers and machines pick them up (ifd/lifecycle/retrain_slot.py);
3. the deployment `retrain/<name>` (default name `retrain-<workspace_id>`) of the retrain flow on that
   pool, `root` fixed to this workspace's absolute path, and one automation: a trigger on
   `ifd.batch.landed` events whose `ifd.workspace` is this workspace's id (params.yaml `workspace_id`,
   written once by `ifd init`; the ingest flow emits it), passing the batch name.

The deployment's entrypoint is a module path (`flows.retrain.retrain_flow`), with no code storage and no
image: a worker runs the flow from the `ifd` installed in its own Python environment. So every worker
machine runs the same checkout or installed package of ifd, sees the workspace at the same absolute path
(the deployment's `root`: a shared file system, or the same checkout path with the batch data present)
and reaches the same MLflow tracking server.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ifd.errors import IfdError
from ifd.workspace import Workspace

DEFAULT_POOL = "ifd-retrain"
POOL_TYPE = "process"
PREFECT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class RetrainDeployConfig(BaseModel):
    """Where and how the retrain deployment runs (from `ifd worker deploy`'s options)."""

    model_config = ConfigDict(extra="forbid")
    pool: str = Field(default=DEFAULT_POOL, pattern=PREFECT_NAME)
    deployment: str | None = Field(default=None, pattern=PREFECT_NAME)
    wait_s: float = Field(default=3600.0, ge=0)

    def deployment_name(self, workspace_id: str) -> str:
        return self.deployment or f"retrain-{workspace_id}"


def require_api_url(command: str) -> str:
    """The PREFECT_API_URL a command needs (a real server: automations and pools live there)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise IfdError(
            f"`{command}` needs a running Prefect server: start one with `make prefect`, then "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return str(url)


def ensure_pool(client: Any, name: str) -> bool:
    """Create the process work pool `name` unless it exists; True when it was created. A pool of
    another type is refused: its workers would not run the flow in a local process."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        template = ProcessWorker.get_default_base_job_template()
        client.create_work_pool(WorkPoolCreate(name=name, type=POOL_TYPE, base_job_template=template))
        return True
    if pool.type != POOL_TYPE:
        raise IfdError(f"work pool {name!r} is of type {pool.type!r}, not {POOL_TYPE!r}; pass --pool another name")
    return False


def ensure_retrain_limit(client: Any) -> None:
    """The global concurrency limit `retrain`: present, active, limit 1."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    from ifd.lifecycle.retrain_slot import RETRAIN_LIMIT

    try:
        limit = client.read_global_concurrency_limit_by_name(RETRAIN_LIMIT)
    except ObjectNotFound:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=RETRAIN_LIMIT, limit=1))
        return
    if limit.limit != 1 or not limit.active:
        client.update_global_concurrency_limit(RETRAIN_LIMIT, GlobalConcurrencyLimitUpdate(limit=1, active=True))


def deploy_retrain(ws: Workspace, cfg: RetrainDeployConfig) -> dict[str, Any]:
    """Create or update the pool, the `retrain` limit and the triggered deployment; what was done."""
    import httpx
    from prefect import get_client
    from prefect.deployments.runner import EntrypointType

    from flows.retrain import retrain_flow
    from ifd.lifecycle.retrain_slot import RETRAIN_LIMIT
    from ifd.lifecycle.worker import landing_trigger
    from ifd.workspace_id import ensure_workspace_id

    url = require_api_url("ifd worker deploy")
    ws.require()
    workspace_id = ensure_workspace_id(ws)
    name = cfg.deployment_name(workspace_id)
    try:
        with get_client(sync_client=True) as client:
            created = ensure_pool(client, cfg.pool)
            ensure_retrain_limit(client)
        deployment = retrain_flow.to_deployment(
            name,
            work_pool_name=cfg.pool,
            entrypoint_type=EntrypointType.MODULE_PATH,  # no code storage, no image: workers import ifd
            parameters={"root": str(ws.root)},
            triggers=[landing_trigger(workspace_id, cfg.wait_s)],
            description=f"Retrain the ifd detector when a batch lands in workspace {workspace_id} ({ws.root})",
        )
        deployment_id = deployment.apply()  # what `flow.deploy(build=False, push=False)` does, without printing
    except httpx.HTTPError as exc:
        raise IfdError(f"cannot deploy to the Prefect server at {url}: {exc}") from None
    return {
        "pool": cfg.pool,
        "pool_created": created,
        "deployment": f"{retrain_flow.name}/{name}",
        "deployment_id": str(deployment_id),
        "concurrency_limit": RETRAIN_LIMIT,
        "workspace_id": workspace_id,
        "root": str(ws.root),
        "worker_command": f"ifd worker start --pool {cfg.pool}",
    }


def worker_argv(pool: str, name: str | None = None, limit: int | None = None) -> list[str]:
    """The `prefect worker start` command line `ifd worker start` runs."""
    import sys
    from pathlib import Path

    prefect = Path(sys.executable).with_name("prefect")
    argv = [str(prefect) if prefect.exists() else "prefect", "worker", "start", "--pool", pool, "--type", POOL_TYPE]
    if name:
        argv += ["--name", name]
    if limit is not None:
        argv += ["--limit", str(limit)]
    return argv


def start_worker(pool: str, name: str | None = None, limit: int | None = None) -> None:
    """Replace this process with a Prefect process worker on `pool` (it inherits this environment)."""
    require_api_url("ifd worker start")
    argv = worker_argv(pool, name, limit)
    os.execvpe(argv[0], argv, dict(os.environ))
