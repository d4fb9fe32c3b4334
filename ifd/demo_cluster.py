"""`make demo-cluster`: the demo's loop against a running `make cluster`, every step on its shared servers.

For each batch of the synthetic stream (the cluster workspace's params.yaml `synth`): the ingest flow runs
as a flow run on the cluster's Prefect server and emits `ifd.batch.landed`; the automation of the retrain
deployment (`ifd worker deploy`) hands a retrain to the work pool and one of the cluster's Prefect
workers runs it (learn on top of the champion, gate, an MLflow run on Postgres, a `challenger` version);
the demo approves it as reviewer `demo` (a demo approval, not a human review), waits until every
`ifd serve` replica follows the new champion, and has each replica score a few of the batch's test
images. At the end the monitor flow reads the one Postgres prediction log the replicas wrote.

A cluster started with `--prefect-workers 0` has no pool: the retrain flow then runs in this process
(still on the cluster's Prefect and MLflow servers). The cluster's addresses come from its state file
(`<state>/cluster.json`, written by ifd/servers/cluster.py once every service answered).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace

REVIEWER = "demo"
NOTE = "demo approval: approved automatically by `make demo-cluster`, not reviewed by a person"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
Progress = Callable[[str], None]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def cluster_environment(state: dict[str, Any]) -> Iterator[None]:
    """The cluster's client environment for the duration of the demo (restored after)."""
    saved = {k: os.environ.get(k) for k in state["env"]}
    os.environ.update(state["env"])
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def running_cluster(state_dir: Path) -> dict[str, Any]:
    from ifd.servers.cluster_state import read_state, status

    state = read_state(state_dir)
    if state is None or not status(state_dir)["running"]:
        raise IfdError(f"no running cluster recorded in {state_dir}: start one with `make cluster` "
                       "(or python -m ifd.servers.cluster up) and wait for 'ready'")
    return state


def run_cluster_demo(state_dir: Path | str = ".ifd/cluster", images: int = 4, timeout_s: float = 900.0,
                     progress: Progress = say) -> dict[str, Any]:
    """Run the loop on the cluster in `state_dir`; a summary of every step, the replicas and the monitor."""
    start = time.perf_counter()
    state = running_cluster(Path(state_dir).resolve())
    with cluster_environment(state):
        ws = Workspace.at(state["workspace"]).require()
        steps = [_batch(ws, batch, state, images, timeout_s, progress) for batch in _stream(ws, progress)]
        monitor = _monitor(ws, progress)
    answered = {url: {"images": sum(s["scored"][url]["images"] for s in steps if url in s["scored"]),
                      "request_ids": [s["scored"][url]["request_id"] for s in steps if url in s["scored"]]}
                for url in state["env"]["IFD_SERVE_URLS"].split(",")}
    return {"workspace": str(ws.root), "steps": steps, "replicas": answered, "monitor": monitor,
            "wall_s": round(time.perf_counter() - start, 1)}


def _stream(ws: Workspace, progress: Progress) -> list[Path]:
    from ifd.config import load_config
    from ifd.synth.stream import write_stream

    stream = ws.root / "stream"
    if not (stream / "stream.json").exists():
        cfg = load_config(ws.params_path).synth
        progress(f"[demo-cluster] writing the synthetic stream ({cfg.tasks} generator families) to {stream}")
        write_stream(stream, cfg, overwrite=True)
    return [stream / name for name in json.loads((stream / "stream.json").read_text())["tasks"]]


