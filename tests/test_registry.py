"""The gated registry on tiny data: challenger, approve, a refused forgetting candidate (no version),
stale approvals, reject, rollback, all-or-nothing registration and the model loaded in a new process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.errors import IfdError
from ifd.lifecycle import retrain as rt
from ifd.lifecycle.review import ReviewRefused, approve, registry_rows, reject, rollback
from ifd.tracking import model_registry as reg
from ifd.train.state import IncrementalState
from ifd.workspace import Workspace
from registry.policy import DEFAULT_POLICY_FILE

LID = tiny_lid(epochs=4, lr=5e-3)  # learns the tiny tasks (val AUC 1.0 here): a forgetting test needs a champion that knew something


def forgetting_candidate(ws: Workspace, name: str, champion: dict[str, Any]) -> dict[str, Any]:
    """A real candidate with every head turned around (real and fake logits swapped): it ranks every task
    backwards, on any split, so the gate (which scores the model on val) sees AUC 1 - a where the champion had a."""
    cand = rt.learn_candidate(ws, name, champion, tiny_lid(epochs=4, lr=5e-3, seed=11), progress=lambda _: None)
    state = IncrementalState.load(Path(cand["state"]))
    with torch.no_grad():
        for head in state.model.heads.heads:
            head.weight.copy_(head.weight.flip(0))
            head.bias.copy_(head.bias.flip(0))
    state.save(Path(cand["state"]))
    return cand


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """task0 -> v1 (approved); a forgetting task1 candidate (refused); task1 -> v2; task2 on v1 -> v3."""
    quiet = lambda _: None  # noqa: E731
    ws = fresh_workspace(tmp_path_factory, "registry")
    s: dict[str, Any] = {"ws": ws}
    s["r0"] = rt.run_retrain(ws, "task0", LID, progress=quiet)
    s["after_r0"] = reg.list_versions(ws)
    s["approve1"] = approve(ws, "1", "alice", "first version")
    s["after_approve1"] = reg.list_versions(ws)

    champion = rt.fetch_champion(ws, quiet)
    cand = forgetting_candidate(ws, "task1", champion)
    s["bad_gate"] = rt.gate_candidate(ws, cand, champion, str(DEFAULT_POLICY_FILE))
    s["bad"] = rt.record_candidate(ws, cand, champion, s["bad_gate"], quiet)
    s["after_bad"] = reg.list_versions(ws)

    s["r1"] = rt.run_retrain(ws, "task1", LID, progress=quiet)
    s["r2"] = rt.run_retrain(ws, "task2", LID, progress=quiet)
    s["after_r2"] = reg.list_versions(ws)
    return s


def test_a_passing_retrain_becomes_the_challenger_with_its_tags(story) -> None:
    (v1,) = story["after_r0"]
    assert story["r0"]["version"] == "1" and v1.aliases == ["challenger"]
    assert v1.tags["gate"] == "passed" and v1.tags["tasks"] == "task0" and v1.tags["parent_version"] == "none"
    assert len(v1.tags["data_version"]) >= 32
    assert {"gate.new_task_auc", "gate.old_task_auc_drop", "gate.aa_drop", "AA", "AF"} <= set(v1.tags)


def test_approve_moves_champion_and_records_who_when_why(story) -> None:
    (v1,) = story["after_approve1"]
    assert v1.aliases == ["champion"]
    assert (v1.tags["decision"], v1.tags["reviewer"], v1.tags["note"]) == ("approved", "alice", "first version")
    assert v1.tags["decided_at"].startswith("20")


def test_a_forgetting_candidate_is_refused_and_no_version_appears(story) -> None:
    assert not story["bad_gate"]["passed"]
    assert "old_task_auc_drop" in story["bad_gate"]["failed_rules"]
    assert story["bad"]["version"] is None
    assert [v.version for v in story["after_bad"]] == ["1"]
    run = reg.client(story["ws"]).get_run(story["bad"]["run_id"])
    assert run.data.tags["gate"] == "failed"
    assert "old_task_auc_drop" in run.data.tags["gate.failed_rules"]
    assert "task0" in run.data.tags["gate.old_task_auc_drop"]
    assert run.info.status == "FINISHED"


def test_the_run_holds_metrics_matrix_card_manifest_config_and_data_version(story) -> None:
    c = reg.client(story["ws"])
    run = c.get_run(story["r1"]["run_id"])
    assert {"AA", "AF", "BWT", "auc.task0", "auc.task1", "acc.task1", "new_task_auc"} <= set(run.data.metrics)
    assert run.data.params["backbone"] == "ifd_cnn_tiny"
    files = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"matrix_auc.json", "matrix_auc.png", "forgetting.png", "model_card.md", "replay_manifest.json", "config.yaml", "gate_report.json"} <= files
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == run.data.tags["data_version"][:36]
    curve = [m.value for m in sorted(c.get_metric_history(run.info.run_id, "AA_curve"), key=lambda m: m.step)]
    assert len(curve) == 2 and curve[-1] == pytest.approx(run.data.metrics["AA"])


def test_a_new_challenger_replaces_the_old_one_and_stale_approval_is_refused(story) -> None:
    ws = story["ws"]
    v2, v3 = story["after_r2"][1:]
    assert (v2.aliases, v3.aliases) == ([], ["challenger"])
    assert v2.tags["parent_version"] == v3.tags["parent_version"] == "1"
    approve(ws, "2", "bob", "task1 looks fine")
    with pytest.raises(ReviewRefused, match="trained on top of version 1, but the champion is now 2"):
        approve(ws, "challenger", "bob", "too late")
    out = reject(ws, "3", "bob", "stale: retrain task2 on top of version 2")
    assert out["decision"] == "rejected"
    assert reg.version_by_alias(ws, "challenger") is None
    with pytest.raises(ReviewRefused, match="already rejected by bob"):
        approve(ws, "3", "carol", "second try")
    rows = {r["version"]: r for r in registry_rows(ws)}
    assert rows["2"]["aliases"] == ["champion"] and rows["3"]["decision"] == "rejected"
    assert rows["2"]["gate_rules"]["new_task_auc"].startswith("passed")


def test_rollback_returns_to_the_previous_approved_version(story) -> None:
    ws = story["ws"]
    if reg.version_by_alias(ws, "champion").version != "2":
        approve(ws, "2", "bob", "task1 looks fine")
    out = rollback(ws, "carol", "task1 misbehaves in production")
    assert (out["champion"], out["rolled_back_from"]) == ("1", "2")
    assert reg.get_version(ws, "2").tags["rolled_back_by"] == "carol"
    with pytest.raises(ReviewRefused, match="no approved version older"):
        rollback(ws, "carol", "again")


def test_only_gate_passed_undecided_versions_with_a_reviewer_can_be_approved(story) -> None:
    ws = story["ws"]
    with pytest.raises(ReviewRefused, match="reviewer"):
        approve(ws, "1", " ", "x")
    with pytest.raises(ReviewRefused, match="already approved"):
        approve(ws, "1", "dave", "again")
    with pytest.raises(reg.RegistryError, match="no version 99"):
        approve(ws, "99", "dave", "x")
    with pytest.raises(reg.RegistryError, match="alias 'nobody'"):
        reg.resolve(ws, "nobody")


def test_registration_is_all_or_nothing(story) -> None:
    """A version whose alias cannot be set ('latest' is reserved) is deleted again; the run is FAILED."""
    from ifd.lifecycle.record import build_record
    from ifd.tracking.retrain_run import log_retrain

    ws = story["ws"]
    before = [v.version for v in reg.list_versions(ws)]
    job = Path(story["r1"]["job"])
    cand = {"job": str(job), "state": str(job / "state.pt"), "tasks": ["task0", "task1"]}
    champion = {"version": "1", "state": rt.fetch_champion(ws, lambda _: None)["state"], "tasks": ["task0"]}
    rec = build_record(ws, cand, champion, rt.gate_candidate(ws, cand, champion))
    with pytest.raises(reg.RegistryError, match="removed again"):
        log_retrain(ws, rec, alias="latest")
    assert [v.version for v in reg.list_versions(ws)] == before
    runs = reg.client(ws).search_runs([reg.client(ws).get_experiment_by_name("ifd-retrain").experiment_id], max_results=1)
    assert runs[0].info.status == "FAILED"


_LOAD = """
import base64, json, sys
import mlflow, numpy as np, pandas as pd
from PIL import Image
paths = json.loads(sys.argv[1])
model = mlflow.pyfunc.load_model("models:/ifd-detector@champion")
items = [paths[0], base64.b64encode(open(paths[1], "rb").read()).decode(), np.asarray(Image.open(paths[2]).convert("RGB")), *paths[3:]]
out = model.predict(pd.DataFrame({"image": items}), params={"allow_paths": True})
try:
    model.predict(pd.DataFrame({"image": [paths[0]]}))
    refused = None
