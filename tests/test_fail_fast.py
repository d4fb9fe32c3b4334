"""Fail fast: a wrong argument or a folder that is not a workspace is reported (exit 2, one line) before
any Prefect server, flow or heavy library starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ifd.cli import main


def _ifd(args: list[str], cwd: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PREFECT_API_URL": ""}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, *extra, "-m", "ifd.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc, time.perf_counter() - started


def _imported(importtime_stderr: str) -> set[str]:
    """Top-level package names in a `python -X importtime` report."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_ingest_outside_a_workspace_exits_2_before_prefect(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "manifest.csv").write_text("path,label,method,split,source_id\n")
    proc, seconds = _ifd(["ingest", str(batch)], tmp_path, "-X", "importtime")
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ifd: error:")]
    assert len(errors) == 1 and "is not an ifd workspace" in errors[0] and "run `ifd init`" in errors[0]
    assert "Traceback" not in proc.stderr
    imported = _imported(proc.stderr)
    assert "ifd" in imported  # the report is real
    assert not imported & {"prefect", "torch", "mlflow", "dvc", "great_expectations", "lightning"}
    assert seconds < 30  # the old path started Prefect's temporary server first (~20 s on this machine)


def test_a_fresh_clone_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A clone of a workspace has .dvc/ and data.dvc, but data/ (not in git) is missing."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "data.dvc").write_text("outs:\n- path: data\n")
    batch = tmp_path / "b"
    batch.mkdir()
    assert main(["ingest", str(batch), "--workspace", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ifd: error:") and "(no data/catalog.json)" in err and "`ifd init`" in err
    assert "\n" not in err


def test_a_missing_workspace_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "--workspace", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["bench", "{tmp}", "--seeds", "0,0"], "distinct"),
        (["bench", "{tmp}/nope"], "not a folder"),
        (["bench", "{tmp}", "--jobs", "0"], "--jobs 0: must be > 0"),
        (["bench", "{tmp}", "--epochs", "-1"], "--epochs -1"),
        (["tune", "--stream", "{tmp}", "--n-trials", "-1"], "--n-trials -1"),
        (["tune", "--stream", "{tmp}", "--space", "{tmp}/space.yaml"], "--space"),
        (["train", "--stream", "{tmp}/nope"], "not a folder"),
        (["synth", "{tmp}/out", "--tasks", "0"], "--tasks 0"),
        (["train", "--stream", "{tmp}", "--params", "{tmp}/params.yaml"], "--params"),
        (["evaluate", "{tmp}/state.pt", "--stream", "{tmp}"], "no such state file"),
    ],
)
def test_wrong_arguments_exit_2_with_one_line(argv: list[str], reason: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("ifd: error:") and reason in err and "\n" not in err
    assert time.perf_counter() - started < 10


def test_arguments_inside_a_workspace(workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(workspace.root)
    folder = tmp_path / "imgs"
    (folder / "real").mkdir(parents=True)
    cases = [
        (["ingest", str(tmp_path / "nope"), "--workspace", root], "no such file or folder"),
        (["ingest", str(folder), "--workspace", root], "no manifest.csv"),
        (["ingest", str(folder), "--format", "folders", "--workspace", root], "real/ and fake/"),
        (["ingest", str(folder), "--format", "deepfakebench", "--workspace", root], "JSON file"),
        (["ingest", str(folder), "--format", "folders", "--name", "bad name!", "--workspace", root], "not allowed"),
        (["retrain", "blend", "--workspace", root], "no ingested batch named 'blend'"),
        (["retrain", "blend", "--wait", "-1", "--workspace", root], "--wait -1"),
        (["monitor", "--every", "0", "--workspace", root], "--every 0"),
        (["monitor", "--policy", str(tmp_path / "p.yaml"), "--workspace", root], "--policy"),
        (["serve", "--port", "70000", "--workspace", root], "--port 70000"),
        (["serve", "--host", "no-such-host.invalid", "--workspace", root], "--host no-such-host.invalid"),
    ]
    (folder / "fake").mkdir()
    for argv, reason in cases[3:]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert reason in err and "\n" not in err, (argv, err)
    (folder / "fake").rmdir()
    for argv, reason in cases[:3]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert reason in err and "\n" not in err, (argv, err)


def test_the_yaml_a_command_reads_is_checked_before_it_starts(workspace, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in params.yaml, the gate policy or the monitoring policy is named (file and field) at once:
    the gate policy is otherwise read only after the candidate has been trained."""
    root = str(workspace.root)
    gate = workspace.root / "registry" / "gate.yaml"
    gate.parent.mkdir(exist_ok=True)
    gate.write_text("max_aa_drop: lots\n")
    assert main(["retrain", "task0", "--workspace", root]) == 2
    err = capsys.readouterr().err.strip()
    assert "gate.yaml: max_aa_drop" in err and "\n" not in err
    gate.unlink()
    bad_monitor = tmp_path / "monitor.yaml"
    bad_monitor.write_text("drift:\n  psi_alrt: 0.2\n")
    assert main(["monitor", "--policy", str(bad_monitor), "--workspace", root]) == 2
    assert "drift.psi_alrt" in capsys.readouterr().err
    (workspace.root / "params.yaml").write_text("synth:\n  tasks: many\n")
    batch = tmp_path / "b"
    batch.mkdir()
    (batch / "manifest.csv").write_text("path,label,method,split,source_id\n")
    assert main(["ingest", str(batch), "--workspace", root]) == 2
    assert "params.yaml: synth.tasks" in capsys.readouterr().err


def test_serve_refuses_a_port_in_use_before_loading_anything(workspace, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--workspace", str(workspace.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err and "\n" not in err


DECISION = ["--reviewer", "alice", "--note", "n"]
WORKSPACE_ARGV = {
    "ingest": ["{tmp}"], "catalog": [], "retrain": ["task0"], "approve": ["1", *DECISION], "reject": ["1", *DECISION],
    "registry": [], "rollback": DECISION, "revert-champion": DECISION, "worker": [], "serve": [], "monitor": [],
    "train": [], "tune": [], "evaluate": ["champion"],
}


@pytest.mark.parametrize("command", sorted(WORKSPACE_ARGV))
def test_every_workspace_command_refuses_a_folder_that_is_not_one(command: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ifd.commands.preflight import WORKSPACE_COMMANDS, WORKSPACE_UNLESS_STREAM

    assert set(WORKSPACE_ARGV) == WORKSPACE_COMMANDS | WORKSPACE_UNLESS_STREAM
    argv = [command, *(a.format(tmp=tmp_path) for a in WORKSPACE_ARGV[command]), "--workspace", str(tmp_path)]
    assert main(argv) == 2
    assert "is not an ifd workspace" in capsys.readouterr().err
