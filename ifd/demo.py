"""`ifd demo`: the whole loop on the embedded synthetic stream, in a workspace of its own.

synth -> init workspace -> for each batch: the ingest flow (validate, DVC), the retrain flow (learn on
top of the champion, gate, MLflow run + `challenger` version) and an approval by reviewer "demo"
(tagged as a demo approval, not a human review) -> summary of the final champion (AA, AF, per-task
AUC, versions, where the plots are), with a bar over the batches (and each retrain's epochs) on a
terminal. With `naive_check`, a naive fine-tuning candidate of the last batch
goes through the same gate first, to show a forgetting model refused with the rule named (off by
default: it costs one more task's training out of the 10-minute budget).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ifd.config import IfdConfig
from ifd.lifecycle.retrain import say
from ifd.progress import steps as progress_steps
from ifd.workspace import Workspace

REVIEWER = "demo"
NOTE = "demo approval: approved automatically by `ifd demo`, not reviewed by a person"
Progress = Callable[[str], None]


def run_demo(root: Path, cfg: IfdConfig, fresh: bool = True, progress: Progress = say, naive_check: bool = False) -> dict[str, Any]:
    """Run the loop; `fresh` starts from an empty workspace, else resumes what an earlier run left.

    `naive_check` adds one naive fine-tuning candidate before the last batch (one more task's training).
    """
    from ifd.prefect_env import prefect_environment
    from ifd.workspace_init import init_workspace

    start = time.perf_counter()
    ws = Workspace.at(root)
    if fresh and ws.root.exists():
        shutil.rmtree(ws.root)
    init_workspace(ws)
    batches = _stream(ws, cfg, progress)
    lid = cfg.lid().model_dump(mode="json")
    steps: list[dict[str, Any]] = []
    with prefect_environment(), progress_steps(progress, len(batches), "batches") as bar:
        for i, batch in enumerate(batches):
            bar.start(f"{batch.name}: ingest, retrain, approve")
            _ingest(ws, batch, cfg, progress)
            if naive_check and i == len(batches) - 1 and i > 0:
                steps.append(_naive_candidate(ws, batch.name, lid, progress))
            steps.append(_retrain_and_approve(ws, batch.name, lid, progress))
            bar.advance(skipped="run_id" not in steps[-1])  # a batch an earlier run already learned took no work
    summary = _summary(ws, steps)
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    summary["text"] += f"\nwall time: {summary['wall_s']} s"
    return summary


def _stream(ws: Workspace, cfg: IfdConfig, progress: Progress) -> list[Path]:
    from ifd.synth.stream import write_stream

    stream = ws.root / "stream"
    if not (stream / "stream.json").exists():
        progress(f"[demo] writing the synthetic stream ({cfg.synth.tasks} generator families) to {stream}")
        write_stream(stream, cfg.synth)
    order = json.loads((stream / "stream.json").read_text())["tasks"]
    return [stream / name for name in order]


def _ingest(ws: Workspace, batch: Path, cfg: IfdConfig, progress: Progress) -> None:
    from flows.ingest import ingest_flow
    from ifd.data.catalog import load_catalog

    if batch.name in load_catalog(ws.catalog_path).names():
        return
    progress(f"[demo] ingest {batch.name}")
    ingest_flow(src=str(batch), name=batch.name, root=str(ws.root), cfg=cfg.ingest.model_dump())


def _retrain_and_approve(ws: Workspace, name: str, lid: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from flows.retrain import retrain_flow
    from ifd.lifecycle.review import approve
    from ifd.tracking.model_registry import CHAMPION, version_by_alias

    champion = version_by_alias(ws, CHAMPION)
    if champion is not None and name in champion.tasks:
        progress(f"[demo] {name}: already learned by the champion (version {champion.version})")
        return {"task": name, "version": champion.version, "approved": True, "kind": "lid"}
    progress(f"[demo] retrain {name}")
    result = retrain_flow(name=name, root=str(ws.root), lid=lid)
    step = {"task": name, "kind": "lid", "version": result["version"], "run_id": result["run_id"], "gate": result["gate"]}
    if result["version"]:
        approve(ws, result["version"], REVIEWER, NOTE)
        progress(f"[demo] {name}: version {result['version']} passed the gate; approved as a demo approval")
        step["approved"] = True
    else:
        progress(f"[demo] {name}: the gate refused the candidate ({', '.join(result['gate']['failed_rules'])}); the champion stays")
        step["approved"] = False
    return step


def _naive_candidate(ws: Workspace, name: str, lid: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Naive fine-tuning of `name` on top of the champion, through the same gate (expected: refused)."""
    from flows.retrain import retrain_flow
    from ifd.continual.config import LIDConfig
    from ifd.lifecycle.review import reject
    from ifd.train.variants import naive_config

    progress(f"[demo] gate check: a naive fine-tuning candidate for {name} (no replay, no isolation loss)")
    naive = naive_config(LIDConfig.model_validate(lid)).model_dump(mode="json")
    result = retrain_flow(name=name, root=str(ws.root), lid=naive)
    step = {"task": name, "kind": "naive", "version": result["version"], "run_id": result["run_id"], "gate": result["gate"], "approved": False}
    if result["version"]:
        reject(ws, result["version"], REVIEWER, "demo: the naive fine-tuning baseline is never deployed")
        progress(f"[demo] naive candidate passed the gate (version {result['version']}); rejected by the demo")
    else:
        progress(f"[demo] naive candidate refused by the gate: {', '.join(result['gate']['failed_rules'])}")
    return step


def _summary(ws: Workspace, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Retention of the final champion, the registry, plots and where to look."""
    from ifd.eval.report import retention_summary, summary_text, write_plots
    from ifd.lifecycle.evaluate import load_model_state
    from ifd.lifecycle.gate import GateReport
    from ifd.lifecycle.review import registry_rows, registry_text
    from ifd.redact import redact_url
    from ifd.tracking.store import tracking_uri

    rows = registry_rows(ws)
    out: dict[str, Any] = {"workspace": str(ws.root), "steps": steps, "versions": rows, "tracking_uri": redact_url(tracking_uri(ws))}
    lines = []
    if any(r["aliases"] and "champion" in r["aliases"] for r in rows):
        state, about = load_model_state(ws, "champion")
        metrics = retention_summary(state.matrix)
        plots = write_plots(state.matrix, ws.artifacts_dir / "demo", label=f"champion (version {about['version']})")
        out.update({k: metrics[k] for k in ("AA", "AF", "BWT", "final_auc", "tasks")}, champion=about["version"], plots=plots)
        lines += [f"champion: version {about['version']}", summary_text(metrics), f"plots: {plots['matrix_auc']}, {plots['forgetting']}"]
    else:
        lines.append("no champion: every candidate was refused by the gate")
    refused = [s for s in steps if s["version"] is None]
    for s in refused:
        failed = [r.detail for r in GateReport.from_dict(s["gate"]).rules if not r.passed]
        lines.append(f"refused by the gate: {s['task']} ({s['kind']}): " + "; ".join(failed))
    lines += ["", "registry (ifd registry):", registry_text(rows), ""]
    lines.append(f"MLflow UI: mlflow ui --backend-store-uri {out['tracking_uri']}  (experiment ifd-retrain, model ifd-detector)")
    out["text"] = "\n".join(lines)
    return out
