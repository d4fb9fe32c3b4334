"""One retrain at a time: Prefect's global concurrency limit `retrain` across workers, the file lock within
one workspace.

On a Prefect server where `ifd worker deploy` created the limit `retrain` (limit 1), a retrain flow run
holds one slot of it from the champion fetch to the registration, wherever it runs: a second run waits
for the slot (up to `wait_s`, then RetrainBusy) however many workers and machines there are. The slot is
a lease the flow renews in the background; if its process dies, the server frees the slot when the lease
runs out (300 s), so a crashed worker never blocks retrains for good.

Inside the slot the flow still takes the workspace's file lock (ifd/lifecycle/retrain.py retrain_lock):
a retrain that does not go through that server (`ifd retrain` on Prefect's temporary server, or
`run_retrain` without Prefect) coordinates with the others on the same workspace only through it.
Where the server has no `retrain` limit (the temporary server, `ifd worker` serve mode before any
deploy), the file lock alone keeps one retrain per workspace, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from ifd.lifecycle.retrain import RetrainBusy, retrain_lock
from ifd.workspace import Workspace

RETRAIN_LIMIT = "retrain"
LEASE_S = 300.0


def global_limit_defined() -> bool:
    """Whether the connected Prefect server has the `retrain` global concurrency limit."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(RETRAIN_LIMIT)
        except ObjectNotFound:
            return False
    return True


@contextmanager
def global_retrain_slot(wait_s: float) -> Iterator[None]:
    """Hold one slot of `retrain`; wait at most `wait_s` seconds for it (0: refuse at once)."""
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency

    waiting = {"timeout_seconds": wait_s} if wait_s > 0 else {"max_retries": 0}
    with ExitStack() as stack:
        try:
            stack.enter_context(concurrency(RETRAIN_LIMIT, occupy=1, lease_duration=LEASE_S, strict=True,
                                            raise_on_lease_renewal_failure=False, **waiting))
        except (TimeoutError, ConcurrencySlotAcquisitionError) as exc:
            if not _busy(exc):
                raise
            waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
            raise RetrainBusy(
                f"another retrain holds the Prefect global concurrency limit {RETRAIN_LIMIT!r}{waited}; "
                "it runs one retrain at a time (pass a longer wait_s to queue behind it)"
            ) from None
        yield


def _busy(exc: BaseException) -> bool:
    """A timeout, or the server's 423 Locked on the one attempt `max_retries=0` makes: the slot is taken."""
    import httpx

    cause = exc.__cause__
    return isinstance(exc, TimeoutError) or (isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 423)


@contextmanager
def retrain_slot(ws: Workspace, wait_s: float) -> Iterator[None]:
    """The global `retrain` slot when the server defines the limit, then the workspace's file lock."""
    with ExitStack() as stack:
        if global_limit_defined():
            stack.enter_context(global_retrain_slot(wait_s))
        stack.enter_context(retrain_lock(ws, wait_s))
        yield
