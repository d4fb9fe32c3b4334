"""The Avalanche adapter reads images lazily: a split is paths and labels, an image is decoded when a batch
asks for it (once per epoch without a cache), and a real Avalanche strategy trains from those datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_data import write_tiny_batch

from ifd.bench.spec import RunContext, RunSpec

EPOCHS = 2


@pytest.fixture()
def stream(tmp_path: Path) -> Path:
    root = tmp_path / "stream"
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t)
    return root


def context(stream: Path, tmp_path: Path, **lid: object) -> RunContext:
    from ifd.bench.worker import context as make_context
    from ifd.continual.config import LIDConfig

    cfg = LIDConfig(**{"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": EPOCHS, "batch_size": 8,
                       "step_size": 1, "budget_per_task": 4, **lid})
    spec = RunSpec(strategy="naive", stream=str(stream), lid=cfg.model_dump(mode="json"), work_dir=str(tmp_path / "w"))
    return make_context(spec, progress=lambda _: None)


def test_a_lazy_split_holds_no_pixels_and_reads_the_file_when_asked(stream: Path, tmp_path: Path) -> None:
    from ifd.bench.lazy_split import LazySplit
    from ifd.data.tasks import TaskData

    task = TaskData.from_batch(stream / "t0")
    split = LazySplit(task, "train", 16)
    assert not [v for v in vars(split).values() if isinstance(v, torch.Tensor)]
    assert split.reads == 0 and len(split) == len(task.split("train"))
    x, y = split[0]
    assert x.dtype == torch.float32 and x.shape == (3, 16, 16) and y == split.targets[0] and split.reads == 1
    # the file changes on disk: the next read sees the new content, nothing was kept from before
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(split.paths[0])
    x2, _ = split[0]
    assert split.reads == 2 and not torch.equal(x, x2)
    assert torch.allclose(x2, x2[:, :1, :1].expand_as(x2))  # the black image, normalised per channel


def test_an_avalanche_strategy_trains_from_lazy_splits_read_on_demand(stream: Path, tmp_path: Path) -> None:
    from ifd.bench.avalanche_adapter import lazy_splits, run_avalanche

    ctx = context(stream, tmp_path, image_cache_mb=0)  # no decoded-image cache: every read decodes the file
    kept = []

    def load(c: RunContext):  # the adapter's own loader; the test keeps the splits to look at them after
        kept.append(lazy_splits(c))
        return kept[-1]

    result = run_avalanche("naive", ctx, load=load)
    assert result.matrix is not None and [len(r) for r in result.matrix["auc"]] == [1, 2]
    splits = kept[0]
    # nothing decoded up front: each train image read once per epoch, each test image once per evaluation
    assert [s.reads for s in splits.train] == [EPOCHS * len(s) for s in splits.train]
    assert [s.reads for s in splits.test] == [2 * len(splits.test[0]), len(splits.test[1])]


def test_replay_memory_stays_lazy_and_the_cache_is_bounded(stream: Path, tmp_path: Path) -> None:
    from ifd.bench.avalanche_adapter import lazy_splits, run_avalanche

    # 1 MiB holds 21 images of 128 px (48 KiB each as uint8): fewer than the stream's 48
    ctx = context(stream, tmp_path, img_size=128, image_cache_mb=1)
    kept = []

    def load(c: RunContext):
        kept.append(lazy_splits(c))
        return kept[-1]

    result = run_avalanche("replay", ctx, load=load)
    assert result.replay_samples == 2 * 4 and result.replay_bytes > 0
    splits = [*kept[0].train, *kept[0].test]
    cache = splits[0].cache
    assert cache is not None and all(s.cache is cache for s in splits)
    assert 0 < cache.nbytes <= 1024**2 and len(cache) < sum(len(s) for s in splits)


def test_lazy_loading_gives_the_matrix_the_eager_loading_gave(stream: Path, tmp_path: Path) -> None:
    """benchmarks/avalanche_rss.py's reconstruction of the old eager loader against the lazy one."""
    import importlib.util

    from ifd.bench.avalanche_adapter import run_avalanche

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "avalanche_rss.py"
    spec = importlib.util.spec_from_file_location("avalanche_rss", path)
    assert spec is not None and spec.loader is not None
    rss = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rss)
    eager = run_avalanche("naive", context(stream, tmp_path / "e"), load=rss.eager_splits)
    lazy = run_avalanche("naive", context(stream, tmp_path / "l", image_cache_mb=0))
    assert eager.matrix is not None and lazy.matrix is not None
    for key in ("auc", "acc"):
        assert np.allclose(np.concatenate(lazy.matrix[key]), np.concatenate(eager.matrix[key]), atol=1e-6)
