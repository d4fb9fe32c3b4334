"""Fan-out on a Dask task runner (issue 14 item 3): `ifd bench` runs and `ifd tune` trials as Prefect tasks on
a real `distributed.LocalCluster`, or on a scheduler started here and named with `--cluster`; each run keeps its
own process, time and peak RSS; the trials of two workers land in one Optuna study; a wrong address fails fast."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import time
from pathlib import Path

import pytest
from test_train_data import write_tiny_batch

from ifd.bench.fanout import FanoutConfig, check_scheduler
from ifd.errors import ConfigError, IfdError

TINY = {"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 8, "step_size": 1,
        "budget_per_task": 4, "replay_per_class_per_task": 2}
TINY_ARGS = ["--epochs", "1", "--budget", "4", "--backbone", "ifd_cnn_tiny", "--img-size", "16", "--batch-size", "8"]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=9)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fanout_options_are_checked() -> None:
    assert FanoutConfig.build(1).in_process and not FanoutConfig.build(2).in_process
    assert not FanoutConfig.build(1, "tcp://10.0.0.5:8786").in_process
    with pytest.raises(ConfigError, match="--jobs"):
        FanoutConfig.build(0)
    for bad in ("10.0.0.5:8786", "http://host:1", "tcp://host"):
        with pytest.raises(ConfigError, match="--cluster.*tcp://HOST:PORT"):
            FanoutConfig.build(2, bad)


def test_an_unreachable_cluster_fails_within_seconds(stream: Path, tmp_path: Path) -> None:
    from ifd.cli import main

    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(IfdError, match="no Dask scheduler answered"):
        check_scheduler(address, timeout_s=2)
    assert time.monotonic() - started < 10
    err = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(err):
        code = main(["bench", str(stream), "--strategies", "finetune", "--seeds", "1", "--out", str(tmp_path / "out"),
                     "--cluster", address, "--workspace", str(tmp_path), *TINY_ARGS])
    assert code != 0 and "no Dask scheduler answered" in err.getvalue() and address in err.getvalue()
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out" / "runs").exists()  # nothing ran


def test_bench_runs_on_two_local_dask_workers_each_in_its_own_process(prefect_server: None, stream: Path,
                                                                       tmp_path: Path) -> None:
    from ifd.bench.runner import run_bench
    from ifd.bench.schema import validate_results
    from ifd.continual.config import LIDConfig

    out = tmp_path / "out"
    lines: list[str] = []
    results = run_bench(stream, ["finetune"], [0, 1], out, LIDConfig(**TINY), threads=1, jobs=2, progress=lines.append)
    validate_results(out / "results.json")
    fan = json.loads((out / "results.json").read_text())["settings"]["fanout"]
    assert fan["task_runner"] == "dask" and fan["local_workers"] == 2 and len(fan["runs"]) == 2
    runs = fan["runs"]
    assert len({r["dask_worker"] for r in runs}) == 2 and len({r["worker_pid"] for r in runs}) == 2  # two workers
    assert all(r["run_pid"] not in {x["worker_pid"] for x in runs} for r in runs)  # each run its own process
    assert all(r["peak_rss_mb"] > 100 and r["wall_s"] > 0 for r in runs)
    per_seed = results["strategies"]["finetune"]["per_seed"]
    assert sorted(s["seed"] for s in per_seed) == [0, 1] and all(s["peak_rss_mb"] > 100 for s in per_seed)
    for seed in (0, 1):
        notes = json.loads((out / "runs" / f"finetune__seed{seed}" / "result.json").read_text())["notes"]
        assert notes["dask_worker"].startswith("tcp://") and notes["run_pid"] != notes["worker_pid"]
    assert sum(" on tcp://" in line for line in lines) == 2


def test_bench_cli_on_a_scheduler_started_here(prefect_server: None, stream: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    from ifd.bench.fanout import SCHEDULER_HTTP
    from ifd.cli import main

    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs=SCHEDULER_HTTP, env=env) as cluster:
        address = cluster.scheduler_address
        worker = next(iter(cluster.scheduler_info["workers"]))
        out = tmp_path / "out"
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["bench", str(stream), "--strategies", "finetune", "--seeds", "1", "--out", str(out), "--threads", "1",
                         "--cluster", address, "--workspace", str(tmp_path), "--json", *TINY_ARGS]) == 0
    assert "finetune" in json.loads(buf.getvalue())["strategies"]
    fan = json.loads((out / "results.json").read_text())["settings"]["fanout"]
    assert fan["cluster"] == address and [r["dask_worker"] for r in fan["runs"]] == [worker]


def test_tune_trials_on_two_workers_write_one_study(prefect_server: None, stream: Path, tmp_path: Path) -> None:
    import optuna

    from ifd.continual.config import LIDConfig
    from ifd.data.tasks import tasks_from_stream
    from ifd.tracking.trials import study_runs
    from ifd.tune.study import TuneSettings, default_storage, run_study
    from ifd.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    settings = TuneSettings(mode="multi", n_trials=2, study_name="fan", sampler_seed=0, final_test=False)
    report = run_study(tasks_from_stream(stream), LIDConfig(**TINY), ws, settings, progress=lambda _: None,
                       fanout=FanoutConfig.build(jobs=2))
    assert report["trials"]["complete"] == 2
    tasks = report["fanout"]["tasks"]
    assert {t["state"] for t in tasks} == {"COMPLETE"} and len({t["worker_pid"] for t in tasks}) == 2
    stored = optuna.load_study(study_name="fan", storage=default_storage(ws)).trials
    assert sorted(t.number for t in stored) == [0, 1]
    assert stored[0].params != stored[1].params  # each worker's sampler has its own seed
    assert len(study_runs(ws, settings.experiment, "fan")) == 2  # one MLflow run per trial


def test_a_strategy_search_fans_its_trials_out_over_one_study(prefect_server: None, stream: Path, tmp_path: Path) -> None:
    import optuna

    from ifd.continual.config import LIDConfig
    from ifd.tune.strategies import tune_strategy

    lines: list[str] = []
    space = {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    report = tune_strategy("finetune", stream, LIDConfig(**TINY), tmp_path / "search", n_trials=2, space=space,
                           threads=1, progress=lines.append, fanout=FanoutConfig.build(jobs=2))
    assert report["trials"] == 2
    study = optuna.load_study(study_name="strategy-finetune", storage=f"sqlite:///{tmp_path / 'search' / 'optuna.db'}")
    assert len({t.params["lr"] for t in study.trials}) == 2
    assert len({line.rsplit(" on ", 1)[1] for line in lines if " on tcp://" in line}) == 2  # two workers
