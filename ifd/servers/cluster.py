"""`make cluster`: the whole shared setup on loopback, from one supervisor process.

PostgreSQL (ifd/servers/postgres.py) -> the MLflow tracking server on it, artifacts proxied; the Prefect
server on it; a Dask scheduler -> Prefect workers on the retrain work pool, Dask workers, `ifd serve`
replicas writing one prediction log in it. Each stage starts at once and is health-checked before the
next (HTTP health endpoints, the scheduler's worker list, the pool's ONLINE workers). When everything
answers, the supervisor writes `<state>/cluster.json` (pids with start times, logs, URLs) and
`<state>/env`, a file to `source` (MLFLOW_TRACKING_URI, PREFECT_API_URL, IFD_PREDICTION_LOG_URL,
IFD_DASK_SCHEDULER, IFD_SERVE_URLS, IFD_WORKSPACE), both 0600: the log URL holds the database password.

It then watches its children: Ctrl-C, SIGTERM or `make cluster-stop` stops everything in reverse order
(process groups, SIGTERM then SIGKILL); a child that dies stops the cluster with its name and log tail.
A Postgres cluster that was already running is used and left running. What runs: cluster_services.py;
the record and `stop`: cluster_state.py; the process mechanics: processes.py; the settings: cluster_config.py.

    python -m ifd.servers.cluster up [--state-dir DIR --workspace DIR --postgres-port P ...]
    python -m ifd.servers.cluster stop|status [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from typing import Any

from ifd.errors import IfdError
from ifd.servers.cluster_config import HOST, ClusterConfig, check_ports_free, port_in_use
from ifd.servers.cluster_services import client_env, postgres_of, servers, workers
from ifd.servers.cluster_state import (
    ENV_FILE,
    STATE_FILE,
    forget,
    read_state,
    refuse_running,
    status,
    stop_recorded,
    write_private,
)
from ifd.servers.processes import Service, process_start_time, stop_groups

__all__ = ["ENV_FILE", "STATE_FILE", "Supervisor", "main", "read_state", "status", "stop_recorded"]


class Interrupted(Exception):
    """SIGINT or SIGTERM reached the supervisor."""


class Supervisor:
    """Starts the stages, records them, watches them and stops them (in reverse)."""

    def __init__(self, cfg: ClusterConfig, say: Any = None) -> None:
        self.cfg = cfg.resolved()
        self.pg = postgres_of(self.cfg)
        self.pg_adopted = False
        self.pg_started = False
        self.wrote_state = False
        self.stages: list[list[Service]] = []
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def up(self) -> None:
        """Start everything and block until interrupted or a child dies (then stop everything)."""
        refuse_running(self.cfg.state_dir)  # before anything of ours exists: a refusal touches nothing
        check_ports_free(self.cfg)
        previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.start()
            self.say(self.summary())
            self.watch()
        except Interrupted:
            self.say("[cluster] interrupted: stopping")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])

    def start(self) -> None:
        cfg = self.cfg
        for sub in ("logs", "mlartifacts", "dask", "prefect-home"):
            (cfg.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self._workspace()
        self._start_postgres()
        self._write_state(ready=False)
        for stage in (servers(cfg, self.pg), workers(cfg, self.pg)):
            if stage and stage[0].name.startswith("prefect-worker"):
                self._deploy()  # the pool, the `retrain` limit and the triggered deployment, before any worker
            self.stages.append(stage)
            for s in stage:
                s.start(cfg.state_dir / "logs")
            self._write_state(ready=False)  # pids on disk at once: `stop` can clean a half-started cluster
            self._wait(stage)
        write_private(cfg.state_dir / ENV_FILE, "".join(
            f"export {k}={shlex.quote(v)}\n" for k, v in client_env(cfg, self.pg).items()))
        self._write_state(ready=True)

    def _workspace(self) -> None:
        from ifd.workspace import Workspace
        from ifd.workspace_init import init_workspace

        ws = Workspace.at(self.cfg.workspace)
        if not ws.is_initialised():
            self.say(f"[cluster] ifd init {ws.root}")
            init_workspace(ws)

    def _deploy(self) -> None:
        """`ifd worker deploy` (ifd/lifecycle/deploy.py) on the cluster's Prefect server, for its workspace."""
        import subprocess

        argv = [sys.executable, "-m", "ifd.cli", "worker", "deploy", "--workspace", str(self.cfg.workspace),
                "--pool", self.cfg.work_pool, "--json"]
        self.say(f"[cluster] ifd worker deploy --pool {self.cfg.work_pool}")
        env = {**os.environ, **client_env(self.cfg, self.pg), "PREFECT_HOME": str(self.cfg.state_dir / "prefect-home")}
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.cfg.start_timeout_s)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise IfdError(f"`ifd worker deploy` failed with {proc.returncode}:\n{tail}")

    def _start_postgres(self) -> None:
        if self.pg.is_running():
            self.pg_adopted = True
            self.say(f"[cluster] PostgreSQL already running in {self.pg.root}: using it (left running at stop)")
        elif port_in_use(self.cfg.postgres_port):
            raise IfdError(f"port {self.cfg.postgres_port} for PostgreSQL is in use on {HOST} by another "
                           "server: stop it or pass --postgres-port")
        self.say(f"[cluster] PostgreSQL on {HOST}:{self.cfg.postgres_port}")
        self.pg_started = True  # from here on, stop() owns it (unless adopted)
        self.pg.start(timeout_s=self.cfg.start_timeout_s)

    def _wait(self, stage: list[Service]) -> None:
        names = ", ".join(s.name for s in stage)
        self.say(f"[cluster] starting {names}")
        pending = list(stage)
        t0 = time.monotonic()
        deadline = t0 + self.cfg.start_timeout_s
        while pending:
            for s in list(pending):
                code = s.exited()
                if code is not None:
                    raise IfdError(f"{s.name} exited with {code} while starting (log {s.log}):\n{s.log_tail()}")
                if s.probe():
                    pending.remove(s)
            if pending and time.monotonic() > deadline:
                late = pending[0]
                raise IfdError(f"{', '.join(s.name for s in pending)} did not answer within "
                               f"{self.cfg.start_timeout_s:.0f} s (log {late.log}):\n{late.log_tail()}")
            time.sleep(0.5 if pending else 0)
        self.say(f"[cluster] up: {names} ({time.monotonic() - t0:.0f} s)")

    def watch(self, every_s: float = 1.0) -> None:
        while True:
            for s in (s for stage in self.stages for s in stage):
                code = s.exited()
                if code is not None:
                    raise IfdError(f"{s.name} exited with {code}; stopping the cluster (log {s.log}):\n{s.log_tail()}")
            time.sleep(every_s)

    def stop(self) -> None:
        for stage in reversed(self.stages):
            started = [s for s in stage if s.proc is not None]
            took = stop_groups([(s.proc.pid, None) for s in started if s.proc is not None])
            done = [f"{s.name} ({'SIGKILL' if took[s.proc.pid] is None else f'{took[s.proc.pid]} s'})"
                    for s in started if s.proc is not None and s.proc.pid in took]
            if done:
                self.say(f"[cluster] stopped {', '.join(done)}")
        self.stages = []
        if self.pg_started and not self.pg_adopted and self.pg.is_running():
            self.pg.stop()
            self.say("[cluster] stopped PostgreSQL")
        if self.wrote_state:
            forget(self.cfg.state_dir)

    def _write_state(self, ready: bool) -> None:
        state = {
            "supervisor": {"pid": os.getpid(), "started": process_start_time(os.getpid())},
            "ready": ready,
            "workspace": str(self.cfg.workspace),
            "postgres": {"dir": str(self.pg.root), "port": self.pg.port, "adopted": self.pg_adopted},
            "services": {s.name: s.record() for stage in self.stages for s in stage if s.proc is not None},
            "env": client_env(self.cfg, self.pg) if ready else {},
            "work_pool": self.cfg.work_pool,
            "prefect_workers": self.cfg.prefect_workers,
            "logs": str(self.cfg.state_dir / "logs"),
        }
        write_private(self.cfg.state_dir / STATE_FILE, json.dumps(state, indent=1) + "\n")
        self.wrote_state = True

    def summary(self) -> str:
        c = self.cfg
        lines = [
            f"[cluster] ready (state {c.state_dir}; Ctrl-C or `make cluster-stop` stops it)",
            f"  postgres        {HOST}:{c.postgres_port} (data {self.pg.data_dir})",
            f"  mlflow          {c.mlflow_url} (artifacts proxied into {c.state_dir / 'mlartifacts'})",
            f"  prefect         {c.prefect_api_url.removesuffix('/api')} ({c.prefect_workers} workers on pool {c.work_pool!r})",
            f"  dask scheduler  {c.dask_scheduler} ({c.dask_workers} workers)",
            f"  serve           {', '.join(c.serve_urls)}",
            f"  workspace       {c.workspace}",
            f"IFD_DASK_SCHEDULER={c.dask_scheduler}",
            f"source {c.state_dir / ENV_FILE}   # MLFLOW_TRACKING_URI, PREFECT_API_URL, IFD_PREDICTION_LOG_URL, ...",
        ]
        return "\n".join(lines)


