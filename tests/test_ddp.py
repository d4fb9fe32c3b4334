"""Lightning DDP for one increment (`strategy: ddp`, `devices: 2`, gloo on the CPU) against one process.

Two settings. With the losses that are means over samples (detection and distillation; no SupCon, LSDA or
DR) and batches that split evenly, two ranks take exactly the steps one process takes: the same global
batches, the gradient averaged over equal shards, IDA on rank 0 broadcast, rank 0's weights handed back,
so predictions agree to float order (1e-5) and the replay store is the same. With the default LID losses
the supervised contrastive term sees only its rank's shard, so the runs differ slightly (|Δ AUC| <= 0.05).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from test_train_data import write_tiny_batch
from torch.multiprocessing import ProcessExitedException

from ifd.continual.config import LIDConfig, load_lid_config
from ifd.data.tasks import TaskData, tasks_from_dirs
from ifd.errors import ConfigError
from ifd.train import IncrementalState, predict_task, train_sequence
from ifd.train.datamodule import ReplayBatchSampler
from ifd.train.ddp import strategy_settings
from ifd.train.replay_update import select_entries, task_features
from ifd.train.state import build_detector
from ifd.train.val_split import with_val

IMG = 16
DDP = {"strategy": "ddp", "devices": 2}
# Per-sample-mean losses only: N ranks then compute one process's gradient (see the module docstring).
DECOMPOSABLE = {"weight_iso": 0.0, "use_lsda": False, "use_dr": False}


def cfg(**overrides: object) -> LIDConfig:
    base = {
        "backbone": "ifd_cnn_tiny",
        "img_size": IMG,
        "epochs": 3,  # IDA runs from the second epoch on
        "batch_size": 6,  # 12 train rows per task: chunks of 6 new + 4 replay split 5/5 over two ranks
        "step_size": 1,
        "replay_per_class_per_task": 2,
        "budget_per_task": 8,
        "accelerator": "cpu",
        "seed": 2,
    }
    return LIDConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[TaskData]:
    root = tmp_path_factory.mktemp("ddp_tasks")
    return tasks_from_dirs([write_tiny_batch(root / f"task{t}", seed=t) for t in range(2)])


class RankProbe(pl.Callback):
    """At the end of every fit, each rank writes its detector weights and how many samples it trained on
    to `folder/rank<r>_task<t>.pt`."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seen = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, *args) -> None:
        self.seen += len(batch["y"])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        weights = {k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()}
        probe = {"weights": weights, "seen": self.seen}
        torch.save(probe, self.folder / f"rank{trainer.global_rank}_task{pl_module.task_index}.pt")


class KillRankZero(pl.Callback):
    """SIGKILLs rank 0 at the first batch of the second epoch of task `task`."""

    def __init__(self, task: int) -> None:
        self.task = task

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if pl_module.task_index == self.task and trainer.current_epoch == 1 and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def pid_log(path: Path):
    """A progress function that appends "<pid> <line>" to `path` (forked workers write there too)."""

    def report(line: str) -> None:
        with path.open("a") as f:
            f.write(f"{os.getpid()} {line}\n")

    return report


def p_fake(state: IncrementalState, tasks: list[TaskData]) -> np.ndarray:
    return np.concatenate([predict_task(state.model, t, "test", img_size=IMG)[1] for t in tasks])


def store_paths(state: IncrementalState) -> list[tuple[int, str]]:
    return [(e.task, e.path) for e in state.store.entries_for()]


@pytest.fixture(scope="module")
def exact_runs(tasks: list[TaskData], tmp_path_factory: pytest.TempPathFactory):
    """One process and two DDP ranks on the decomposable losses; the DDP run probed per rank and per pid."""
    single = tmp_path_factory.mktemp("single_probes")
    one_out = tmp_path_factory.mktemp("one")
    probe = [RankProbe(single)]
    one = train_sequence(tasks, cfg(**DECOMPOSABLE), one_out, progress=lambda _: None, callbacks=probe)
    out, probes = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("probes")
    log = probes / "progress.log"
    two = train_sequence(
        tasks, cfg(**DECOMPOSABLE, **DDP), out, progress=pid_log(log), callbacks=[RankProbe(probes)]
    )
    return one, two, out, probes, log, single