def _batch(ws: Workspace, batch: Path, state: dict[str, Any], images: int, timeout_s: float,
           progress: Progress) -> dict[str, Any]:
    from ifd.lifecycle.review import approve
    from ifd.tracking.model_registry import CHAMPION, version_by_alias

    began = time.perf_counter()
    step: dict[str, Any] = {"task": batch.name, "version": None, "approved": False, "scored": {}}
    champion = version_by_alias(ws, CHAMPION)
    if champion is not None and batch.name in champion.tasks:
        progress(f"[demo-cluster] {batch.name}: already learned by the champion (version {champion.version})")
        step.update(version=champion.version, approved=True)
    else:
        since = time.time()
        _ingest(ws, batch, progress)
        step.update(_retrain(ws, batch.name, state, since, timeout_s, progress))
        if step["version"] is not None:
            approve(ws, step["version"], REVIEWER, NOTE)
            step["approved"] = True
            progress(f"[demo-cluster] {batch.name}: version {step['version']} passed the gate; approved as a demo approval")
        else:
            progress(f"[demo-cluster] {batch.name}: the gate refused the candidate; the champion stays")
    champion = version_by_alias(ws, CHAMPION)
    if champion is not None:
        step["scored"] = _score_on_replicas(ws, batch.name, champion.version, state, images, timeout_s, progress)
    step["wall_s"] = round(time.perf_counter() - began, 1)
    return step


def _ingest(ws: Workspace, batch: Path, progress: Progress) -> None:
    from flows.ingest import ingest_flow
    from ifd.config import load_config
    from ifd.data.catalog import load_catalog

    if batch.name in load_catalog(ws.catalog_path).names():
        return
    progress(f"[demo-cluster] ingest {batch.name} (flow run on the cluster's Prefect server)")
    ingest_flow(src=str(batch), name=batch.name, root=str(ws.root), cfg=load_config(ws.params_path).ingest.model_dump())


def _retrain(ws: Workspace, name: str, state: dict[str, Any], since: float, timeout_s: float,
             progress: Progress) -> dict[str, Any]:
    if not state.get("prefect_workers"):
        from flows.retrain import retrain_flow

        progress(f"[demo-cluster] retrain {name} in this process (the cluster has no Prefect workers)")
        result = retrain_flow(name=name, root=str(ws.root))
        return {"version": result["version"], "run_id": result["run_id"], "via": "this process"}
    progress(f"[demo-cluster] retrain {name}: waiting for the work pool {state['work_pool']!r} to run it")
    run = _wait_for_triggered_retrain(name, since, timeout_s, progress)
    if run["state"] != "COMPLETED":
        raise IfdError(f"the retrain of {name} ended {run['state']}: {run['message']} (flow run {run['id']}; "
                       f"worker logs in {state['logs']})")
    version = _version_for(ws, name, since)
    return {"version": version, "flow_run": run["id"], "worker": _worker_of(run["id"], Path(state["logs"])),
            "via": f"pool {state['work_pool']}"}


def _wait_for_triggered_retrain(name: str, since: float, timeout_s: float, progress: Progress) -> dict[str, Any]:
    """The retrain flow run the `ifd.batch.landed` automation created for batch `name`, once it is final."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )

    after = datetime.fromtimestamp(since - 5, tz=UTC)
    deadline = time.monotonic() + timeout_s
    seen = ""
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])),
                flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=after)))
            mine = [r for r in runs if r.deployment_id is not None and r.parameters.get("name") == name]
            if mine:
                run = max(mine, key=lambda r: r.created)
                kind = run.state.type.value if run.state else "PENDING"
                if kind != seen:
                    progress(f"[demo-cluster] retrain {name}: flow run {run.name} {kind}")
                    seen = kind
                if kind in TERMINAL:
                    return {"id": str(run.id), "state": kind, "message": run.state.message if run.state else ""}
            time.sleep(1.0)
    raise IfdError(f"no retrain of {name} finished within {timeout_s:.0f} s: is the deployment's automation "
                   "there (`ifd worker deploy`) and are the workers up (`python -m ifd.servers.cluster status`)?")


def _worker_of(flow_run_id: str, logs: Path) -> str | None:
    """Which of the cluster's Prefect workers ran the flow run (its log names the run it submitted)."""
    for log in sorted(logs.glob("prefect-worker-*.log")):
        if flow_run_id in log.read_text(errors="replace"):
            return log.stem
    return None


