"""A throwaway PostgreSQL cluster for tests (ifd/servers/postgres.py on Debian's binaries): a free loopback
port, no fsync, in a folder under /tmp the `postgres` user can read (pytest's own tmp is 0700 root's)."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ifd.servers.postgres import Cluster, binaries_available


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def started_cluster() -> Iterator[Cluster]:
    """Start one cluster with the databases mlflow, optuna, prefect, predictions; always stop and remove it."""
    if not binaries_available():
        pytest.skip("PostgreSQL binaries absent: apt-get install -y postgresql (15)")
    root = Path(tempfile.mkdtemp(prefix="ifd-pg-"))
    root.chmod(0o755)
    cluster = Cluster(root / "pg", free_port(), durable=False)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
