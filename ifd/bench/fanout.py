"""Fan-out of independent work items (benchmark runs, tuning trials) as Prefect tasks on a Dask task runner.

`fan_out(fn, items, FanoutConfig)` wraps a module-level function in a Prefect task, opens a Prefect flow
on `prefect-dask`'s `DaskTaskRunner` and submits one task per item. The runner is a `distributed.LocalCluster`
of `jobs` worker processes with one thread each (so `--jobs N` = N items at once), or, with `cluster`, the
Dask scheduler at that address (its workers decide how many run at once). The scheduler is probed first,
so a wrong address fails in seconds with what to do, not after Dask's 30 s connect timeout.

Workers report to the driver's Prefect API: the driver's `PREFECT_API_URL`, else the temporary local
server it starts, handed to the LocalCluster's workers through their environment (without it every worker
process would start a temporary server of its own). Workers of an existing cluster need PREFECT_API_URL
in their own environment (`make cluster` sets it). Items and results travel by pickle, and the workers read
the paths they are given: on other machines those paths must be the same shared filesystem.
`jobs=1` without `cluster` is `in_process`: callers then run the items in their own process, no Dask,
no Prefect server.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ifd.errors import ConfigError, IfdError

SCHEDULER_ENV = "IFD_DASK_SCHEDULER"
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss)://[^\s/:]+:\d{1,5}$")
Done = Callable[[int, Any], None]
SCHEDULER_HTTP = {"dashboard": False, "dashboard_address": ":0"}
"""No dashboard; the scheduler's health routes on a free port (its default, 8787, may be another cluster's)."""


class FanoutConfig(BaseModel):
    """Where items run: `jobs` local Dask workers, or the scheduler at `cluster` (tcp://host:port)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: int = Field(1, ge=1, description="LocalCluster workers (1 thread each): items at once")
    cluster: str | None = Field(None, description="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    connect_timeout_s: float = Field(5.0, gt=0, description="how long to wait for the scheduler and a worker")

    @field_validator("cluster")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError(f"{value!r} is not a Dask scheduler address; give tcp://HOST:PORT")
        return value

    @property
    def in_process(self) -> bool:
        """One item at a time and no cluster named: no Dask needed."""
        return self.cluster is None and self.jobs == 1

    @classmethod
    def build(cls, jobs: int = 1, cluster: str | None = None) -> FanoutConfig:
        """From command-line values; a bad value is a ConfigError naming the option."""
        try:
            return cls(jobs=jobs, cluster=cluster or None)
        except ValidationError as exc:
            err = exc.errors()[0]
            option = "--jobs" if err["loc"] and err["loc"][0] == "jobs" else "--cluster"
            raise ConfigError(f"{option}: {err['msg'].removeprefix('Value error, ')}") from None


def check_scheduler(address: str, timeout_s: float) -> int:
    """The number of worker threads at the scheduler `address`; an IfdError if it does not answer or has no
    worker within `timeout_s` (Dask would otherwise wait 30 s, or forever for a worker)."""
    from distributed import Client

    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise IfdError(
            f"--cluster {address}: no Dask scheduler answered within {timeout_s:g} s ({type(exc).__name__}); start one "
            f"(`dask scheduler` and `dask worker {address}`, or `make cluster`) or leave out --cluster for a local one"
        ) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except (OSError, TimeoutError):
            raise IfdError(f"--cluster {address}: the scheduler answers but has no worker; start one "
                           f"(`dask worker {address} --nthreads 1`)") from None
        return sum(client.nthreads().values())


def prefect_api_url() -> str:
    """The Prefect API this process reports to: PREFECT_API_URL, else Prefect's temporary local server
    (started here, once per process; the flow below then uses the same one)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        return str(url)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    return str(server.api_url)


def create_task_runner(cfg: FanoutConfig, api_url: str) -> Any:
    """prefect-dask's runner: on the scheduler at `cfg.cluster`, or on a new LocalCluster of `cfg.jobs`
    single-threaded worker processes whose environment names the driver's Prefect API. Dask's memory
    manager is off (memory_limit=0): a run's memory is measured, not capped, and a run may take more than
    an equal share of the machine."""
    from prefect_dask import DaskTaskRunner

    if cfg.cluster is not None:
        return DaskTaskRunner(address=cfg.cluster)
    env = {"PREFECT_API_URL": api_url}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PREFECT_SERVER_ANALYTICS")})
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": cfg.jobs, "threads_per_worker": 1, "processes": True, "memory_limit": 0,
                        "dashboard_address": None, "env": env, "scheduler_kwargs": SCHEDULER_HTTP},
    )


def worker_identity() -> dict[str, Any]:
    """Where the calling code runs: the Dask worker's address (None outside a worker), host and pid."""
    try:
        from distributed import get_worker

        address: str | None = get_worker().address
    except (ImportError, ValueError):
        address = None
    return {"dask_worker": address, "host": socket.gethostname(), "worker_pid": os.getpid()}


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """The scheduler of a LocalCluster lives in this process and logs every worker and client at INFO."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class _Sink:
    """The flow's one parameter: the task and items to submit, and where results go in this process. Prefect
    ships a flow's parameters to every worker with the task's context; pickled, a sink is empty (the items
    travel as the tasks' own parameters, the callback stays here), and it has no JSON form for the API."""

    __slots__ = ("unit", "items", "on_done", "values")

    def __init__(self, unit: Any, items: Sequence[dict[str, Any]], on_done: Done | None) -> None:
        self.unit, self.items, self.on_done = unit, list(items), on_done
        self.values: list[Any] = [None] * len(self.items)

    def __getstate__(self) -> None:
        return None


def _submit_all(sink: _Sink) -> None:
    """The flow: one task per item; each value into the sink as its task ends."""
    from prefect.futures import as_completed

    futures = [sink.unit.submit(**item) for item in sink.items]
    index = {f.task_run_id: i for i, f in enumerate(futures)}
    for future in as_completed(futures):
        i = index[future.task_run_id]
        try:
            sink.values[i] = future.result()
        except Exception as exc:  # one item's failure is its own result, not the campaign's end
            sink.values[i] = exc
        if sink.on_done is not None:
            sink.on_done(i, sink.values[i])


def fan_out(fn: Callable[..., Any], items: Sequence[dict[str, Any]], cfg: FanoutConfig, on_done: Done | None = None,
            name: str = "ifd-fan-out") -> list[Any]:
    """`fn(**item)` for every item as a Prefect task on the Dask task runner, in one flow named `name`.

    Returns the values in item order; an item whose task failed holds its exception (the others go on).
    `on_done(index, value)` runs in this process as each item finishes (for progress). `fn` must be a
    module-level function (it is pickled by reference to the workers)."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if cfg.cluster is not None:
        check_scheduler(cfg.cluster, cfg.connect_timeout_s)
    api_url = prefect_api_url()
    unit = task(fn, name=fn.__name__.replace("_", "-"), cache_policy=NO_CACHE, persist_result=False, retries=0)
    sink = _Sink(unit, items, on_done)
    with _quiet_dask(), temporary_settings(updates={PREFECT_API_URL: api_url}):
        flow(_submit_all, name=name, task_runner=create_task_runner(cfg, api_url), validate_parameters=False)(sink)
    return sink.values
