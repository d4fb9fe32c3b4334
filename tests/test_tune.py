"""`ifd tune`: a multi-objective study shared by two workers, a single-objective study that prunes, every
trial an MLflow run, the Pareto plot, the search space, and best settings written into params.yaml."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import yaml
from test_train_data import write_tiny_batch

from ifd.data.tasks import TaskData, tasks_from_stream
from ifd.errors import ConfigError, IfdError
from ifd.workspace import Workspace


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    for t in range(3):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=9)
    return root


@pytest.fixture(scope="module")
def tasks(stream: Path) -> list[TaskData]:
    return tasks_from_stream(stream)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One workspace (and so one MLflow database, ~9 s to create) for the module."""
    return Workspace.at(tmp_path_factory.mktemp("ws"))


def tiny_cfg():
    from ifd.continual.config import LIDConfig

    return LIDConfig(backbone="ifd_cnn_tiny", img_size=16, epochs=1, batch_size=8, step_size=1, replay_per_class_per_task=2)


def settings(**kw: object):
    from ifd.tune.study import TuneSettings

    return TuneSettings(**{"sampler_seed": 0, "final_test": False, **kw})


def test_multi_objective_study_shared_by_two_workers_logs_every_trial(tasks: list[TaskData], ws: Workspace) -> None:
    from ifd.tracking.trials import study_runs
    from ifd.tune.study import run_study

    first = run_study(tasks, tiny_cfg(), ws, settings(mode="multi", n_trials=1, study_name="mo"), progress=lambda _: None)
    second = run_study(tasks, tiny_cfg(), ws, settings(mode="multi", n_trials=1, study_name="mo"), progress=lambda _: None)
    assert first["trials"]["complete"] == 1 and second["trials"]["complete"] == 2  # the second worker joined
    assert (ws.state_dir / "optuna.db").is_file()
    assert second["pareto"] and second["best"] in second["pareto"]
    assert Path(second["plot"]).is_file()
    runs = study_runs(ws, "ifd-tune", "mo")
    assert sorted(r["trial"] for r in runs) == [0, 1]
    for r in runs:
        assert r["status"] == "FINISHED" and r["state"] == "COMPLETE"
        assert {"AA", "AF", "AF_chaudhry", "BWT", "AA_t"} <= r["metrics"].keys()
        assert {"weight_iso", "ida_newest_gamma", "temperature", "budget_per_task", "lsda_noise", "lr"} <= r["params"].keys()
    from ifd.tracking.store import client

    c = client(ws)
    matrix = json.loads(Path(c.download_artifacts(runs[0]["run_id"], "matrix.json", str(ws.root))).read_text())
    assert [len(r) for r in matrix["auc"]] == [1, 2, 3]


def test_single_objective_study_prunes_after_the_first_task(tasks: list[TaskData], ws: Workspace) -> None:
    import optuna

    from ifd.tracking.trials import study_runs
    from ifd.tune.study import run_study

    report = run_study(tasks, tiny_cfg(), ws, settings(mode="single", n_trials=2, study_name="so"),
                       pruner=optuna.pruners.ThresholdPruner(lower=1.1), progress=lambda _: None)
    assert report["trials"] == {"complete": 0, "pruned": 2, "fail": 0}
    assert report["best"] is None and report["pareto"] == []
    runs = study_runs(ws, "ifd-tune", "so")
    assert len(runs) == 2
    for r in runs:
        assert r["state"] == "PRUNED" and r["status"] == "KILLED"
        assert "AA" in r["metrics"]  # what it had learned (one task) is logged
    with pytest.raises(IfdError, match="no finished trial"):
        run_study(tasks, tiny_cfg(), ws, settings(mode="single", n_trials=0, study_name="so"),
                  write_params=ws.root / "params.yaml", progress=lambda _: None)


def test_a_study_keeps_its_mode(ws: Workspace) -> None:
    from ifd.tune.study import open_study

    open_study(settings(mode="single", study_name="kept"), ws)
    with pytest.raises(IfdError, match="--mode"):
        open_study(settings(mode="multi", study_name="kept"), ws)


def test_write_params_merges_overrides_and_keeps_comments(tmp_path: Path) -> None:
    from ifd.tune.params_io import write_overrides

    path = tmp_path / "params.yaml"
    path.write_text("# my comment\nsynth:\n  tasks: 6\ntrain:\n  preset: paper\n  overrides: {epochs: 3}\n")
    write_overrides(path, {"weight_iso": 1.234567891, "budget_per_task": 100})
    text = path.read_text()
    assert text.startswith("# my comment")
    data = yaml.safe_load(text)
    assert data["train"]["overrides"] == {"epochs": 3, "weight_iso": 1.23457, "budget_per_task": 100}
    with pytest.raises(ConfigError):
        write_overrides(path, {"weight_iso": -1.0})
    assert path.read_text() == text


def test_the_search_space_is_checked(tmp_path: Path) -> None:
    from ifd.tune.space import load_space

    assert "ida_older_gamma" in load_space()
    bad = tmp_path / "space.yaml"
    bad.write_text("no_such_field: {type: float, low: 0, high: 1}\n")
    with pytest.raises(ConfigError, match="not a LIDConfig field"):
        load_space(bad)
    bad.write_text("lr: {type: float, low: 0.1}\n")
    with pytest.raises(ConfigError, match="type must be"):
        load_space(bad)


def test_tune_cli_writes_best_settings_only_when_asked(stream: Path, ws: Workspace) -> None:
    from ifd.cli import main

    params = ws.root / "params.yaml"
    params.write_text("train:\n  preset: paper\n  overrides: {}\n")
    argv = ["tune", "--workspace", str(ws.root), "--stream", str(stream), "--tasks", "2", "--n-trials", "1",
            "--study-name", "cli", "--epochs", "1", "--backbone", "ifd_cnn_tiny", "--img-size", "16",
            "--batch-size", "8", "--seed", "0", "--json"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    assert yaml.safe_load(params.read_text())["train"]["overrides"] == {}
    with contextlib.redirect_stdout(buf := io.StringIO()):
        assert main([*argv[:-1], "--n-trials", "1", "--write-params", "--json"]) == 0
    report = json.loads(buf.getvalue())
    assert report["params_written"] == str(params)
    assert report["selected_on"] == "val" and report["final_test"]["trial"] == report["best"]["trial"]
    written = yaml.safe_load(params.read_text())["train"]["overrides"]
    assert written["weight_iso"] == pytest.approx(report["best"]["params"]["weight_iso"], rel=1e-5)