def test_config_keys_and_their_checks(tmp_path: Path) -> None:
    from lightning.pytorch.strategies import DDPStrategy

    from ifd.train.trainer import make_trainer

    with pytest.raises(ConfigError, match="devices: 2 needs strategy: ddp"):
        load_lid_config(None, {"devices": 2})
    with pytest.raises(ConfigError, match="devices"):
        load_lid_config(None, {"strategy": "ddp", "devices": 0})
    with pytest.raises(ConfigError, match="strategy"):
        load_lid_config(None, {"strategy": "ddp_spawn"})
    # at their defaults the keys stay out of dumps: specs and states written before them compare equal
    assert not {"strategy", "devices"} & set(LIDConfig().model_dump(mode="json"))
    two = load_lid_config("cpu", DDP)
    assert LIDConfig.model_validate(two.model_dump(mode="json")) == two
    assert strategy_settings(LIDConfig()) == ("auto", 1)
    strategy, devices = strategy_settings(two)
    assert isinstance(strategy, DDPStrategy) and devices == 2
    assert strategy._start_method == "fork" and strategy._process_group_backend == "gloo"
    trainer = make_trainer(cfg(**DDP), tmp_path / "ckpt", tmp_path)
    assert isinstance(trainer.strategy, DDPStrategy) and trainer.num_devices == 2


def test_ranks_share_every_global_batch_of_one_process() -> None:
    groups = [torch.arange(11, 14), torch.arange(14, 17)]

    def draw(rank: int, world: int, n_new: int = 11, groups=groups) -> list[list]:
        sampler = ReplayBatchSampler(n_new, groups, 4, 2, seed=5, augment_seeds=True)
        sampler.shard_for(rank, world)
        sampler.sampler.set_epoch(3)
        return list(sampler)

    whole, first, second = draw(0, 1), draw(0, 2), draw(1, 2)
    assert len(whole) == len(first) == len(second) == 3
    for all_keys, a, b in zip(whole, first, second, strict=True):
        assert sorted(a + b) == sorted(all_keys) and not set(a) & set(b)  # same samples, same augment seeds
        assert abs(len(a) - len(b)) <= 1 and min(len(a), len(b)) >= 2
    # a last chunk of 3 new samples and no replay: one process keeps it, two ranks (< 2 each) drop it
    assert [len(b) for b in draw(0, 1, groups=[])] == [4, 4, 3]
    assert [len(b) for b in draw(1, 2, groups=[])] == [2, 2]


def test_two_ranks_take_the_steps_of_one_process(exact_runs, tasks) -> None:
    one, two, *_ = exact_runs
    np.testing.assert_allclose(p_fake(two, tasks), p_fake(one, tasks), atol=1e-5)
    for row_one, row_two in zip(one.matrix.to_dict()["auc"], two.matrix.to_dict()["auc"], strict=True):
        np.testing.assert_allclose(row_two, row_one, atol=1e-6)
    assert store_paths(two) == store_paths(one)
    for k in one.centroids:
        torch.testing.assert_close(two.centroids[k], one.centroids[k], atol=1e-5, rtol=0)


def test_once_per_task_work_runs_in_the_calling_process_on_rank_zero_weights(exact_runs, tasks) -> None:
    _, two, out, probes, log, single = exact_runs
    for t in range(len(tasks)):
        ranks = [torch.load(probes / f"rank{r}_task{t}.pt", weights_only=True) for r in (0, 1)]
        w0, w1 = ranks[0]["weights"], ranks[1]["weights"]
        assert all(torch.equal(w0[k], w1[k]) for k in w0)  # the replicas never drift (IDA: rank 0, broadcast)
        # each rank trained on its half of the samples one process trains on
        assert ranks[0]["seen"] == ranks[1]["seen"] == torch.load(single / f"rank0_task{t}.pt", weights_only=True)["seen"] // 2
    # the state the calling process wrote holds rank 0's weights (the calibration is fitted after fit)
    saved = IncrementalState.load(out / "state.pt")
    rank0 = torch.load(probes / "rank0_task1.pt", weights_only=True)["weights"]
    weights = saved.model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in rank0.items() if k != "calibration")
    # ... and the replay store a selection on rank 0's weights would write
    model = build_detector(saved.cfg, n_heads=2, pretrained=False)
    model.load_state_dict(rank0)
    task = with_val(tasks[1])  # the loop selects from the train rows left after the val hold-out
    view = select_entries(task_features(model, task, saved.cfg), task, 1, saved.cfg)
    assert [e.path for e in view] == [e.path for e in saved.store.entries_for(task=1)]
    # each task's replay, evaluation and state happen once, in this process; epochs are reported by rank 0
    lines = [line.split(" ", 1) for line in log.read_text().splitlines()]
    me = str(os.getpid())
    for t, task in enumerate(tasks):
        done = [pid for pid, text in lines if text.startswith(f"[train] task {t} {task.name!r} done")]
        assert done == [me]
        epochs = [pid for pid, text in lines if text.startswith(f"[train] task {t} {task.name!r} epoch")]
        assert len(epochs) == 3 and len(set(epochs)) == 1 and epochs[0] != me
    assert sorted(p.name for p in out.glob("state*.pt")) == ["state.pt", "state_task_0.pt", "state_task_1.pt"]


