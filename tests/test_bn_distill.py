"""BatchNorm on purpose: at a task's first step the student's features equal the frozen teacher's (L_dis = 0),
and the statistics of old tasks do not drift toward the new one."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from test_train_data import write_tiny_batch

from ifd.continual.batchnorm import batchnorm_layers, freeze_statistics, hold_statistics
from ifd.continual.config import LIDConfig
from ifd.data.tasks import TaskData, tasks_from_dirs
from ifd.train import IncrementalState, learn_task

BACKBONES = {"ifd_cnn_small_bn": 16, "efficientnet_lite0.imagenet": 32, "ifd_cnn_small_lf": 16}  # backbone -> image size


def bn_cfg(backbone: str = "ifd_cnn_small_bn", **overrides: object) -> LIDConfig:
    base = {
        "backbone": backbone,
        "img_size": BACKBONES[backbone],
        "epochs": 1,
        "batch_size": 8,
        "replay_per_class_per_task": 2,
        "budget_per_task": 8,
        "seed": 1,
    }
    return LIDConfig(**{**base, **overrides})


class FirstStep(pl.Callback):
    """Records the loss parts of the first training step of the task."""

    def __init__(self) -> None:
        self.losses: dict[str, float] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        if not self.losses:
            self.losses = {k: float(v) for k, v in pl_module.last_losses.items()}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[TaskData]:
    root = tmp_path_factory.mktemp("bn_tasks")
    return tasks_from_dirs([write_tiny_batch(root / f"t{t}", seed=t) for t in range(2)])


@pytest.fixture(scope="module", params=list(BACKBONES))
def after_first(request: pytest.FixtureRequest, tasks: list[TaskData], tmp_path_factory: pytest.TempPathFactory) -> IncrementalState:
    cfg = bn_cfg(request.param)
    return learn_task(None, tasks[0], cfg, tmp_path_factory.mktemp("t0"), progress=lambda _: None)


def _running_means(state_or_model: torch.nn.Module) -> list[torch.Tensor]:
    return [m.running_mean.clone() for m in batchnorm_layers(state_or_model)]


def _second_task(state: IncrementalState, tasks: list[TaskData], out: Path, **cfg: object) -> tuple[IncrementalState, FirstStep]:
    probe = FirstStep()
    new = learn_task(state, tasks[1], bn_cfg(state.cfg.backbone, **cfg), out, previous=tasks[:1], progress=lambda _: None, callbacks=[probe])
    return new, probe


def test_distillation_is_zero_at_the_first_step_and_statistics_hold(after_first, tasks, tmp_path: Path) -> None:
    before = _running_means(after_first.model)
    assert before, "the BN backbone has BatchNorm layers"
    new, probe = _second_task(after_first, tasks, tmp_path)
    assert probe.losses["dis"] < 1e-8, probe.losses
    after = _running_means(new.model)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_train_mode_batchnorm_is_what_the_default_avoids(after_first, tasks, tmp_path: Path) -> None:
    """The old behaviour, kept as `bn_stats: train`: L_dis > 0 before anything was learned, statistics move."""
    before = _running_means(after_first.model)
    new, probe = _second_task(after_first, tasks, tmp_path, bn_stats="train")
    assert probe.losses["dis"] > 1e-5, probe.losses
    after = _running_means(new.model)
    assert not all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_first_task_adapts_statistics_unless_frozen(tasks, tmp_path: Path) -> None:
    from ifd.train.loop import new_state

    fresh = _running_means(new_state(bn_cfg()).model)
    learned = learn_task(None, tasks[0], bn_cfg(), tmp_path / "a", progress=lambda _: None)
    assert not all(torch.equal(a, b) for a, b in zip(fresh, _running_means(learned.model), strict=True))
    frozen = learn_task(None, tasks[0], bn_cfg(bn_stats="frozen"), tmp_path / "b", progress=lambda _: None)
    assert all(torch.equal(a, b) for a, b in zip(fresh, _running_means(frozen.model), strict=True))


def test_held_statistics_make_train_mode_features_equal_eval_mode() -> None:
    from ifd.models import create_backbone

    student = create_backbone("ifd_cnn_small_bn").train()
    teacher = copy.deepcopy(student).eval()
    x = torch.randn(6, 3, 32, 32)
    assert not torch.allclose(copy.deepcopy(student)(x), teacher(x), atol=1e-4)  # batch statistics
    assert hold_statistics(student) == len(batchnorm_layers(student)) > 0
    assert student.training
    assert torch.allclose(student(x), teacher(x), atol=1e-6)
    assert torch.allclose(student(x)[:2], teacher(x[:2]), atol=1e-5)  # per sample: any batch composition


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("train", [False, False]), ("freeze_after_first_task", [False, True]), ("frozen", [True, True])],
)
def test_which_tasks_freeze(mode: str, expected: list[bool]) -> None:
    assert [freeze_statistics(mode, t) for t in (0, 1)] == expected
