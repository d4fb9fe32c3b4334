"""kill -9 in the middle of `ifd approve` (decision tagged, `champion` not moved yet): the reviewer runs
the same command again and it finishes the approval instead of refusing it as already decided."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.lifecycle import retrain as rt
from ifd.lifecycle.champion import recorded
from ifd.monitoring.alias_audit import audit_champion
from ifd.tracking import model_registry as reg


def _approve(root: Path, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "IFD_FAULT_AT")}
    if fault:
        env["IFD_FAULT_AT"] = fault
    cmd = [str(Path(sys.executable).with_name("ifd")), "approve", "1", "--reviewer", "alice", "--note", "ok", "--workspace", str(root)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_an_interrupted_approval_is_finished_by_the_same_command(tmp_path_factory: pytest.TempPathFactory) -> None:
    ws = fresh_workspace(tmp_path_factory, "approve-crash")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=lambda _: None)
    killed = _approve(ws.root, "review.decision_tagged")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    v1 = reg.get_version(ws, "1")
    assert v1.tags["decision"] == "approved" and "champion" not in v1.aliases and recorded(ws) is None
    assert audit_champion(ws)[1] == []  # nothing moved yet: nothing to report

    again = _approve(ws.root, None)
    assert again.returncode == 0, again.stderr[-2000:]
    v1 = reg.get_version(ws, "1")
    assert v1.aliases == ["champion"] and v1.tags["reviewer"] == "alice" and recorded(ws)["version"] == "1"
    other = subprocess.run(
        [str(Path(sys.executable).with_name("ifd")), "approve", "1", "--reviewer", "bob", "--note", "me too", "--workspace", str(ws.root)],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, timeout=300,
    )  # fmt: skip
    assert other.returncode == 6 and "already approved by alice" in other.stderr
