"""Shared by the serving reliability tests: a workspace with a champion, a real `ifd serve` process on a
free loopback port, and the server's memory read from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid
from process_helpers import terminate

from ifd.workspace import Workspace

QUIET = lambda _: None  # noqa: E731


def champion_workspace(tmp_path_factory: Any, name: str) -> Workspace:
    """A copy of the lifecycle template whose champion is version 1 (learned task0)."""
    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve

    ws = fresh_workspace(tmp_path_factory, name)
    rt.run_retrain(ws, "task0", tiny_lid(), progress=QUIET)
    approve(ws, "1", "alice", "first")
    return ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(ws: Workspace, port: int, *flags: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    """`ifd serve` on 127.0.0.1:`port` in its own process (stdout and stderr to `log`)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115  (the child owns it)
    return subprocess.Popen(
        [sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws.root), "--port", str(port), *flags],
        env=full_env, stdout=out, stderr=subprocess.STDOUT,
    )


def wait_until_up(port: int, proc: subprocess.Popen, timeout_s: float = 120, log: Path | None = None) -> None:
    """Until /healthz answers at all (any status)."""
    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ifd serve exited with {proc.returncode}: {log.read_text()[-2000:] if log else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    pytest.fail(f"ifd serve did not come up in {timeout_s} s: {log.read_text()[-2000:] if log else ''}")


def stop(proc: subprocess.Popen) -> None:
    terminate(proc, timeout_s=20)


def proc_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status: VmRSS (resident now) or VmHWM (the peak since start)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def png_bytes(size: int = 32, seed: int = 0) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
