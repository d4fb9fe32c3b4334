"""Three splits, three uses (issue 12): `ifd tune` chooses on val and reads the test split once, for the
final report of its best trial. The test images are made unreadable during the trials: the search must
still work, and the first read of a test row must be the final report's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train_data import write_tiny_batch

from ifd.data.tasks import tasks_from_stream
from ifd.errors import IfdError
from ifd.workspace import Workspace


def tiny_cfg():
    from ifd.continual.config import LIDConfig

    return LIDConfig(backbone="ifd_cnn_tiny", img_size=16, epochs=1, batch_size=8, step_size=1,
                     budget_per_task=4, replay_per_class_per_task=2)


def test_tuning_reads_no_test_row_before_the_final_report(tmp_path: Path) -> None:
    from ifd.tracking.store import client
    from ifd.tracking.trials import study_runs
    from ifd.tune.study import TuneSettings, open_study, run_study

    root = tmp_path / "stream"
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=9)
    tasks = tasks_from_stream(root)
    test_files = {t.root / p: (t.root / p).read_bytes() for t in tasks for p in t.split("test")["path"]}
    for path in test_files:
        path.write_bytes(b"poisoned: a test row was read before the final report")
    ws = Workspace.at(tmp_path / "ws")
    settings = TuneSettings(mode="single", n_trials=2, study_name="val-only", sampler_seed=0, pruner="median")

    with pytest.raises(IfdError, match="not a readable image") as exc:
        run_study(tasks, tiny_cfg(), ws, settings, progress=lambda _: None)
    assert any(str(p) in str(exc.value) for p in test_files)  # the final report is the first to touch test
    study = open_study(settings, ws)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]  # every trial ran on poisoned test
    runs = study_runs(ws, "ifd-tune", "val-only")
    assert len(runs) == 2 and all(r["state"] == "COMPLETE" and "AA" in r["metrics"] for r in runs)

    for path, data in test_files.items():
        path.write_bytes(data)
    report = run_study(tasks, tiny_cfg(), ws, TuneSettings(**{**settings.__dict__, "n_trials": 0}), progress=lambda _: None)
    final = report["final_test"]
    assert report["selected_on"] == "val" and final["trial"] == report["best"]["trial"]
    assert [len(r) for r in final["matrix_auc"]] == [1, 2]
    c = client(ws)
    found = c.search_runs([c.get_experiment_by_name("ifd-tune").experiment_id],
                          filter_string="tags.`ifd.tune.final_report` = 'true'")
    assert [r.info.run_id for r in found] == [final["mlflow_run_id"]]
    tags = found[0].data.tags
    assert tags["ifd.tune.split"] == "test" and tags["ifd.tune.best_trial"] == str(final["trial"])
    assert "test_AA" in found[0].data.metrics and "val_AA" in found[0].data.metrics
    trial_tags = [c.get_run(r["run_id"]).data.tags for r in runs]
    assert all(t["ifd.tune.split"] == "val" for t in trial_tags)
    again = run_study(tasks, tiny_cfg(), ws, TuneSettings(**{**settings.__dict__, "n_trials": 0}), progress=lambda _: None)
    assert again["final_test"]["mlflow_run_id"] == final["mlflow_run_id"]  # reported once, not retrained


@pytest.mark.parametrize("name", ["lid", "naive", "joint-lid"])
def test_selection_runs_of_any_strategy_read_no_test_row(name: str, tmp_path: Path) -> None:
    """What tunes the baselines and re-derives presets (`eval_split="val"`) works with every test image unreadable."""
    from ifd.bench.spec import RunSpec
    from ifd.bench.worker import run_one

    root = tmp_path / "stream"
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=9)
    for task in tasks_from_stream(root):
        for p in task.split("test")["path"]:
            (task.root / p).write_bytes(b"poisoned")
    spec = RunSpec(strategy=name, seed=0, stream=str(root), lid=tiny_cfg().model_dump(mode="json"),
                   work_dir=str(tmp_path / "run"), eval_split="val", baseline_params={name: {"lr": 0.002}})
    result = run_one(spec, progress=lambda _: None)
    assert result.ok, result.error
    assert [len(r) for r in result.matrix["auc"]] == [1, 2]
    spec = spec.model_copy(update={"eval_split": "test", "work_dir": str(tmp_path / "report")})
    assert "not a readable image" in (run_one(spec, progress=lambda _: None).error or "")  # the poison is real


@pytest.mark.slow
def test_strategies_get_the_same_search_on_val_and_the_winners_feed_bench(tmp_path: Path) -> None:
    import yaml

    from ifd.tune.strategies import tune_strategies

    root = tmp_path / "stream"
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=9)
    lines: list[str] = []
    report = tune_strategies(["naive", "finetune"], root, tiny_cfg(), tmp_path / "tuning", n_trials=1, threads=1,
                             progress=lines.append)
    tuned = yaml.safe_load(Path(report["file"]).read_text())
    assert set(tuned) == {"naive", "finetune"} and all("lr" in v for v in tuned.values())
    assert all(r["trials"] == 1 for r in report["strategies"].values())
    spec = json.loads(next((tmp_path / "tuning" / "naive" / "runs").glob("*/spec.json")).read_text())
    assert spec["eval_split"] == "val"
    assert spec["baseline_params"]["naive"]["lr"] == pytest.approx(tuned["naive"]["lr"], rel=1e-5)
    again = tune_strategies(["naive"], root, tiny_cfg(), tmp_path / "tuning", n_trials=1, threads=1, progress=lines.append)
    assert again["strategies"]["naive"]["params"] == report["strategies"]["naive"]["params"]  # resumed, not rerun
    assert set(yaml.safe_load(Path(again["file"]).read_text())) == {"naive", "finetune"}  # merged, not replaced
