"""Prometheus metrics of the scoring API, in a registry of its own (no process-wide globals), plus the
monitor's latest gauges (drift, forgetting, unknown share) read from the file `ifd monitor` writes.

Batching (ifd/serving/batcher.py) adds the images per scored batch, the time a request waited in the queue,
the shadow images dropped because the shadow queue was full, and which runtime scores each version (with a
counter of versions that fell back to eager PyTorch, and why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class ApiMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("ifd_requests", "scoring requests by HTTP status", ["status"], registry=self.registry)
        self.latency = Histogram(
            "ifd_request_seconds", "scoring request latency", registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.scores = Histogram(
            "ifd_p_fake", "p(fake) of scored images", ["version"], registry=self.registry,
            buckets=tuple(np.round(np.linspace(0.1, 1.0, 10), 2)),
        )
        self.shadow_scored = Counter("ifd_shadow_images", "images scored by the challenger in shadow", registry=self.registry)
        self.shadow_errors = Counter("ifd_shadow_errors", "shadow scorings that failed", registry=self.registry)
        self.shadow_dropped = Counter(
            "ifd_shadow_dropped", "images not scored in shadow because the shadow queue was full", registry=self.registry
        )
        self.batch_images = Histogram(
            "ifd_batch_images", "images per batch the champion scored", registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.queue_wait = Histogram(
            "ifd_batch_queue_seconds", "time a request waited for its batch to start", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
        )
        self.runtime = Gauge(
            "ifd_model_runtime", "1 for the runtime that scores a version (onnx or eager)", ["version", "runtime"],
            registry=self.registry,
        )
        self.runtime_fallbacks = Counter(
            "ifd_runtime_fallbacks", "versions served in eager PyTorch although runtime auto was asked for",
            ["version", "reason"], registry=self.registry,
        )
        self._runtimes: dict[str, str] = {}

    def observe_request(self, status: int, seconds: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(seconds)

    def observe_scores(self, version: str, p_fake: np.ndarray) -> None:
        h = self.scores.labels(version=version)
        for p in p_fake:
            h.observe(float(p))

    def observe_model(self, version: str, scorer: Any) -> None:
        """Record once per version which runtime scores it (and a fallback with its reason)."""
        runtime = str(getattr(scorer, "runtime", "eager"))
        if self._runtimes.get(version) == runtime:
            return
        self._runtimes[version] = runtime
        self.runtime.labels(version=version, runtime=runtime).set(1)
        fallback = getattr(scorer, "runtime_fallback", None)
        if fallback:
            self.runtime_fallbacks.labels(version=version, reason=_reason_label(fallback)).inc()

    def render(self, monitor_gauges: Path) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.registry)
        if Path(monitor_gauges).is_file():
            body += Path(monitor_gauges).read_bytes()
        return body, CONTENT_TYPE_LATEST


def _reason_label(reason: str) -> str:
    """A short, low-cardinality label for a fallback reason (the full reason is in the log line)."""
    for key in ("no ONNX graph", "parity", "does not run", "runs on"):
        if key in reason:
            return {"no ONNX graph": "absent", "parity": "parity", "does not run": "unloadable", "runs on": "device"}[key]
    return "other"
