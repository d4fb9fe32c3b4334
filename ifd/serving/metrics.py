"""Prometheus metrics of the scoring API, in a registry of its own (no process-wide globals), plus the
monitor's latest gauges (drift, forgetting, unknown share) read from the file `ifd monitor` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ApiMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

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

    def observe_request(self, status: int, seconds: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(seconds)

    def observe_scores(self, version: str, p_fake: np.ndarray) -> None:
        h = self.scores.labels(version=version)
        for p in p_fake:
            h.observe(float(p))

    def render(self, monitor_gauges: Path) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.registry)
        if Path(monitor_gauges).is_file():
            body += Path(monitor_gauges).read_bytes()
        return body, CONTENT_TYPE_LATEST
