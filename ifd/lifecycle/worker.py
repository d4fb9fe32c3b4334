"""The retrain trigger, and `ifd worker` (serve mode): every `ifd.batch.landed` event of this workspace
starts a retrain.

Two ways to run the triggered retrain, one trigger and one flow:
- `ifd worker deploy` + `ifd worker start` (ifd/lifecycle/deploy.py): a deployment on a Prefect process
  work pool; any number of workers on any machines; one retrain at a time through the global
  concurrency limit `retrain`. The way to scale out.
- `ifd worker` (serve mode, here): one process serves the deployment itself (`flow.serve`, one run at a
  time), no pool needed; for one machine. Runs still take the `retrain` limit when the server has it
  (a deploy made it), so serve mode and pool workers never retrain at once either.

Event triggers are evaluated by a real Prefect server's automation services, not by the temporary
server a flow starts on its own: run `make prefect` and export PREFECT_API_URL first.

The trigger matches the event's `ifd.workspace` against the workspace id (params.yaml `workspace_id`,
ifd/workspace_id.py), never a local path, so an ingest on any machine triggers the deployment of the
same workspace. The workspace root comes from the deployment's own parameters (the deployer's
`--workspace`), never from an event: the trigger passes only the batch name, and a name that is not a
plain batch name of that workspace's catalogue is refused by the retrain.
"""

from __future__ import annotations

from typing import Any

from ifd.workspace import Workspace

EVENT = "ifd.batch.landed"


def landing_trigger(workspace_id: str, wait_s: float) -> Any:
    """A DeploymentEventTrigger on `ifd.batch.landed` events of workspace `workspace_id`, passing the batch name."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name=f"retrain when a batch lands in workspace {workspace_id}",
        expect={EVENT},
        match={"prefect.resource.id": "ifd.batch.*", "ifd.workspace": workspace_id},
        parameters={"name": "{{ event.payload.name }}", "wait_s": wait_s},
    )


def serve_retrain(ws: Workspace, wait_s: float = 3600.0, deployment: str | None = None) -> None:
    """Block serving the retrain deployment until interrupted."""
    from ifd.lifecycle.deploy import require_api_url
    from ifd.workspace_id import ensure_workspace_id

    require_api_url("ifd worker")
    from flows.retrain import retrain_flow

    ws.require()
    workspace_id = ensure_workspace_id(ws)
    retrain_flow.serve(
        name=deployment or f"retrain-{ws.root.name}",
        triggers=[landing_trigger(workspace_id, wait_s)],
        parameters={"root": str(ws.root)},
        limit=1,
        description=f"Retrain the ifd detector when a batch lands in workspace {workspace_id} ({ws.root})",
    )
