"""The retrain flow under Prefect, the CLI around it, a tracking server that does not answer, and two
retrains at once; plain step functions where Prefect adds nothing."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.cli import main
from ifd.lifecycle import retrain as rt
from ifd.tracking import model_registry as reg
from ifd.tracking.retry import TrackingUnavailable, is_transient, with_retries
from ifd.workspace import Workspace

LID = tiny_lid()
quiet = lambda _: None  # noqa: E731


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = fresh_workspace(tmp_path_factory, "flow")
    (ws.root / "params.yaml").write_text("train:\n  preset: paper\n  overrides:\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in LID.items() if v is not None))
    return ws


def cli(*args: str) -> tuple[int, Any]:
    """`ifd ARGS --json` in this process: (exit code, parsed stdout). Not capsys: Prefect's console log
    handler keeps the stream it first saw, and capsys closes its stream after each test."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*args, "--json"])
    return code, (json.loads(buf.getvalue()) if buf.getvalue().strip() else None)


def test_the_flow_registers_a_challenger_and_the_cli_approves_it(ws: Workspace, prefect_server: None) -> None:
    from flows.retrain import retrain_flow

    result = retrain_flow(name="task0", root=str(ws.root), lid=LID)
    assert result["version"] == "1" and result["gate"]["passed"]
    assert reg.version_by_alias(ws, "challenger").version == "1"
    code, out = cli("approve", "1", "--reviewer", "erin", "--note", "ok", "--workspace", str(ws.root))
    assert code == 0 and out["champion"] == "1"
    code, rows = cli("registry", "--workspace", str(ws.root))
    (row,) = rows
    assert (row["aliases"], row["decision"], row["reviewer"]) == (["champion"], "approved", "erin")


def test_cli_retrain_reads_params_and_a_refusal_exits_non_zero(ws: Workspace, prefect_server: None, tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("min_new_task_auc: 1.0\nmax_aa_drop: 0.0\nmax_old_task_auc_drop: 0.0\n")
    code, out = cli("retrain", "task1", "--workspace", str(ws.root), "--policy", str(strict))
    if out["gate"]["passed"]:  # a perfect tiny model can pass even this; then the registry shows it
        assert code == 0 and out["version"]
        return
    assert code == 7 and out["version"] is None
    assert reg.version_by_alias(ws, "challenger") is None


def test_tracking_server_down_retries_then_fails_cleanly_and_resumes(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    champion = rt.fetch_champion(ws, quiet)
    candidate = rt.learn_candidate(ws, "task2", champion, LID, quiet)
    gate = rt.gate_candidate(ws, candidate, champion)
    before = [v.version for v in reg.list_versions(ws)]
    job = Path(candidate["job"])

    lines: list[str] = []
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        m.setenv("IFD_TRACKING_TIMEOUT_S", "2")
        m.setenv("IFD_TRACKING_ATTEMPTS", "3")
        m.setenv("IFD_TRACKING_BACKOFF_S", "0.05")
        started = time.perf_counter()
        with pytest.raises(TrackingUnavailable, match=r"did not answer \(create experiment; 3 attempt"):
            rt.record_candidate(ws, candidate, champion, gate, lines.append)
        assert time.perf_counter() - started < 30
        with pytest.raises(TrackingUnavailable):
            rt.run_retrain(ws, "task2", LID, progress=quiet)
    assert sum("retrying" in line for line in lines) == 2
    assert not (job / rt.RUN_ID_FILE).exists() and not (job / rt.RESULT_FILE).exists()
    assert [v.version for v in reg.list_versions(ws)] == before

    result = rt.record_candidate(ws, candidate, champion, gate, quiet)  # the server is back: same job, done
    assert result["version"] is not None and (job / rt.RESULT_FILE).exists()
    again = rt.run_retrain(ws, "task2", LID, progress=quiet)
    assert again["run_id"] == result["run_id"] and again["version"] == result["version"]
    (job / rt.RESULT_FILE).unlink()  # as if it crashed after registering: same run, same version, no second one
    redone = rt.record_candidate(ws, candidate, champion, gate, quiet)
    assert (redone["run_id"], redone["version"]) == (result["run_id"], result["version"])
    assert len(reg.list_versions(ws)) == len(before) + 1


def test_retry_helper_retries_only_transient_errors() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("Connection refused")
        return "ok"

    assert with_retries(flaky, "flaky", attempts=3, backoff_s=0.0) == "ok" and len(calls) == 3
    assert not is_transient(ValueError("bad request"))
    with pytest.raises(ValueError):
        with_retries(lambda: (_ for _ in ()).throw(ValueError("bad request")), "bad", attempts=5, backoff_s=0.0)


_HOLD = """
import sys, time
from ifd.lifecycle.retrain import retrain_lock
from ifd.workspace import Workspace
with retrain_lock(Workspace.at(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_retrain_is_refused_or_waits_for_the_first(ws: Workspace, prefect_server: None) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(ws.root), "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(rt.RetrainBusy, match="another retrain is running"):
            rt.run_retrain(ws, "task1", LID, progress=quiet)
        assert cli("retrain", "task1", "--workspace", str(ws.root))[0] == 4
        started = time.perf_counter()
        with rt.retrain_lock(ws, wait_s=60):
            waited = time.perf_counter() - started
        assert waited > 0.5
    finally:
        holder.wait(timeout=60)


def test_worker_needs_a_server_and_triggers_on_this_workspace_batches(ws: Workspace) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ifd.errors import IfdError
    from ifd.lifecycle.worker import EVENT, landing_trigger, serve_retrain
    from ifd.workspace_id import ensure_workspace_id

    wid = ensure_workspace_id(ws)
    trigger = landing_trigger(wid, wait_s=30)
    assert trigger.expect == {EVENT}
    # the workspace id from its configuration, never the local path
    assert trigger.match.get("ifd.workspace") in (wid, [wid])
    assert str(ws.root) not in str(trigger.match)
    assert trigger.parameters["name"] == "{{ event.payload.name }}"
    # The workspace is the worker's own (the deployment's fixed `root`), never taken from an event.
    assert "root" not in trigger.parameters
    assert not any("event" in str(v) for k, v in trigger.parameters.items() if k != "name")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(IfdError, match="make prefect"):
            serve_retrain(ws)
