"""Retries with exponential backoff around calls to the tracking server, then a clean `TrackingUnavailable`.

Transient means the server did not answer or answered "try later": connection errors and timeouts,
HTTP 429/5xx, MLflow's TEMPORARILY_UNAVAILABLE, and SQLite's "database is locked". Anything else (a
bad request, a missing version) is raised at once. MLflow's HTTP client has its own retries first
(`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, default 7 with backoff); ours are `IFD_TRACKING_ATTEMPTS` tries (default
3) `IFD_TRACKING_BACKOFF_S` seconds apart (default 2, doubling).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import TypeVar

from ifd.errors import IfdError

T = TypeVar("T")
_TRANSIENT_TEXT = re.compile(
    r"API request to .* failed with exception|failed with error code 5\d\d|error code 429|"
    r"TEMPORARILY_UNAVAILABLE|database is locked|Connection (refused|reset|aborted)|timed out",
    re.IGNORECASE,
)


class TrackingUnavailable(IfdError):
    """The tracking server did not answer after every retry; nothing half-made was left behind."""

    exit_code = 5


def is_transient(exc: BaseException) -> bool:
    """True for failures that a later attempt may not see (the server down, busy or restarting)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionError | TimeoutError):
            return True
        if type(cur).__module__.startswith(("requests", "urllib3")) and "Connection" in type(cur).__name__:
            return True
        if getattr(cur, "error_code", None) == "TEMPORARILY_UNAVAILABLE" or _TRANSIENT_TEXT.search(str(cur)):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def attempts_from_env() -> tuple[int, float]:
    """(attempts, first backoff in seconds) from IFD_TRACKING_ATTEMPTS / IFD_TRACKING_BACKOFF_S."""
    try:
        attempts = max(1, int(os.environ.get("IFD_TRACKING_ATTEMPTS", "3")))
        backoff = max(0.0, float(os.environ.get("IFD_TRACKING_BACKOFF_S", "2")))
    except ValueError as exc:
        raise IfdError(f"IFD_TRACKING_ATTEMPTS / IFD_TRACKING_BACKOFF_S must be numbers ({exc})") from exc
    return attempts, backoff


def with_retries(
    fn: Callable[[], T],
    what: str,
    attempts: int | None = None,
    backoff_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> T:
    """`fn()`, retried on transient failures; after the last attempt a `TrackingUnavailable` naming `what`."""
    env_attempts, env_backoff = attempts_from_env()
    attempts = env_attempts if attempts is None else max(1, attempts)
    delay = env_backoff if backoff_s is None else backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts:
                first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                raise TrackingUnavailable(
                    f"the tracking server did not answer ({what}; {attempts} attempt(s)): {first}. "
                    "Check MLFLOW_TRACKING_URI (or start one with `make mlflow`) and run the command again"
                ) from exc
            if log is not None:
                log(f"[tracking] {what}: attempt {attempt} of {attempts} failed ({type(exc).__name__}); retrying in {delay:.1f} s")
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
