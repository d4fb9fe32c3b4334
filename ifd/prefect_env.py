"""Environment for running flows from the CLI: a real server when PREFECT_API_URL names one, otherwise
Prefect's temporary local server, started once per process with a start-up timeout this CPU can meet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


@contextmanager
def prefect_environment() -> Iterator[None]:
    """Set our defaults for unset Prefect variables (a user's own settings win), then restore."""
    added = {k: v for k, v in DEFAULTS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
