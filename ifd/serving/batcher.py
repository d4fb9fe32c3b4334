"""Dynamic batching for the scoring API: concurrent requests are scored together by one thread.

- Decoding runs in a pool of `decode_workers` threads (PIL releases the GIL while it inflates).
- One scoring thread owns the models. It takes the queued requests in arrival order, up to
  `max_batch_images` images, scores them as one batch and hands each request its own slice, in its own
  image order. Requests of different model versions (an approval landed in between) are scored apart.
- How long it waits to fill a batch: until `max_batch_images`, or until the oldest queued request has
  waited `max_wait_ms`, and only while another request is on its way (admitted by `ticket()`, not yet
  queued). A lone client therefore never waits for company that is not coming (decision: the wait buys
  throughput only under concurrency, so it is spent only then).
- The shadow challenger is scored off the request path by the same thread, only when no champion work
  is queued, from a bounded queue of `shadow_queue` requests; what does not fit is dropped and counted
  (`ifd_shadow_dropped`). Shadow work never blocks an answer and never piles up; a champion request that
  arrives while a shadow batch is being scored waits for that one batch (at most `max_batch_images` images).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from ifd.serving.metrics import ApiMetrics

LOG = logging.getLogger("ifd.serving")


@dataclass
class _Job:
    """One request's pixels waiting for the champion; `done(scores | exception)` answers it."""

    scorer: Any
    pixels: torch.Tensor
    done: Callable[[Any], None]
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class _ShadowJob:
    request_id: str
    pixels: torch.Tensor


class Ticket:
    """A request on its way to the queue: while open, the scoring thread may wait for it to fill a batch."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._batcher._arrived()


class Batcher:
    def __init__(
        self,
        metrics: ApiMetrics,
        max_batch_images: int = 32,
        max_wait_ms: float = 5.0,
        decode_workers: int = 2,
        shadow_queue: int = 64,
        challenger: Callable[[], Any] | None = None,
        record: Callable[[str, str, str, list[dict[str, Any]], Any], None] | None = None,
    ) -> None:
        """`challenger()` gives the current shadow model (a `Loaded` or None); `record(request_id, role,
        version, rows, embeddings)` stores shadow scores (the prediction log's `record`)."""
        self.metrics = metrics
        self.max_batch_images = max(1, int(max_batch_images))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self.shadow_capacity = max(0, int(shadow_queue))
        self.challenger = challenger
        self.record = record
        self._decode = ThreadPoolExecutor(max_workers=max(1, int(decode_workers)), thread_name_prefix="ifd-decode")
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._shadow: deque[_ShadowJob] = deque()
        self._coming = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="ifd-scorer", daemon=True)
        self._thread.start()

    @property
    def coming(self) -> int:
        """Requests admitted and not yet queued (or refused)."""
        return self._coming

    # ---- the request side (event loop) ---------------------------------------------------------
    def ticket(self) -> Ticket:
        """Call when a request is admitted, close when it is queued or refused (scoring closes it)."""
        with self._cond:
            self._coming += 1
        return Ticket(self)

    def _arrived(self) -> None:
        with self._cond:
            self._coming -= 1
            self._cond.notify_all()

    async def decode(self, scorer: Any, blobs: Sequence[bytes], limits: Any) -> torch.Tensor:
        """The request's images as uint8 pixels for `scorer`, decoded in the pool (BadImage as the scorer raises)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decode, scorer.pixels, blobs, limits)

    async def score(self, scorer: Any, pixels: torch.Tensor, ticket: Ticket | None = None) -> Any:
        """`Scores` of `pixels` by `scorer`, computed in a batch with whatever else is queued."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def done(result: Any) -> None:
            loop.call_soon_threadsafe(_settle, future, result)

        with self._cond:
            if self._stop:
                raise RuntimeError("the scorer has stopped")
            self._jobs.append(_Job(scorer, pixels, done))
            if ticket is not None and ticket._open:  # queued and no longer coming, in one step
                ticket._open = False
                self._coming -= 1
            self._cond.notify_all()
        return await future

    def shadow(self, request_id: str, pixels: torch.Tensor) -> bool:
        """Queue `pixels` for the challenger; False (and counted) when the shadow queue is full."""
        if self.challenger is None or self.challenger() is None:
            return False
        with self._cond:
            if len(self._shadow) >= self.shadow_capacity:
                self.metrics.shadow_dropped.inc(len(pixels))
                return False
            self._shadow.append(_ShadowJob(request_id, pixels))
            self._cond.notify_all()
        return True

    def close(self) -> None:
        """Stop the scoring thread after the queued champion work (shadow work left over is dropped)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        self._decode.shutdown(wait=False, cancel_futures=True)

    # ---- the scoring thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._shadow and not self._stop:
                    self._cond.wait()
                if not self._jobs and self._stop:
                    return
                jobs = self._take() if self._jobs else []
                shadow = self._take_shadow() if not jobs else []
            if jobs:
                self._score(jobs)
            elif shadow:
                self._score_shadow(shadow)

    def _take(self) -> list[_Job]:
        """(Under the lock.) Wait for company while it is coming and allowed, then take one batch's jobs."""
        deadline = self._jobs[0].queued_at + self.max_wait_s
        while (
            not self._stop
            and self._coming > 0
            and sum(len(j.pixels) for j in self._jobs) < self.max_batch_images
            and (left := deadline - time.monotonic()) > 0
        ):
            self._cond.wait(left)
        taken = [self._jobs.popleft()]
        total = len(taken[0].pixels)
        while self._jobs and total + len(self._jobs[0].pixels) <= self.max_batch_images:
            total += len(self._jobs[0].pixels)
            taken.append(self._jobs.popleft())
        return taken

    def _take_shadow(self) -> list[_ShadowJob]:
        taken = [self._shadow.popleft()]
        total = len(taken[0].pixels)
        while self._shadow and total + len(self._shadow[0].pixels) <= self.max_batch_images:
            total += len(self._shadow[0].pixels)
            taken.append(self._shadow.popleft())
        return taken

    def _score(self, jobs: list[_Job]) -> None:
        started = time.monotonic()
        for job in jobs:
            self.metrics.queue_wait.observe(started - job.queued_at)
        groups: dict[int, list[_Job]] = {}
        for job in jobs:  # one group per model: a new champion may have arrived between two requests
            groups.setdefault(id(job.scorer), []).append(job)
        for group in groups.values():
            try:
                scores = group[0].scorer.score_pixels(torch.cat([j.pixels for j in group]))
            except Exception as exc:  # noqa: BLE001  (the requests get the error; the thread lives on)
                LOG.exception("batch scoring failed")
                for job in group:
                    job.done(exc)
                continue
            self.metrics.batch_images.observe(len(scores))
            start = 0
            for job in group:
                stop = start + len(job.pixels)
                job.done(scores.take(start, stop))
                start = stop

    def _score_shadow(self, jobs: list[_ShadowJob]) -> None:
        try:
            loaded = self.challenger() if self.challenger is not None else None
            if loaded is None:
                return
            scores = loaded.scorer.score_pixels(torch.cat([j.pixels for j in jobs]))
            self.metrics.shadow_scored.inc(len(scores))
            start = 0
            for job in jobs:
                part = scores.take(start, start + len(job.pixels))
                start += len(job.pixels)
                if self.record is not None:
                    self.record(job.request_id, "shadow", loaded.version, part.rows(), part.embeddings)
        except Exception as exc:  # noqa: BLE001  (a shadow failure is logged and counted, never reaches a client)
            LOG.error("shadow scoring failed: %s", exc)
            self.metrics.shadow_errors.inc()


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
