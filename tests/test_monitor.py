"""`ifd monitor` on a real champion: traffic from known tasks raises nothing; an unseen family raises the
unknown-generator alert; a shifted score distribution raises score drift; a model that forgot raises the
forgetting alert; alerts reach a webhook, the Prometheus gauges and, through the flow, Prefect."""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lifecycle_helpers import tiny_lid

from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.data.tasks import TaskData
from ifd.inference.scorer import DetectorScorer
from ifd.lifecycle import retrain as rt
from ifd.lifecycle.review import approve
from ifd.monitoring.run import gauges_path, prediction_log, run_monitor
from ifd.monitoring.service import monitor_champion
from ifd.synth.config import SynthConfig
from ifd.synth.stream import write_stream
from ifd.tracking import model_registry as reg
from ifd.train.state import IncrementalState
from ifd.workspace import Workspace
from ifd.workspace_init import init_workspace
from monitoring.policy import load_policy

QUIET = lambda _: None  # noqa: E731
POLICY_DELTAS = "drift:\n  min_samples: 30\nunknown:\n  min_images: 30\n"


@pytest.fixture(scope="module")
def mon(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace whose champion learned two synthetic families (val splits of 30% make the reference)."""
    base = tmp_path_factory.mktemp("monitor")
    *stream, unseen = write_stream(base / "stream", SynthConfig(tasks=3, per_class=60, size=32, seed=1,
                                                                 train_fraction=0.5, val_fraction=0.3, test_fraction=0.2))
    ws = init_workspace(Workspace.at(base / "ws"))
    for folder in stream:
        ingest_batch(folder, folder.name, ws, IngestConfig())
    (ws.root / "registry").mkdir()
    (ws.root / "registry" / "gate.yaml").write_text("max_old_task_auc_drop: 1.0\nmin_new_task_auc: 0.0\nmax_aa_drop: 1.0\n")
    (ws.root / "monitoring").mkdir()
    (ws.root / "monitoring" / "policy.yaml").write_text(POLICY_DELTAS)
    lid = tiny_lid(img_size=32, epochs=3, budget_per_task=20)
    for version, folder in enumerate(stream, start=1):
        rt.run_retrain(ws, folder.name, lid, progress=QUIET)
        approve(ws, str(version), "alice", "monitor test")
    state = IncrementalState.load(reg.download_state(ws, "2", ws.state_dir / "models" / "v2"))
    return {"ws": ws, "state": state, "tasks": [TaskData.from_batch(ws.batch_dir(f.name)) for f in stream],
            "unseen": TaskData.from_batch(unseen)}


def send(ws: Workspace, state: IncrementalState, paths: list[Path], tag: str) -> None:
    """Score `paths` as the champion would and log them like the scoring API does."""
    scores = DetectorScorer(state).score(paths)
    log = prediction_log(ws)
    for start in range(0, len(paths), 16):
        rows = scores.rows()[start : start + 16]
        log.record(f"{tag}-{start}", "champion", "2", rows, scores.embeddings[start : start + 16])


def clear(ws: Workspace) -> None:
    (ws.state_dir / "monitoring" / "predictions.db").unlink(missing_ok=True)


def test_known_traffic_raises_nothing(mon: dict[str, Any]) -> None:
    ws, state = mon["ws"], mon["state"]
    clear(ws)
    send(ws, state, [t.root / p for t in mon["tasks"] for p in t.split("test")["path"]], "known")
    report = run_monitor(ws, load_policy(ws.root), "2", state, mon["tasks"])
    assert report.values["window"] == 48
    assert report.alerts == [], [a.message for a in report.alerts]
    assert "ifd_alerts_active 0.0" in gauges_path(ws).read_text().replace('{version="2"}', "")


def test_an_unseen_family_raises_the_unknown_generator_alert(mon: dict[str, Any]) -> None:
    ws, state, unseen = mon["ws"], mon["state"], mon["unseen"]
    clear(ws)
    send(ws, state, [unseen.root / p for p in unseen.frame["path"]], "unseen")
    report = run_monitor(ws, load_policy(ws.root), "2", state, mon["tasks"], check_holdout=False)
    kinds = {a.kind for a in report.alerts}
    assert "unknown_generator" in kinds, {k: v for k, v in report.values.items() if "unknown" in k}


def test_a_shifted_score_distribution_raises_score_drift(mon: dict[str, Any]) -> None:
    ws, state = mon["ws"], mon["state"]
    clear(ws)
    images = [t.root / p for t in mon["tasks"] for p in t.frame["path"]]
    p_fake = DetectorScorer(state).score(images).p_fake
    # traffic whose scores sit above the champion's median: the mix has moved toward what it calls fake
    shifted = [img for img, p in zip(images, p_fake, strict=True) if p > float(np.median(p_fake))]
    send(ws, state, shifted, "shifted")
    report = run_monitor(ws, load_policy(ws.root), "2", state, mon["tasks"], check_holdout=False)
    assert "score_drift" in {a.kind for a in report.alerts}, report.values


def test_a_forgetting_model_raises_the_forgetting_alert(mon: dict[str, Any]) -> None:
    ws, state = mon["ws"], mon["state"]
    clear(ws)
    forgot = copy.deepcopy(state)
    torch.manual_seed(0)
    for m in forgot.model.backbone.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight)
    report = run_monitor(ws, load_policy(ws.root), "2", forgot, mon["tasks"])
    alerts = [a for a in report.alerts if a.kind == "forgetting"]
    assert alerts and all(a.value > 0.02 for a in alerts)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alerts_reach_the_webhook_and_the_flow_emits_them(mon: dict[str, Any], prefect_server: None) -> None:
    from flows.monitor import monitor_flow

    ws, state = mon["ws"], mon["state"]
    clear(ws)
    unseen = mon["unseen"]
    send(ws, state, [unseen.root / p for p in unseen.frame["path"]], "unseen")
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (ws.root / "monitoring" / "policy.yaml").write_text(
            POLICY_DELTAS + f"alerts:\n  webhook_url: http://127.0.0.1:{server.server_port}/hook\n"
        )
        report = monitor_flow(root=str(ws.root), holdout=False)
    finally:
        server.shutdown()
        (ws.root / "monitoring" / "policy.yaml").write_text(POLICY_DELTAS)
    assert report["version"] == "2" and report["webhook_error"] is None
    assert _Hook.received and _Hook.received[-1]["alerts"][0]["kind"] in {a["kind"] for a in report["alerts"]}
    assert "# ifd monitor" in report["markdown"]
    assert monitor_champion(str(ws.root), holdout=False)["alerts"]
