"""The monitor flow: resolve the champion -> run every check -> alerts as Prefect events and a Markdown
artifact. `ifd monitor --every N` serves it on an interval (needs a Prefect server: `make prefect`)."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from ifd.monitoring import service
from ifd.workspace import Workspace
from ifd.workspace_id import read_workspace_id


@task(name="run-checks")
def checks(root: str, policy_path: str | None, holdout: bool) -> dict[str, Any]:
    return service.monitor_champion(root, policy_path, holdout=holdout)


@flow(name="monitor", log_prints=True)
def monitor_flow(root: str = ".", policy_path: str | None = None, holdout: bool = True) -> dict[str, Any]:
    report = checks(root, policy_path, holdout)
    ws = Workspace.at(root)
    workspace = read_workspace_id(ws) or str(ws.root)  # the id automations match; a workspace without one: its path
    for alert in report["alerts"]:
        emit_event(
            event=f"ifd.alert.{alert['kind']}",
            resource={"prefect.resource.id": f"ifd.model.version.{report['version']}", "ifd.workspace": workspace},
            payload=alert,
        )
    create_markdown_artifact(markdown=report["markdown"], key="ifd-monitor-report", description="ifd monitor: alerts and values")
    print(f"monitor: champion v{report['version']}, {len(report['alerts'])} alert(s)")
    return report
