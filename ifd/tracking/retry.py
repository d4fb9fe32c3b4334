"""The one retry layer around calls to the tracking server: bounded in time, then a clean `TrackingUnavailable`.

Transient means the server did not answer or answered "try later": connection errors and timeouts,
HTTP 429/5xx, MLflow's TEMPORARILY_UNAVAILABLE, and SQLite's "database is locked". Anything else (a
bad request, a missing version, a refused permission) is raised at once.

One layer, so the time to a clean failure is known. MLflow's own HTTP retries are switched off
(`MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`, set by `ifd.tracking.store.client`) and each request waits at most
`IFD_TRACKING_TIMEOUT_S` (default 15 s); the Prefect tasks of the retrain flow do not retry. Here a call
is tried up to `IFD_TRACKING_ATTEMPTS` times (default 6), `IFD_TRACKING_BACKOFF_S` apart (default 1 s,
doubling), and never starts an attempt that could end after `IFD_TRACKING_BUDGET_S` (default 90 s) of
failing. The budget is shared by every call inside one `retry_budget()` scope (a command), so a server
that comes and goes cannot stretch a command past it either.
"""

from __future__ import annotations

import contextvars
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from ifd.errors import IfdError

T = TypeVar("T")
DEFAULT_ATTEMPTS = 6
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BUDGET_S = 90.0
DEFAULT_TIMEOUT_S = 15.0
_TRANSIENT_TEXT = re.compile(
    r"API request to .* failed with exception|failed with error code 5\d\d|error code 429|"
    r"TEMPORARILY_UNAVAILABLE|database is locked|Connection (refused|reset|aborted)|timed out|Max retries exceeded",
    re.IGNORECASE,
)


class TrackingUnavailable(IfdError):
    """The tracking server did not answer within the retry budget; nothing half-made was left behind."""

    exit_code = 5


class TrackingRefused(IfdError):
    """The tracking server answered, and refused: not signed in (401) or not allowed (403)."""

    exit_code = 6


def refusal(exc: BaseException, what: str) -> TrackingRefused | None:
    """A one-line TrackingRefused for an authentication or permission error, else None."""
    code = getattr(exc, "error_code", "")
    text = str(exc)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "(no user)"
    if code == "UNAUTHENTICATED" or "error code 401" in text:
        return TrackingRefused(
            f"the tracking server wants to know who you are ({what}): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if code == "PERMISSION_DENIED" or "error code 403" in text:
        return TrackingRefused(
            f"the tracking server refused {user} permission to {what}; an MLflow admin can grant it "
            "(EDIT or MANAGE on the registered model ifd-detector, or on the experiment)"
        )
    return None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int
    backoff_s: float
    budget_s: float
    timeout_s: float


@dataclass
class _Spent:
    """Seconds spent failing inside one `retry_budget()` scope."""

    budget_s: float
    spent_s: float = 0.0


_SCOPE: contextvars.ContextVar[_Spent | None] = contextvars.ContextVar("ifd_retry_scope", default=None)


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise IfdError(f"{name}={raw!r} is not a number") from None


def policy_from_env() -> RetryPolicy:
    """The retry policy from IFD_TRACKING_ATTEMPTS / _BACKOFF_S / _BUDGET_S / _TIMEOUT_S (defaults above)."""
    return RetryPolicy(
        attempts=max(1, int(_number("IFD_TRACKING_ATTEMPTS", DEFAULT_ATTEMPTS))),
        backoff_s=max(0.0, _number("IFD_TRACKING_BACKOFF_S", DEFAULT_BACKOFF_S)),
        budget_s=max(0.0, _number("IFD_TRACKING_BUDGET_S", DEFAULT_BUDGET_S)),
        timeout_s=max(1.0, _number("IFD_TRACKING_TIMEOUT_S", DEFAULT_TIMEOUT_S)),
    )


def attempts_from_env() -> tuple[int, float]:
    """(attempts, first backoff in seconds); kept for callers of the earlier API."""
    p = policy_from_env()
    return p.attempts, p.backoff_s


@contextmanager
def retry_budget(budget_s: float | None = None) -> Iterator[None]:
    """Every tracking call in the body shares one budget of failing time (an outer scope wins)."""
    if _SCOPE.get() is not None:
        yield
        return
    token = _SCOPE.set(_Spent(policy_from_env().budget_s if budget_s is None else budget_s))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def is_transient(exc: BaseException) -> bool:
    """True for failures that a later attempt may not see (the server down, busy or restarting)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "error_code", None)
        if code in ("PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return False
        if isinstance(cur, ConnectionError | TimeoutError):
            return True
        if type(cur).__module__.startswith(("requests", "urllib3")) and "Connection" in type(cur).__name__:
            return True
        if code == "TEMPORARILY_UNAVAILABLE" or _TRANSIENT_TEXT.search(str(cur)):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def with_retries(
    fn: Callable[[], T],
    what: str,
    attempts: int | None = None,
    backoff_s: float | None = None,
    log: Callable[[str], None] | None = None,
    budget_s: float | None = None,
) -> T:
    """`fn()`, retried on transient failures within the budget; then a `TrackingUnavailable` naming `what`.

    `fn` must be safe to repeat: a create call looks up what an earlier, lost answer may have made.
    """
    from ifd.redact import redact_text

    pol = policy_from_env()
    attempts = pol.attempts if attempts is None else max(1, attempts)
    delay = pol.backoff_s if backoff_s is None else backoff_s
    scope = _SCOPE.get()
    own = _Spent(pol.budget_s if budget_s is None else budget_s)
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                refused = refusal(exc, what)
                if refused is not None:
                    raise refused from exc
                raise
            failed_s = time.monotonic() - started
            own.spent_s += failed_s
            if scope is not None:
                scope.spent_s += failed_s
            # An attempt may take up to one request timeout: start one only if it ends within the budget.
            left = min(own.budget_s - own.spent_s, scope.budget_s - scope.spent_s if scope else float("inf"))
            if attempt == attempts or delay + pol.timeout_s > left:
                first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                raise TrackingUnavailable(
                    redact_text(
                        f"the tracking server did not answer ({what}; {attempt} attempt(s) in {own.spent_s:.0f} s): {first}. "
                        "Check MLFLOW_TRACKING_URI (or start one with `make mlflow`) and run the command again"
                    )
                ) from exc
            if log is not None:
                log(f"[tracking] {what}: attempt {attempt} of {attempts} failed ({type(exc).__name__}); retrying in {delay:.1f} s")
            time.sleep(delay)
            own.spent_s += delay
            if scope is not None:
                scope.spent_s += delay
            delay *= 2
    raise AssertionError("unreachable")