def test_the_default_losses_agree_within_tolerance(tasks, tmp_path: Path) -> None:
    one = train_sequence(tasks, cfg(), tmp_path / "one", progress=lambda _: None)
    two = train_sequence(tasks, cfg(**DDP), tmp_path / "two", progress=lambda _: None)
    a_one, a_two = one.matrix.to_dict()["auc"], two.matrix.to_dict()["auc"]
    assert a_two[0][0] >= 0.9  # both learned something: agreement is not that of two coin flips
    diffs = [abs(x - y) for r1, r2 in zip(a_one, a_two, strict=True) for x, y in zip(r1, r2, strict=True)]
    assert max(diffs) <= 0.05, (a_one, a_two)


def test_kill_nine_of_rank_zero_then_resume_on_two_ranks(exact_runs, tasks, tmp_path: Path) -> None:
    _, two, *_ = exact_runs
    with pytest.raises(ProcessExitedException, match="SIGKILL"):
        kill = [KillRankZero(task=1)]
        train_sequence(tasks, cfg(**DECOMPOSABLE, **DDP), tmp_path, progress=lambda _: None, callbacks=kill)
    assert (tmp_path / "state_task_0.pt").is_file() and not (tmp_path / "state_task_1.pt").exists()
    assert (tmp_path / "ckpt" / "task_1" / "last.ckpt").is_file()  # epoch 0 of task 1, written by rank 0
    log = tmp_path / "progress.log"
    resumed = train_sequence(tasks, cfg(**DECOMPOSABLE, **DDP), tmp_path, progress=pid_log(log))
    assert "resuming from" in log.read_text()
    np.testing.assert_allclose(p_fake(resumed, tasks), p_fake(two, tasks), atol=1e-5)
    last_row = resumed.matrix.to_dict()["auc"][-1]
    np.testing.assert_allclose(last_row, two.matrix.to_dict()["auc"][-1], atol=1e-6)


def _stream(root: Path) -> Path:
    for t in range(2):
        write_tiny_batch(root / f"fam{t}", seed=t)
    (root / "stream.json").write_text('{"tasks": ["fam0", "fam1"]}')
    return root


TINY_DDP = {"backbone": "ifd_cnn_tiny", "img_size": IMG, "epochs": 2, "batch_size": 6, "budget_per_task": 8,
            "accelerator": "cpu", **DDP}


@pytest.mark.slow  # a subprocess that imports torch and trains: ~30 s on 2 busy cores
def test_python_dash_m_cli_trains_on_two_ranks_like_the_library(tmp_path: Path) -> None:
    """`python -m ifd.cli train` with `devices: 2`: Lightning's default launcher would re-run this command
    line in a child; the fork launcher trains in place and gives what the library call gives."""
    import subprocess
    import sys

    import yaml

    from ifd.data.tasks import tasks_from_stream

    stream = _stream(tmp_path / "stream")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"preset": "cpu", "overrides": TINY_DDP}}))
    env = {**os.environ, "IFD_PROGRESS": "plain"}
    done = subprocess.run(
        [sys.executable, "-m", "ifd.cli", "train", "--stream", str(stream), "--out", str(tmp_path / "out"),
         "--workspace", str(tmp_path), "--params", str(tmp_path / "params.yaml"), "--json"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    for t in range(2):  # one line per epoch (rank 0), one "done" line per task (the calling process)
        assert done.stderr.count(f"[train] task {t} 'fam{t}' epoch ") == 2
        assert done.stderr.count(f"[train] task {t} 'fam{t}' done") == 1
    cli = IncrementalState.load(tmp_path / "out" / "state.pt")
    lib = train_sequence(tasks_from_stream(stream), load_lid_config("cpu", TINY_DDP), tmp_path / "lib",
                         progress=lambda _: None)
    assert cli.matrix.to_dict()["auc"] == lib.matrix.to_dict()["auc"]
    np.testing.assert_allclose(p_fake(cli, tasks_from_stream(stream)), p_fake(lib, tasks_from_stream(stream)),
                               atol=1e-6)


@pytest.mark.slow  # the session's temporary Prefect server takes ~20 s to start
def test_a_prefect_task_in_a_worker_thread_trains_on_two_ranks(prefect_server: None, tmp_path: Path) -> None:
    from prefect import flow, task

    from ifd.data.tasks import tasks_from_stream

    stream = _stream(tmp_path / "stream")

    @task
    def learn(stream: str, out: str) -> list[list[float]]:
        tasks = tasks_from_stream(Path(stream))
        state = train_sequence(tasks, load_lid_config("cpu", TINY_DDP), Path(out), progress=lambda _: None)
        return state.matrix.to_dict()["auc"]

    @flow
    def ddp_increment(stream: str, out: str) -> list[list[float]]:
        return learn.submit(stream, out).result()  # a task-runner thread, Prefect's own threads alive

    in_flow = ddp_increment(str(stream), str(tmp_path / "flow"))
    direct = train_sequence(tasks_from_stream(stream), load_lid_config("cpu", TINY_DDP), tmp_path / "lib",
                            progress=lambda _: None)
    assert in_flow == direct.matrix.to_dict()["auc"]
