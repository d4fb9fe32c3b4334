"""Two reviewers approve at once, as two real `ifd approve` processes: exactly one wins, the other is
refused with a one-line reason, and the registry shows one consistent decision.

`IFD_FAULT_AT=review.checked=sleep:S` holds each process between its checks and its writes, so
without the registry lock both would pass the checks and both would write.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.lifecycle import retrain as rt
from ifd.lifecycle.champion import recorded
from ifd.lifecycle.review import approve
from ifd.tracking import model_registry as reg
from ifd.workspace import Workspace

quiet = lambda _: None  # noqa: E731
pytestmark = pytest.mark.slow  # two rounds of two `ifd approve` processes on 2 cores


def _approve_both(ws: Workspace, first: tuple[str, str], second: tuple[str, str]) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "IFD_FAULT_AT": "review.checked=sleep:3"}
    env.pop("MLFLOW_TRACKING_URI", None)
    ifd = str(Path(sys.executable).with_name("ifd"))
    procs = [
        subprocess.Popen(
            [ifd, "approve", version, "--reviewer", who, "--note", f"{who} approves", "--workspace", str(ws.root)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for version, who in (first, second)
    ]  # fmt: skip
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate()) for p in procs]


def _one_wins(results: list[subprocess.CompletedProcess[str]]) -> tuple[int, str]:
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 6], [(r.returncode, r.stderr[-1500:]) for r in results]
    loser = next(r for r in results if r.returncode == 6)
    assert len(loser.stderr.strip().splitlines()) == 1 and loser.stderr.startswith("ifd: error:"), loser.stderr
    return next(i for i, r in enumerate(results) if r.returncode == 0), loser.stderr


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = fresh_workspace(tmp_path_factory, "concurrent")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=quiet)
    return ws


def test_two_approvals_of_one_version(ws: Workspace) -> None:
    results = _approve_both(ws, ("1", "alice"), ("1", "bob"))
    winner, refusal = _one_wins(results)
    who = ("alice", "bob")[winner]
    assert "already approved by " + who in refusal
    v1 = reg.get_version(ws, "1")
    assert (v1.tags["decision"], v1.tags["reviewer"], v1.aliases) == ("approved", who, ["champion"])
    assert recorded(ws)["by"] == who


def test_two_approvals_of_rival_candidates(ws: Workspace) -> None:
    """v2 and v3 are both trained on v1; approving both would drop what the first one learned."""
    if reg.version_by_alias(ws, reg.CHAMPION) is None:
        approve(ws, "1", "carol", "setup")
    rt.run_retrain(ws, "task1", tiny_lid(), progress=quiet)
    rt.run_retrain(ws, "task2", tiny_lid(), progress=quiet)
    results = _approve_both(ws, ("2", "alice"), ("3", "bob"))
    winner, refusal = _one_wins(results)
    won, lost = ("2", "3") if winner == 0 else ("3", "2")
    assert f"but the champion is now {won}" in refusal
    assert reg.version_by_alias(ws, reg.CHAMPION).version == won
    assert "decision" not in reg.get_version(ws, lost).tags
    assert recorded(ws)["version"] == won
