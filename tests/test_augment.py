"""Training augmentation: registered transforms, seeded per sample, applied to new and replayed images only when on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_data import write_tiny_batch

from ifd.continual.config import LIDConfig, load_lid_config
from ifd.data.augment import AUGMENTATIONS, DEFAULT_AUGMENTATIONS, build_augment
from ifd.data.tasks import TaskData, tasks_from_dirs
from ifd.errors import ConfigError, UnknownNameError


def _pixels(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, size, size), dtype=np.uint8))


def _always(name: str, **kwargs: object):
    return build_augment({name: {"p": 1.0, **kwargs}})


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_every_transform_keeps_shape_and_dtype_and_is_seeded(name: str) -> None:
    x = _pixels()
    aug = _always(name)
    a, b, c = aug(x, 7), aug(x, 7), aug(x, 8)
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    if name != "hflip":  # a flip has no parameters to draw
        assert not torch.equal(a, c)
    assert torch.equal(build_augment({name: {"p": 0.0}})(x, 7), x)


def test_default_pipeline_is_the_official_four() -> None:
    assert list(DEFAULT_AUGMENTATIONS) == ["hflip", "gaussian_blur", "color_jitter", "jpeg"]
    assert set(DEFAULT_AUGMENTATIONS) == set(AUGMENTATIONS.names())
    aug = build_augment(DEFAULT_AUGMENTATIONS)
    x = _pixels(size=16)
    unchanged = sum(torch.equal(aug(x, s), x) for s in range(200))
    assert 3 <= unchanged <= 30  # each fires with p 0.5: all four miss in 1/16 of the draws (12.5 of 200)


def test_flip_mirrors_and_blur_smooths_and_jpeg_degrades() -> None:
    x = _pixels()
    assert torch.equal(_always("hflip")(x, 0), x.flip(-1))

    def roughness(p: torch.Tensor) -> float:
        return float((p.float()[:, :, 1:] - p.float()[:, :, :-1]).abs().mean())

    assert roughness(_always("gaussian_blur", min_kernel=5, max_kernel=5)(x, 0)) < 0.5 * roughness(x)
    low = _always("jpeg", quality_min=40, quality_max=40)(x, 0)
    high = _always("jpeg", quality_min=100, quality_max=100)(x, 0)
    assert (low.float() - x.float()).abs().mean() > (high.float() - x.float()).abs().mean()
    jitter = _always("color_jitter", brightness=0.0, contrast=0.0)(x, 0)
    assert torch.equal(jitter, x)


def test_wrong_names_and_arguments_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="gaussian_blur"):
        build_augment({"rotate": {}})
    with pytest.raises(ConfigError, match="jpeg"):
        build_augment({"jpeg": {"quality": 50}})
    with pytest.raises(ConfigError, match="odd"):
        build_augment({"gaussian_blur": {"min_kernel": 4}})
    with pytest.raises(ConfigError, match="augmentations"):
        load_lid_config(None, {"augmentations": {"hflip": {"p": 2.0}}})


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> list[TaskData]:
    root = tmp_path_factory.mktemp("aug_tasks")
    return tasks_from_dirs([write_tiny_batch(root / f"t{t}", seed=t, size=16) for t in range(2)])


def _cfg(**overrides: object) -> LIDConfig:
    base = {"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 4,
            "replay_per_class_per_task": 2, "budget_per_task": 4, "seed": 2}
    return LIDConfig(**{**base, **overrides})


def _batches(state, tasks: list[TaskData], cfg: LIDConfig, epoch: int = 0) -> list[dict[str, torch.Tensor]]:
    from ifd.train.datamodule import TaskIncrementDataModule

    roots = {tasks[0].name: str(tasks[0].root)}
    dm = TaskIncrementDataModule(tasks[1], 1, cfg, state.store, roots, seed=5)
    dm.setup("fit")
    assert dm.batch_sampler is not None
    dm.batch_sampler.sampler.set_epoch(epoch)
    return list(dm.train_dataloader())


def test_new_and_replayed_images_are_augmented_only_when_on(tasks, tmp_path: Path) -> None:
    from ifd.train import learn_task

    state = learn_task(None, tasks[0], _cfg(), tmp_path, progress=lambda _: None)
    plain = _batches(state, tasks, _cfg())
    assert torch.equal(torch.cat([b["x"] for b in plain]), torch.cat([b["x"] for b in _batches(state, tasks, _cfg())]))
    flipped = _batches(state, tasks, _cfg(augment=True, augmentations={"hflip": {"p": 1.0}}))
    for a, b in zip(plain, flipped, strict=True):
        assert torch.equal(a["idx"], b["idx"]) and torch.equal(a["is_replay"], b["is_replay"])
        assert torch.equal(b["x"], a["x"].flip(-1))
    assert any(bool(b["is_replay"].any()) for b in flipped)  # replayed images went through it too


def test_augmentation_depends_on_seed_and_epoch_only(tasks, tmp_path: Path) -> None:
    from ifd.train import learn_task

    state = learn_task(None, tasks[0], _cfg(), tmp_path, progress=lambda _: None)
    cfg = _cfg(augment=True)
    first = torch.cat([b["x"] for b in _batches(state, tasks, cfg)])
    again = torch.cat([b["x"] for b in _batches(state, tasks, cfg)])
    other = torch.cat([b["x"] for b in _batches(state, tasks, cfg, epoch=1)])
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
