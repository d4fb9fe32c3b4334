"""Shared fixtures: one Prefect test server per session, fresh workspaces in tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Tests train tiny models: one torch thread is faster than two fighting over 2 cores (and deterministic)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _prefect_logs_to_the_session_stream() -> None:
    """Prefect binds its console log handler to the sys.stderr of the moment it configures logging. Configure it
    once here, on pytest's session-wide stream: configured first inside a test that uses capsys, it would keep
    that test's stream, closed when the test ends, and every later flow's log line would fail."""
    import prefect.main  # noqa: F401  (importing it configures Prefect's logging)
    from prefect.logging.configuration import setup_logging

    setup_logging()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect server for the whole session (it takes ~20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield


@pytest.fixture
def workspace(tmp_path: Path):
    """An initialised workspace (DVC without git) in a tmp dir."""
    from ifd.workspace import Workspace
    from ifd.workspace_init import init_workspace

    return init_workspace(Workspace.at(tmp_path / "ws"))
