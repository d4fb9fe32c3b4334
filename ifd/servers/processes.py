"""Child processes of the local cluster: start one in its own session with its output in a log file,
wait until its health probe answers, and stop its whole process group (uvicorn workers, Dask nannies,
Prefect flow-run subprocesses go with it).

A recorded process is identified by pid *and* start time (psutil), so `stop` never signals a process
that merely reused a pid after the cluster died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Probe = Callable[[], bool]


@dataclass
class Service:
    """One command of the cluster: how to start it and how to know it is up."""

    name: str
    argv: list[str]
    env: dict[str, str]
    probe: Probe
    url: str = ""
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path | None = None

    def start(self, log_dir: Path) -> None:
        self.log = log_dir / f"{self.name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.cwd, start_new_session=True)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 12) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def record(self) -> dict[str, Any]:
        assert self.proc is not None
        return {"pid": self.proc.pid, "started": process_start_time(self.proc.pid), "log": str(self.log),
                "url": self.url, "argv": self.argv[:3]}


def process_start_time(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def is_same_process(pid: int, started: float | None) -> bool:
    """True when `pid` is alive (not a zombie) and is the process recorded (same start time, within rounding)."""
    import psutil

    now = process_start_time(pid)
    if now is None or (started is not None and abs(now - started) >= 1.0):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_process(pid: int, started: float | None, timeout_s: float) -> bool:
    """SIGTERM one process (not its group: a supervisor shares its group with `make`), SIGKILL after `timeout_s`."""
    if not is_same_process(pid, started):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_same_process(pid, started):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        _reap(pid)
        time.sleep(0.2)
    _reap(pid)
    return True


def stop_groups(leaders: list[tuple[int, float | None]], timeout_s: float = 20.0) -> dict[int, float | None]:
    """SIGTERM the process groups led by these pids at once, SIGKILL what is left after `timeout_s`.

    Returns, for each group that was running, the seconds it took to end after SIGTERM (None: it needed
    SIGKILL). A leader that already exited (a zombie of ours) still has its group stopped: its children
    may live on. `started` None skips the start-time check (for our own children)."""
    live = [pid for pid, started in leaders
            if (started is None or is_same_process(pid, started)) and _group_alive(pid)]
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    t0 = time.monotonic()
    took: dict[int, float | None] = dict.fromkeys(live)
    waiting = list(live)
    while waiting and time.monotonic() - t0 < timeout_s:
        for pid in [p for p in waiting if not _group_alive(p)]:
            took[pid] = round(time.monotonic() - t0, 1)
            waiting.remove(pid)
        time.sleep(0.2 if waiting else 0)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid in live:
        _reap(pid)
    return took


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    _reap(pgid)  # a zombie leader of ours still counts as a member until it is reaped
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# ---- health probes -------------------------------------------------------------------------------
def http_answers(url: str, accept: tuple[int, ...] = (200,)) -> Probe:
    """Up when `url` answers with one of `accept` (503 for a serve replica that has no champion yet)."""
    import urllib.error
    import urllib.request

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status in accept
        except urllib.error.HTTPError as exc:
            return exc.code in accept
        except OSError:
            return False

    return probe


def tcp_accepts(host: str, port: int) -> Probe:
    import socket

    def probe() -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((host, port)) == 0

    return probe


def dask_worker_joined(scheduler: str, name: str) -> Probe:
    """Up when the scheduler lists a worker called `name`."""

    def probe() -> bool:
        from distributed import Client

        try:
            with Client(scheduler, timeout=3, set_as_default=False) as c:
                return any(w.get("name") == name for w in c.scheduler_info(n_workers=-1)["workers"].values())
        except (OSError, TimeoutError):
            return False

    return probe


def prefect_worker_online(api_url: str, pool: str, name: str) -> Probe:
    """Up when the Prefect server lists worker `name` of `pool` as ONLINE (it heartbeats on start)."""
    import httpx

    def probe() -> bool:
        try:
            r = httpx.post(f"{api_url}/work_pools/{pool}/workers/filter", json={}, timeout=3)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and any(w["name"] == name and w.get("status") == "ONLINE" for w in r.json())

    return probe
