"""A real `prefect server start` for tests (not Prefect's temporary server): a free loopback port, its own
PREFECT_HOME and SQLite database in a temp folder, started once per test session and stopped at its end.

Automations (event triggers), work pools, workers and global concurrency limits behave as they do on a
shared server. `live_prefect_server` is the session fixture; a test module imports it by name.
Subprocesses talk to it with `server.env()`; code in the test process enters `server.settings()`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from process_helpers import terminate

START_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    api_url: str
    home: Path
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment pointed at the server (for workers, CLI runs, emitters)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "MLFLOW_TRACKING_URI"}
        env.update(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home / "client"),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
        return env

    def settings(self) -> AbstractContextManager[object]:
        """Point Prefect clients made in this process at the server (inside a test's `with`)."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        return temporary_settings(updates={PREFECT_API_URL: self.api_url})


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _server_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_API_PORT=str(port),
    )
    return env


@pytest.fixture(scope="session")
def live_prefect_server() -> Iterator[LiveServer]:
    """Start `prefect server start` once; yield where it listens; stop it (SIGTERM, then SIGKILL)."""
    root = Path(tempfile.mkdtemp(prefix="ifd-prefect-"))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = root / "server.log"
    prefect = Path(sys.executable).with_name("prefect")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=_server_env(root, port), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(api_url):
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after {START_TIMEOUT_S:g} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield LiveServer(api_url=api_url, home=root, log=log)
    finally:
        terminate(proc, timeout_s=30)
        shutil.rmtree(root, ignore_errors=True)
