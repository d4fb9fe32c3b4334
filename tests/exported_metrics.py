"""The Prometheus series a real `ifd serve` exports, for the tests of the alert rules and the dashboard.

A fresh workspace (no champion yet), the monitor's gauge file written by the monitor's own emitter from the
real checks (drift, unknown generator, forgetting, shadow) over a real prediction log, and the real app's
GET /metrics, parsed with prometheus_client's parser. Series names include the suffixes a scrape yields
(`_total`, `_bucket`, `_count`, `_sum`, `_created`) even for labelled families with no sample yet.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created"), "gauge": ("",), "untyped": ("",), "info": ("_info",)}
# ifd's own series names in PromQL or prose (Prometheus' own, like `up`, are not ifd's to export).
PROMQL_WORDS = re.compile(r"\b(ifd_[A-Za-z0-9_:]*)")


def write_monitor_gauges(ws: object, version: str = "3") -> Path:
    """Run the monitor's checks on a logged window against a reference, and emit as `ifd monitor` does."""
    from ifd.monitoring.checks import check_drift, check_forgetting, check_unknown, shadow_report
    from ifd.monitoring.reference import Reference
    from ifd.monitoring.run import MonitorReport, _emit, gauges_path, prediction_log
    from monitoring.policy import load_policy

    rng = np.random.default_rng(0)
    policy = load_policy(ws.root)  # type: ignore[attr-defined]
    log = prediction_log(ws)  # type: ignore[arg-type]
    n = 120
    p = rng.uniform(0.6, 1.0, n)  # shifted towards fake: drift fires
    rows = [{"p_fake": float(x), "label": "fake" if x >= 0.5 else "real", "generator": "blend", "unknown": bool(i % 3 == 0),
             "unknown_score": float(0.5 + x)} for i, x in enumerate(p)]
    emb = rng.normal(1.0, 1.0, (n, 8)).astype(np.float32)
    log.record("r1", "champion", version, rows, emb)
    log.record("r1", "shadow", "4", [dict(r, p_fake=1.0 - r["p_fake"]) for r in rows], emb)
    ref = Reference(version=version, p_fake=rng.uniform(0, 1, 400), embeddings=rng.normal(0, 1, (400, 8)).astype(np.float32),
                    unknown_rate=0.05, unknown_scores=rng.uniform(0, 1, 400))
    win = log.window("champion", policy.window.max_predictions, version=version)
    report = MonitorReport(version)
    for values, alerts in (
        check_drift(ref.p_fake, ref.embeddings, win.p_fake, win.embeddings, policy, version),
        check_unknown(win, ref, policy, version),
        check_forgetting({"blend": 0.91, "warp": 0.99}, {"blend": 0.97, "warp": 0.99}, policy, version),
    ):
        report.values.update(values)
        report.alerts += alerts
    report.values.update(shadow_report(log.paired(policy.window.max_predictions), policy.threshold))
    report.values["ifd_alerts_active"] = len(report.alerts)
    _emit(ws, policy, report)
    return gauges_path(ws)  # type: ignore[arg-type]


def metrics_text(ws: object) -> str:
    """GET /metrics of the real scoring app on `ws` (after the monitor wrote its gauges)."""
    from fastapi.testclient import TestClient

    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource

    write_monitor_gauges(ws)
    source = ModelSource(ws, poll_s=0.0)  # type: ignore[arg-type]
    with TestClient(create_app(ws, ServeConfig(alias_poll_s=0.0), source)) as client:  # type: ignore[arg-type]
        client.post("/v1/score", json={"images": []})  # a request: the request counters get a sample
        resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    return resp.text


def exported_series(text: str) -> set[str]:
    """Every series name a scrape of `text` can hold (families with their type's suffixes, and samples)."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def ifd_names(text: str) -> set[str]:
    """The ifd_* metric names a PromQL expression (or any text) uses."""
    return set(PROMQL_WORDS.findall(text))
