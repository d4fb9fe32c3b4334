"""The loop over tasks: one fresh Trainer per task, state save/load, resume after an interruption."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
from test_train_data import write_tiny_batch

from ifd.data.tasks import TaskData, tasks_from_dirs
from ifd.errors import IfdError
from ifd.train import IncrementalState, learn_task, naive_config, predict_task, train_sequence

BUDGET = 8
IMG = 16


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[TaskData]:
    root = tmp_path_factory.mktemp("tasks")
    return tasks_from_dirs([write_tiny_batch(root / f"task{t}", seed=t) for t in range(3)])


def tiny_cfg(**overrides: object):
    from ifd.continual.config import LIDConfig

    base = {
        "backbone": "ifd_cnn_tiny",
        "img_size": IMG,
        "epochs": 2,
        "batch_size": 8,
        "step_size": 1,
        "replay_per_class_per_task": 2,
        "budget_per_task": BUDGET,
        "seed": 3,
    }
    return LIDConfig(**{**base, **overrides})


class OptimizerProbe(pl.Callback):
    """Records, at the start of every task's fit, the optimizer object, its state size and its lr."""

    def __init__(self) -> None:
        self.starts: list[tuple[int, int, float]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        opt = trainer.optimizers[0]
        self.starts.append((id(opt), len(opt.state), opt.param_groups[0]["lr"]))


class Interrupt(pl.Callback):
    """Raises after `after` batches of the second epoch of task `task`."""

    def __init__(self, task: int, after: int) -> None:
        self.task, self.after, self.seen = task, after, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if pl_module.task_index == self.task and trainer.current_epoch == 1:
            self.seen += 1
            if self.seen == self.after:
                raise RuntimeError("simulated interruption")


@pytest.fixture(scope="module")
def full_run(
    tasks: list[TaskData], tmp_path_factory: pytest.TempPathFactory
) -> tuple[IncrementalState, Path, OptimizerProbe]:
    out = tmp_path_factory.mktemp("full")
    probe = OptimizerProbe()
    state = train_sequence(tasks, tiny_cfg(), out, progress=lambda _: None, callbacks=[probe])
    return state, out, probe


def p_fake(state: IncrementalState, tasks: list[TaskData]) -> np.ndarray:
    return np.concatenate([predict_task(state.model, t, "test", img_size=IMG)[1] for t in tasks])


def test_one_head_per_task_and_a_lower_triangular_matrix(full_run, tasks) -> None:
    state, out, _ = full_run
    assert len(state.model.heads) == len(tasks) == len(state.task_names)
    assert state.task_names == [t.name for t in tasks]
    rows = state.matrix.to_dict()["auc"]
    assert len(rows) == len(tasks)
    for t, row in enumerate(rows):
        assert len(row) == t + 1
        assert all(0.0 <= a <= 1.0 for a in row)
    assert sorted(p.name for p in out.glob("state*.pt")) == [
        "state.pt",
        *(f"state_task_{t}.pt" for t in range(3)),
    ]
    assert not any((out / "ckpt").glob("task_*/last.ckpt"))


def test_replay_store_holds_the_budget_of_every_task_split_by_class(full_run, tasks) -> None:
    state, _, _ = full_run
    for t, task in enumerate(tasks):
        entries = state.store.entries_for(task=t)
        assert len(entries) == BUDGET
        assert sum(e.label == 1 for e in entries) == BUDGET // 2
        train_paths = set(task.split("train")["path"])
        assert {e.path for e in entries} <= train_paths
    assert set(state.centroids) == set(range(2 * len(tasks)))


def test_a_new_optimizer_and_scheduler_per_task(full_run, tasks) -> None:
    _, _, probe = full_run
    assert len(probe.starts) == len(tasks)
    assert len({opt_id for opt_id, _, _ in probe.starts}) == len(tasks)
    assert all(n_state == 0 for _, n_state, _ in probe.starts)
    assert all(lr == pytest.approx(tiny_cfg().lr) for _, _, lr in probe.starts)


def test_save_load_predicts_identically(full_run, tasks, tmp_path: Path) -> None:
    state, out, _ = full_run
    loaded = IncrementalState.load(out / "state.pt")
    assert loaded.task_names == state.task_names and len(loaded.model.heads) == len(tasks)
    np.testing.assert_array_equal(p_fake(loaded, tasks), p_fake(state, tasks))
    assert loaded.matrix.to_dict() == state.matrix.to_dict()
    assert len(loaded.store.entries_for()) == len(state.store.entries_for())
    copy_path = loaded.save(tmp_path / "again.pt")
    np.testing.assert_array_equal(p_fake(IncrementalState.load(copy_path), tasks), p_fake(state, tasks))


def test_resume_after_a_mid_task_interruption_matches_the_uninterrupted_run(
    full_run, tasks, tmp_path: Path
) -> None:
    state, _, _ = full_run
    with pytest.raises(RuntimeError, match="simulated interruption"):
        train_sequence(
            tasks, tiny_cfg(), tmp_path, progress=lambda _: None, callbacks=[Interrupt(task=1, after=1)]
        )
    assert (tmp_path / "state_task_0.pt").is_file() and not (tmp_path / "state_task_1.pt").exists()
    assert (tmp_path / "ckpt" / "task_1" / "last.ckpt").is_file()
    lines: list[str] = []
    resumed = train_sequence(tasks, tiny_cfg(), tmp_path, progress=lines.append)
    assert any("resuming from" in line and "task_1" in line for line in lines)
    # Every epoch's batches and every step's random draws are seeded from (seed, task, epoch/step), so
    # the resumed run takes the same steps; only float summation order could differ.
    np.testing.assert_allclose(p_fake(resumed, tasks), p_fake(state, tasks), atol=1e-5)
    np.testing.assert_allclose(
        resumed.matrix.to_dict()["auc"][-1], state.matrix.to_dict()["auc"][-1], atol=1e-6
    )


def test_resume_refuses_a_folder_of_another_sequence(full_run, tasks) -> None:
    _, out, _ = full_run
    with pytest.raises(IfdError, match="another output folder"):
        train_sequence([tasks[1], tasks[0]], tiny_cfg(), out, progress=lambda _: None)


def test_learn_task_leaves_the_given_state_untouched(full_run, tasks, tmp_path: Path) -> None:
    state, out, _ = full_run
    champion = IncrementalState.load(out / "state_task_0.pt")
    before = p_fake(champion, tasks[:1])
    new = learn_task(
        champion, tasks[1], tiny_cfg(epochs=1), tmp_path, previous=tasks[:1], progress=lambda _: None
    )
    assert len(champion.model.heads) == 1 and len(champion.store.entries_for()) == BUDGET
    np.testing.assert_array_equal(p_fake(champion, tasks[:1]), before)
    assert len(new.model.heads) == 2 and new.task_names == [tasks[0].name, tasks[1].name]
    with pytest.raises(IfdError, match="already learned"):
        learn_task(new, tasks[1], tiny_cfg(), tmp_path, previous=tasks[:2], progress=lambda _: None)


def test_naive_fine_tuning_keeps_no_replay(tasks, tmp_path: Path) -> None:
    cfg = naive_config(tiny_cfg(epochs=1))
    state = train_sequence(tasks[:2], cfg, tmp_path, progress=lambda _: None)
    assert state.store.entries_for() == []
    assert len(state.model.heads) == 2
    assert len(state.matrix.to_dict()["auc"]) == 2
