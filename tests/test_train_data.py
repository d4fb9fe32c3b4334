"""Tasks from batch folders, the image dataset, and the replay batches of one increment."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ifd.data.image_dataset import ImageCache, TaskImageDataset, to_model_input
from ifd.data.tasks import TaskData, tasks_from_dirs, tasks_from_stream
from ifd.errors import IfdError
from ifd.train.datamodule import ReplayBatchSampler, TaskIncrementDataModule, collate_increment


def write_tiny_batch(folder: Path, seed: int, n_per_class: int = 12, size: int = 16) -> Path:
    """A batch of noise images; fakes carry a task-specific stripe pattern. 2/3 train, 1/3 test."""
    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for label in ("real", "fake"):
        for i in range(n_per_class):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            if label == "fake":
                img[:, :: 2 + seed % 3] = 255 - 40 * (seed % 5)
            path = f"img/{label}_{i}.png"
            Image.fromarray(img).save(folder / path)
            split = "train" if i < n_per_class * 2 // 3 else "test"
            method = "camera" if label == "real" else f"gen{seed}"
            rows.append(
                {"path": path, "label": label, "method": method, "split": split, "source_id": f"{label}{i}"}
            )
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    for name, seed in (("b_second", 1), ("a_first", 0), ("c_third", 2)):
        write_tiny_batch(root / name, seed)
    return root


def test_stream_order_follows_stream_json_else_sorted_names(stream: Path, tmp_path: Path) -> None:
    assert [t.name for t in tasks_from_stream(stream)] == ["a_first", "b_second", "c_third"]
    ordered = tmp_path / "ordered"
    ordered.mkdir()
    for name in ("a_first", "b_second", "c_third"):
        (ordered / name).symlink_to(stream / name)
    (ordered / "stream.json").write_text(json.dumps({"tasks": ["c_third", "a_first"]}))
    assert [t.name for t in tasks_from_stream(ordered)] == ["c_third", "a_first"]


def test_task_frame_has_int_labels_and_video_ids(stream: Path) -> None:
    task = TaskData.from_batch(stream / "a_first")
    test = task.split("test")
    assert set(test["y"]) == {0, 1}
    assert (test["y"] == (test["label"] == "fake").astype(int)).all()
    assert task.video_ids(test)[0] == f"a_first/{test['label'][0]}/{test['source_id'][0]}"
    assert task.methods() == ["gen0"]


def test_bad_streams_fail_with_the_reason(stream: Path, tmp_path: Path) -> None:
    with pytest.raises(IfdError, match="no batch folders"):
        tasks_from_stream(tmp_path)
    (tmp_path / "stream.json").write_text(json.dumps({"tasks": ["missing"]}))
    with pytest.raises(IfdError, match="missing"):
        tasks_from_stream(tmp_path)
    with pytest.raises(IfdError, match="unique"):
        tasks_from_dirs([stream / "a_first", stream / "a_first"])
    task = TaskData.from_batch(stream / "a_first")
    with pytest.raises(IfdError, match="no 'val' rows"):
        task.split("val")


def test_dataset_resizes_normalises_and_caches_once(stream: Path) -> None:
    task = TaskData.from_batch(stream / "a_first")
    cache = ImageCache()
    ds = TaskImageDataset(task.root, task.split("train"), img_size=24, task=3, cache=cache)
    item = ds[5]
    assert item["x"].shape == (3, 24, 24) and item["x"].dtype == torch.float32
    assert int(item["task"]) == 3 and not bool(item["is_replay"]) and int(item["idx"]) == 5
    assert int(item["y"]) == int(task.split("train")["y"][5])
    assert len(cache) == 1 and cache.nbytes == 3 * 24 * 24
    torch.testing.assert_close(ds[5]["x"], item["x"])
    assert len(cache) == 1
    white = to_model_input(torch.full((3, 2, 2), 255, dtype=torch.uint8))
    black = to_model_input(torch.zeros((3, 2, 2), dtype=torch.uint8))
    assert (white > black).all()


def test_cache_stops_growing_at_its_bound(stream: Path) -> None:
    task = TaskData.from_batch(stream / "a_first")
    cache = ImageCache(max_bytes=2 * 3 * 16 * 16)
    ds = TaskImageDataset(task.root, task.split("train"), img_size=16, task=0, cache=cache)
    for i in range(4):
        ds[i]
    assert len(cache) == 2


def test_replay_batches_hold_the_quota_of_every_old_task_and_class() -> None:
    groups = [torch.arange(20, 25), torch.arange(25, 30), torch.arange(30, 32), torch.arange(32, 40)]
    sampler = ReplayBatchSampler(n_new=20, groups=groups, batch_size=8, per_group=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    new_seen = sorted(i for b in batches for i in b if i < 20)
    assert new_seen == list(range(20))
    for batch in batches:
        for g in groups:
            assert sum(int(i) in set(g.tolist()) for i in batch) == min(3, len(g))
    again = list(ReplayBatchSampler(20, groups, 8, 3, seed=1))
    assert again == batches
    sampler.sampler.set_epoch(1)
    assert list(sampler) != batches


@pytest.mark.parametrize("n_groups", [0, 2, 6, 10])
def test_a_fixed_replay_total_keeps_batches_the_same_size_however_many_old_tasks(n_groups: int) -> None:
    groups = [torch.arange(20 + 5 * k, 25 + 5 * k) for k in range(n_groups)]
    batches = list(ReplayBatchSampler(n_new=16, groups=groups, batch_size=8, per_group=3, seed=0, total=8))
    expected = 8 + (8 if n_groups else 0)
    assert [len(b) for b in batches] == [expected, expected]
    for batch in batches:
        counts = [sum(int(i) in set(g.tolist()) for i in batch) for g in groups]
        assert max(counts, default=0) - min(counts, default=0) <= 1  # spread evenly over the groups


def test_features_only_replay_enters_the_batch_as_features() -> None:
    img = {
        "x": torch.zeros(3, 4, 4),
        "y": torch.tensor(1),
        "task": torch.tensor(2),
        "is_replay": torch.tensor(False),
        "idx": torch.tensor(0),
    }
    feat = {"feature": torch.ones(5), "y": torch.tensor(0), "task": torch.tensor(0)}
    batch = collate_increment([img, img, feat])
    assert batch["x"].shape == (2, 3, 4, 4)
    assert batch["replay_features"].shape == (1, 5)
    assert batch["replay_task"].tolist() == [0] and batch["replay_y"].tolist() == [0]


def test_datamodule_adds_replay_images_from_the_store(stream: Path) -> None:
    from ifd.continual.replay_store import ReplayEntry, ReplayStore

    old = TaskData.from_batch(stream / "a_first")
    new = TaskData.from_batch(stream / "b_second")
    rows = old.split("train")
    store = ReplayStore(features_only=False)
    entries = [
        ReplayEntry(
            task=0,
            task_name=old.name,
            batch=str(old.root),
            path=str(rows["path"][i]),
            label=int(rows["y"][i]),
            feature=torch.randn(4),
            stability=0.5,
        )
        for i in range(len(rows))
    ]
    store.add_task(0, old.name, entries)
    cfg = SimpleNamespace(img_size=16, batch_size=4, replay_per_class_per_task=2, features_only=False)
    dm = TaskIncrementDataModule(new, 1, cfg, store, roots={old.name: old.root}, seed=0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (8, 3, 16, 16)
    assert batch["is_replay"].sum() == 4
    replay_y = batch["y"][batch["is_replay"]]
    assert sorted(replay_y.tolist()) == [0, 0, 1, 1]
    assert (batch["task"][batch["is_replay"]] == 0).all() and (batch["task"][~batch["is_replay"]] == 1).all()
