"""One monitor run: read the recent predictions, run every check against the champion's reference, emit
the alerts (log line, webhook, Prometheus gauges) and return a report with a Markdown summary and plots.

The caller resolves which version is the champion (the registry) and hands over its state; the run
also checks that `champion` is where ifd put it (ifd/monitoring/alias_audit.py). The flow in
flows/monitor.py adds Prefect events and the Markdown artifact. The webhook URL is a secret: it never
appears in the report, its Markdown or a log line (ifd/redact.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ifd.data.tasks import TaskData
from ifd.monitoring.alerts import Alert, log_alert, post_webhook, write_gauges
from ifd.monitoring.checks import check_drift, check_forgetting, check_unknown, shadow_report
from ifd.monitoring.prediction_log import PredictionLog
from ifd.monitoring.reference import Reference, build_reference
from ifd.workspace import Workspace
from monitoring.policy import MonitorPolicy


def monitoring_dir(ws: Workspace) -> Path:
    return ws.state_dir / "monitoring"


def prediction_log(ws: Workspace) -> PredictionLog:
    """The workspace's log: IFD_PREDICTION_LOG_URL, else params.yaml's, else .ifd/monitoring/predictions.db."""
    from ifd.monitoring.log_location import prediction_log_target

    return PredictionLog(prediction_log_target(ws))


def gauges_path(ws: Workspace) -> Path:
    return monitoring_dir(ws) / "ifd_monitor.prom"


def reference_for(ws: Workspace, version: str, scorer: Any, tasks: Sequence[TaskData]) -> Reference:
    """The cached reference of `version`, built from the tasks' validation splits on first use."""
    path = monitoring_dir(ws) / f"reference-{version}.npz"
    if path.is_file():
        return Reference.load(path)
    ref = build_reference(scorer, tasks, version)
    ref.save(path)
    return ref


@dataclass
class MonitorReport:
    version: str
    values: dict[str, Any] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    webhook_error: str | None = None
    markdown: str = ""
    plots: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "values": self.values, "alerts": [a.to_dict() for a in self.alerts],
                "webhook_error": self.webhook_error, "markdown": self.markdown, "plots": self.plots}


def run_monitor(
    ws: Workspace,
    policy: MonitorPolicy,
    version: str,
    state: Any,
    tasks: Sequence[TaskData],
    *,
    check_holdout: bool = True,
    audit_alias: bool = True,
) -> MonitorReport:
    """Every check on the last `policy.window.max_predictions` champion predictions; `tasks` are the
    champion's tasks (their val splits make the reference, their test splits the forgetting holdout)."""
    from ifd.inference.scorer import DetectorScorer

    scorer = DetectorScorer(state, threshold=policy.threshold)
    ref = reference_for(ws, version, scorer, tasks)
    log = prediction_log(ws)
    win = log.window("champion", policy.window.max_predictions, version=version)
    report = MonitorReport(version)
    report.values["window"] = len(win)
    for values, alerts in (
        check_drift(ref.p_fake, ref.embeddings, win.p_fake, win.embeddings, policy, version) if len(win) else ({"drift": "no predictions"}, []),
        check_unknown(win, ref, policy, version),
    ):
        report.values.update(values)
        report.alerts += alerts
    if check_holdout:
        values, alerts = _forgetting(state, tasks, policy, version)
        report.values.update(values)
        report.alerts += alerts
    report.values.update(shadow_report(log.paired(policy.window.max_predictions), policy.threshold))
    if audit_alias:
        values, alerts = _audit(ws)
        report.values.update(values)
        report.alerts += alerts
    report.values["ifd_alerts_active"] = len(report.alerts)
    _emit(ws, policy, report)
    report.plots = _plots(ws, ref, win.p_fake, version)
    report.markdown = markdown(report)
    return report


def _forgetting(state: Any, tasks: Sequence[TaskData], policy: MonitorPolicy, version: str) -> tuple[dict[str, Any], list[Alert]]:
    from ifd.train.evaluate import evaluate_row

    aucs, _ = evaluate_row(state.model, tasks, img_size=int(state.cfg.img_size))
    now = dict(zip([t.name for t in tasks], aucs, strict=True))
    registered = dict(zip(state.matrix.task_names, state.matrix.final_row("auc"), strict=True))
    return check_forgetting(now, registered, policy, version)


def _audit(ws: Workspace) -> tuple[dict[str, Any], list[Alert]]:
    """The champion-alias audit; a registry that does not answer is reported, not fatal to the monitor."""
    from ifd.errors import IfdError
    from ifd.monitoring.alias_audit import audit_champion
    from ifd.redact import redact_text

    try:
        return audit_champion(ws)
    except IfdError as exc:
        return {"champion_alias": f"not checked: {redact_text(str(exc))}"}, []


def _emit(ws: Workspace, policy: MonitorPolicy, report: MonitorReport) -> None:
    from ifd.redact import redact_text

    for alert in report.alerts:
        log_alert(alert)
    if report.alerts and policy.alerts.webhook_url:
        url = policy.alerts.webhook_url
        error = post_webhook(url, report.alerts, policy.alerts.webhook_timeout_s)
        report.webhook_error = None if error is None else redact_text(error, [url])
    gauges = {k: float(v) for k, v in report.values.items() if k.startswith("ifd_") and isinstance(v, int | float)}
    per_task = {"ifd_task_auc": report.values.get("holdout_auc") or {}, "ifd_task_auc_registered": report.values.get("registered_auc") or {}}
    write_gauges(gauges_path(ws), gauges, {"version": report.version}, alerts=report.alerts, per_task=per_task)


def _plots(ws: Workspace, ref: Reference, p: np.ndarray, version: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ifd.eval.plots import save_figure

    out = monitoring_dir(ws) / f"scores-{version}.png"
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bins = np.linspace(0, 1, 21)
    ax.hist(ref.p_fake, bins, alpha=0.5, density=True, label="reference (val)")
    if len(p):
        ax.hist(p, bins, alpha=0.5, density=True, label="recent traffic")
    ax.set_xlabel("p(fake)")
    ax.legend()
    ax.set_title(f"score distribution, version {version}")
    return {"scores": str(save_figure(fig, out, dpi=100))}


def markdown(report: MonitorReport) -> str:
    lines = [f"# ifd monitor: champion version {report.version}", ""]
    if report.alerts:
        lines += ["## Alerts", ""] + [f"- **{a.kind}**: {a.message}. {a.action}" for a in report.alerts] + [""]
    else:
        lines += ["No alerts.", ""]
    lines += ["## Values", "", "| measure | value |", "|---|---|"]
    for k, v in report.values.items():
        if isinstance(v, float):
            lines.append(f"| {k} | {v:.4g} |")
        elif isinstance(v, int | str):
            lines.append(f"| {k} | {v} |")
    if report.webhook_error:
        lines += ["", f"Webhook failed: {report.webhook_error}"]
    return "\n".join(lines) + "\n"
