"""Stopping a server a test started: SIGTERM, then SIGKILL if it does not exit in time."""

from __future__ import annotations

import subprocess


def terminate(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)
