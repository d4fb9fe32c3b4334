"""kill -9 at each named step of `ifd retrain`, then `ifd retrain` again: it resumes, nothing is lost and
nothing is half-registered (one run and one version per client token, no version without its tags).

Real processes: each attempt is `ifd retrain` in a subprocess (against the session's Prefect server)
that SIGKILLs itself at the step `IFD_FAULT_AT` names (ifd/faults.py). The attempts form a chain on one
job: each resumes what the previous one left and dies one step further, and a last one finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.tracking import model_registry as reg
from ifd.tracking.idempotent import TOKEN_TAG
from ifd.workspace import Workspace

STEPS = (
    ("retrain.pinned", None),
    ("retrain.learned", None),
    ("retrain.run_created", "already learned"),
    ("retrain.values_logged", None),
    ("retrain.model_logged", "values: already logged"),
    ("retrain.version_created", "log model: already logged"),
    ("retrain.alias_set", None),
    ("retrain.recorded", None),
)
VERSION_TAGS = {"gate", "tasks", "new_task", "parent_version", "data_version", "AA", "AF", TOKEN_TAG}


def _ifd() -> str:
    return str(Path(sys.executable).with_name("ifd"))


def _env(fault: str | None) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "IFD_TRACKING_BUDGET_S": "20"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("IFD_FAULT_AT", None)
    if fault:
        env["IFD_FAULT_AT"] = fault
    return env


def _retrain(ws: Workspace, fault: str | None) -> subprocess.CompletedProcess[str]:
    cmd = [_ifd(), "retrain", "task0", "--workspace", str(ws.root), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(fault), timeout=300)


def _token_runs(ws: Workspace, token: str) -> list[Any]:
    c = reg.client(ws)
    exp = c.get_experiment_by_name("ifd-retrain")
    return [] if exp is None else list(c.search_runs([exp.experiment_id], filter_string=f"tags.`{TOKEN_TAG}` = '{token}'"))


def _assert_nothing_half_made(ws: Workspace) -> None:
    versions = reg.list_versions(ws)
    assert len(versions) <= 1, [v.version for v in versions]
    for v in versions:
        assert VERSION_TAGS <= set(v.tags), f"version {v.version} lacks {VERSION_TAGS - set(v.tags)}"
    runs = reg.client(ws).search_runs([e.experiment_id for e in reg.client(ws).search_experiments()])
    tokens = [r.data.tags.get(TOKEN_TAG) for r in runs]
    assert len(tokens) == len(set(tokens)), "two runs share one client token"


@pytest.mark.slow
def test_kill_at_every_retrain_step_then_retrain_again(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> None:
    ws = fresh_workspace(tmp_path_factory, "crash")
    lid = tiny_lid()
    overrides = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in lid.items() if v is not None)
    (ws.root / "params.yaml").write_text("train:\n  preset: paper\n  overrides:\n" + overrides)
    previous_stderr = ""
    for step, resumed in STEPS:
        proc = _retrain(ws, step)
        assert proc.returncode == -signal.SIGKILL, f"{step}: rc {proc.returncode}\n{proc.stderr[-3000:]}"
        assert f"SIGKILL at {step}" in proc.stderr
        if resumed:
            assert resumed in proc.stderr, f"after the kill before {step}, the rerun did not resume: {proc.stderr[-2000:]}"
        _assert_nothing_half_made(ws)
        previous_stderr = proc.stderr
    assert "already" in previous_stderr

    final = _retrain(ws, None)
    assert final.returncode == 0, final.stderr[-3000:]
    result = json.loads(final.stdout)
    (job,) = [p for p in (ws.state_dir / "retrain").iterdir() if p.is_dir()]
    token = (job / "client_token").read_text().strip()

    runs = _token_runs(ws, token)
    assert [r.info.run_id for r in runs] == [result["run_id"]]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["registered_version"] == result["version"] == "1"
    (version,) = reg.list_versions(ws)
    assert VERSION_TAGS <= set(version.tags) and version.tags[TOKEN_TAG] == token
    assert version.aliases == ["challenger"] and version.run_id == result["run_id"]
    assert version.tags["data_version"] == result["data_version"] == json.loads((job / "data_pin.json").read_text())["data_version"]

    c = reg.client(ws)
    models = list(c.search_logged_models([runs[0].info.experiment_id], filter_string=f"tags.`{TOKEN_TAG}` = '{token}'"))
    assert len(models) == 1 and str(models[0].status).endswith("READY")
    # Resumed logging steps ran once: the AA curve has one point per task, not one per attempt.
    assert len(c.get_metric_history(result["run_id"], "AA_curve")) == 1
    assert (job / "result.json").is_file() and not (job / "data").exists()  # the snapshot is released once recorded