def _interrupt(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


# ---- command line --------------------------------------------------------------------------------
def _ports(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected ports like 8001,8002, got {text!r}") from exc


def _parser() -> argparse.ArgumentParser:
    d = ClusterConfig()
    p = argparse.ArgumentParser(prog="python -m ifd.servers.cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["up", "stop", "status"])
    p.add_argument("--state-dir", default=str(d.state_dir), help="pids, logs, env file (default %(default)s)")
    p.add_argument("--workspace", default=str(d.workspace), help="the workspace the services act on")
    p.add_argument("--postgres-dir", default=os.environ.get("IFD_POSTGRES_DIR", str(d.postgres_dir)))
    p.add_argument("--postgres-port", type=int, default=d.postgres_port)
    p.add_argument("--no-fsync", action="store_true", help="Postgres without fsync (tests; a crash may lose it)")
    p.add_argument("--mlflow-port", type=int, default=d.mlflow_port)
    p.add_argument("--mlflow-workers", type=int, default=d.mlflow_workers)
    p.add_argument("--prefect-port", type=int, default=d.prefect_port)
    p.add_argument("--prefect-workers", type=int, default=d.prefect_workers)
    p.add_argument("--work-pool", default=d.work_pool)
    p.add_argument("--worker-poll", type=float, default=d.worker_poll_s,
                   help="seconds between a Prefect worker's checks for flow runs")
    p.add_argument("--dask-port", type=int, default=d.dask_port)
    p.add_argument("--dask-workers", type=int, default=d.dask_workers)
    p.add_argument("--serve-ports", type=_ports, default=d.serve_ports, help="comma-separated, one replica each")
    p.add_argument("--serve-poll", type=float, default=d.serve_poll_s, help="seconds between registry checks")
    p.add_argument("--timeout", type=float, default=d.start_timeout_s, help="seconds each stage may take to answer")
    return p


def config_from_args(args: argparse.Namespace) -> ClusterConfig:
    from pydantic import ValidationError

    from ifd.errors import ConfigError

    try:
        return ClusterConfig(
            state_dir=args.state_dir, workspace=args.workspace, postgres_dir=args.postgres_dir,
            postgres_port=args.postgres_port, postgres_durable=not args.no_fsync, mlflow_port=args.mlflow_port,
            mlflow_workers=args.mlflow_workers, prefect_port=args.prefect_port,
            prefect_workers=args.prefect_workers, work_pool=args.work_pool, worker_poll_s=args.worker_poll,
            dask_port=args.dask_port,
            dask_workers=args.dask_workers, serve_ports=args.serve_ports, serve_poll_s=args.serve_poll,
            start_timeout_s=args.timeout)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "cluster"
        raise ConfigError(f"bad cluster setting {where}: {first['msg']}") from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.action == "up":
            Supervisor(config_from_args(args)).up()
        elif args.action == "stop":
            stopped = stop_recorded(args.state_dir)
            print(f"stopped: {', '.join(stopped)}" if stopped else f"no cluster recorded in {args.state_dir}",
                  file=sys.stderr)
        else:
            st = status(args.state_dir)
            print(json.dumps({k: v for k, v in st.items() if k != "env"}, indent=1))
            return 0 if st["running"] else 1
    except IfdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