except Exception as exc:
    refused = str(exc)
print(json.dumps({"rows": out.to_dict(orient="records"), "tasks": model.metadata.metadata["tasks"], "refused": refused}))
"""


def test_the_champion_loads_by_alias_in_a_new_process_and_scores_like_the_scorer(story) -> None:
    from ifd.inference.scorer import DetectorScorer
    from ifd.tracking.store import tracking_uri

    ws = story["ws"]
    champion = reg.version_by_alias(ws, "champion")
    state = IncrementalState.load(reg.download_state(ws, champion.version, ws.state_dir / "check"))
    images = sorted(str(p) for p in (ws.batch_dir("task0") / "img").glob("*.png"))[::5][:6]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(ws)}
    proc = subprocess.run([sys.executable, "-c", _LOAD, json.dumps(images)], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = DetectorScorer(state, device="cpu").score(images).rows()
    assert got["tasks"] == state.task_names
    assert got["refused"] is not None and "allow_paths" in got["refused"]  # a path is read only when the caller opts in
    np.testing.assert_allclose([r["p_fake"] for r in got["rows"]], [r["p_fake"] for r in expected], rtol=0, atol=1e-6)
    assert [r["label"] for r in got["rows"]] == [r["label"] for r in expected]
    assert [r["generator"] for r in got["rows"]] == [r["generator"] for r in expected]
    assert [r["unknown"] for r in got["rows"]] == [r["unknown"] for r in expected]


def test_evaluate_a_registered_version_and_a_state_file(story) -> None:
    from ifd.lifecycle.evaluate import evaluate_model

    ws = story["ws"]
    by_alias = evaluate_model(ws, "models:/ifd-detector@champion", progress=lambda _: None)
    assert set(by_alias["tasks"]) == {"task0", "task1", "task2"}
    assert by_alias["learned"] == reg.version_by_alias(ws, "champion").tasks
    job = Path(story["r1"]["job"])
    by_file = evaluate_model(ws, str(job / "state.pt"), progress=lambda _: None)
    assert by_file["learned"] == ["task0", "task1"] and by_file["unseen"] == ["task2"]
    with pytest.raises(IfdError):
        evaluate_model(ws, "missing.pt", progress=lambda _: None)