def _version_for(ws: Workspace, name: str, since: float) -> str | None:
    """The version the retrain of `name` registered (None: the gate refused it)."""
    from ifd.tracking.model_registry import list_versions

    made = [v for v in list_versions(ws) if v.tasks and v.tasks[-1] == name and v.created_ms >= (since - 5) * 1000]
    return max(made, key=lambda v: int(v.version)).version if made else None


def _score_on_replicas(ws: Workspace, name: str, version: str, state: dict[str, Any], images: int,
                       timeout_s: float, progress: Progress) -> dict[str, dict[str, Any]]:
    """Wait until every replica serves `version`, then have each score `images` test images of `name`."""
    import csv

    import httpx

    with (ws.batch_dir(name) / "manifest.csv").open() as f:
        paths = [ws.batch_dir(name) / r["path"] for r in csv.DictReader(f) if r["split"] == "test"][:images]
    scored = {}
    for url in state["env"]["IFD_SERVE_URLS"].split(","):
        _wait_for_champion(url, version, timeout_s)
        files = [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]
        r = httpx.post(f"{url}/v1/score", files=files, timeout=120)
        if r.status_code != 200:
            raise IfdError(f"replica {url} answered {r.status_code}: {r.text[:300]}")
        body = r.json()
        if body["model_version"] != version:
            raise IfdError(f"replica {url} answered with version {body['model_version']}, not the champion {version}")
        scored[url] = {"images": len(body["results"]), "request_id": body["request_id"]}
    progress(f"[demo-cluster] {name}: {len(scored)} replicas scored {len(paths)} images each with version {version}")
    return scored


def _wait_for_champion(url: str, version: str, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            seen = httpx.get(f"{url}/healthz", timeout=10).json().get("champion")
        except (httpx.HTTPError, ValueError):
            seen = None
        if seen == version:
            return
        time.sleep(0.5)
    raise IfdError(f"replica {url} still serves version {seen} after {timeout_s:.0f} s, not the champion {version}")


def _monitor(ws: Workspace, progress: Progress) -> dict[str, Any]:
    from flows.monitor import monitor_flow
    from ifd.monitoring.log_location import ENV_VAR
    from ifd.redact import redact_url

    progress("[demo-cluster] monitor: the checks on the champion over the shared prediction log")
    report = monitor_flow(root=str(ws.root), holdout=False)
    return {"version": report["version"], "window": report["values"]["window"],
            "alerts": [a["kind"] for a in report["alerts"]], "log": redact_url(os.environ[ENV_VAR])}


def summary_text(summary: dict[str, Any]) -> str:
    lines = [f"workspace: {summary['workspace']}"]
    for s in summary["steps"]:
        verdict = f"version {s['version']} approved" if s["approved"] else "refused by the gate"
        lines.append(f"  {s['task']}: {verdict} ({s.get('via', 'earlier run')}; {s['wall_s']} s)")
    lines.append("replicas (images scored): " + ", ".join(f"{u} {r['images']}" for u, r in summary["replicas"].items()))
    m = summary["monitor"]
    lines.append(f"monitor: champion version {m['version']}, {m['window']} predictions in the shared log "
                 f"{m['log']}, alerts: {', '.join(m['alerts']) or 'none'}")
    lines.append(f"wall time: {summary['wall_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ifd.demo_cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("--state-dir", default=".ifd/cluster", help="the running cluster's state folder")
    p.add_argument("--images", type=int, default=4, help="test images each replica scores per batch")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one retrain or replica")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    args = p.parse_args(argv)
    if args.images < 1:
        print("error: --images must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = run_cluster_demo(args.state_dir, args.images, args.timeout)
    except IfdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    print(json.dumps(summary, indent=1, default=str) if args.json else summary_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
