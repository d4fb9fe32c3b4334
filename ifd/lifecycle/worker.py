"""`ifd worker`: serve the retrain flow as a Prefect deployment that every `ifd.batch.landed` event of
this workspace triggers (the ingest flow emits it after a batch is committed).

Event triggers are evaluated by a real Prefect server's automation services, not by the temporary
server a flow starts on its own: run `make prefect` and export PREFECT_API_URL first. The runner
takes one flow run at a time (`limit=1`), and a triggered run waits `wait_s` for the workspace's retrain
lock, so batches that land together retrain one after the other, each on top of the champion.

The workspace comes from the worker's own configuration (`--workspace`, fixed in the deployment's
parameters), never from an event: the trigger passes only the batch name, and a name that is not a
plain batch name of that workspace's catalogue is refused by the retrain. An event that claims
another workspace does not match the trigger at all.
"""

from __future__ import annotations

from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace

EVENT = "ifd.batch.landed"


def landing_trigger(ws: Workspace, wait_s: float) -> Any:
    """A DeploymentEventTrigger on `ifd.batch.landed` events of this workspace, passing the batch name."""
    from prefect.events import DeploymentEventTrigger

    return DeploymentEventTrigger(
        name=f"retrain when a batch lands in {ws.root}",
        expect={EVENT},
        match={"prefect.resource.id": "ifd.batch.*", "ifd.workspace": str(ws.root)},
        parameters={"name": "{{ event.payload.name }}", "wait_s": wait_s},
    )


def serve_retrain(ws: Workspace, wait_s: float = 3600.0, deployment: str | None = None) -> None:
    """Block serving the retrain deployment until interrupted."""
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise IfdError(
            "`ifd worker` needs a running Prefect server: start one with `make prefect`, then "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from flows.retrain import retrain_flow

    ws.require()
    retrain_flow.serve(
        name=deployment or f"retrain-{ws.root.name}",
        triggers=[landing_trigger(ws, wait_s)],
        parameters={"root": str(ws.root)},
        limit=1,
        description=f"Retrain the ifd detector when a batch lands in {ws.root}",
    )
