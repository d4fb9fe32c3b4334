"""Alerts: a structured log line always, a JSON POST to the policy's webhook when one is set, and the
latest values as Prometheus gauges in a text file the scoring API exposes on /metrics (and that a
node-exporter textfile collector can read). A webhook that fails is itself reported, never swallowed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger("ifd.alerts")


@dataclass
class Alert:
    """One alert: `kind` (score_drift, embedding_drift, forgetting, unknown_generator, ...), what was
    measured against which threshold, and what to do about it."""

    kind: str
    message: str
    value: float
    threshold: float
    version: str
    action: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def log_alert(alert: Alert) -> str:
    """Write the alert as one JSON log line at WARNING on logger `ifd.alerts`; return the line."""
    line = json.dumps({"alert": alert.kind, **alert.to_dict()}, default=float, sort_keys=True)
    LOG.warning(line)
    return line


def post_webhook(url: str, alerts: Sequence[Alert], timeout_s: float = 5.0) -> str | None:
    """POST {"alerts": [...]} to `url`; returns None on a 2xx answer, else the error (logged at ERROR)."""
    import httpx

    try:
        resp = httpx.post(url, json={"alerts": [a.to_dict() for a in alerts]}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        err = f"webhook {url} failed: {exc}"
    else:
        if 200 <= resp.status_code < 300:
            return None
        err = f"webhook {url} answered {resp.status_code}"
    from ifd.redact import redact_text

    err = redact_text(err, [url])  # the URL is the webhook's secret
    LOG.error(err)
    return err


GAUGES: dict[str, str] = {
    "ifd_score_psi": "PSI of p(fake) against the champion's reference",
    "ifd_score_ks_pvalue": "KS test p-value of p(fake) against the reference",
    "ifd_embedding_mmd_pvalue": "MMD permutation p-value of pooled embeddings against the reference",
    "ifd_unknown_share": "share of recent fakes beyond the unknown-generator threshold",
    "ifd_forgetting_max_drop": "largest holdout AUC drop of any task below its registered value",
    "ifd_shadow_agreement": "share of inputs where champion and challenger give the same label",
    "ifd_alerts_active": "number of alerts raised by the last monitor run",
}
# Per-task gauges (label `task`): the holdout AUC the forgetting check measured, and the registered one.
TASK_GAUGES: dict[str, str] = {
    "ifd_task_auc": "holdout AUC of each task, measured by the last monitor run",
    "ifd_task_auc_registered": "AUC of each task registered with the champion version",
}
# Every kind the monitor checks gets ifd_monitor_alert{kind} 0 or 1, so a rule can tell "checked, fine" from "not run".
ALERT_KINDS: tuple[str, ...] = ("score_drift", "embedding_drift", "unknown_generator", "forgetting", "champion_alias")


def write_gauges(
    path: Path,
    values: dict[str, float],
    labels: dict[str, str] | None = None,
    *,
    alerts: Sequence[Alert] = (),
    per_task: dict[str, dict[str, float]] | None = None,
) -> Path:
    """Write the gauges in Prometheus text format (atomically) for the scoring API's /metrics: `values`
    (names of GAUGES), one `ifd_monitor_alert{kind}` per checked kind (1: `alerts` has one of that kind),
    the per-task AUCs of `per_task` (names of TASK_GAUGES -> {task: AUC}) and the time of this run."""
    import time

    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    labels = labels or {}
    names = sorted(labels)
    for name, doc in GAUGES.items():
        if name in values:
            g = Gauge(name, doc, names, registry=registry)
            (g.labels(**labels) if labels else g).set(float(values[name]))
    fired = {a.kind for a in alerts}
    kinds = Gauge("ifd_monitor_alert", "1 while the last monitor run raised an alert of this kind", [*names, "kind"], registry=registry)
    for kind in sorted(set(ALERT_KINDS) | fired):
        kinds.labels(**labels, kind=kind).set(float(kind in fired))
    for name, doc in TASK_GAUGES.items():
        tasks = (per_task or {}).get(name) or {}
        if tasks:
            g = Gauge(name, doc, [*names, "task"], registry=registry)
            for task, value in tasks.items():
                g.labels(**labels, task=task).set(float(value))
    last = Gauge("ifd_monitor_last_run_timestamp_seconds", "when the last monitor run finished (Unix time)", names, registry=registry)
    (last.labels(**labels) if labels else last).set(time.time())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path
