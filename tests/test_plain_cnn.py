"""The plain BatchNorm CNN backbone: registered by name, conv-BN-ReLU only (no fixed filters), learns a weak
global colour shift, and runs as the backbone of our detector and of an Avalanche baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train_data import write_tiny_batch
from torch import nn

from ifd.models.backbones import create_backbone, known_backbones


def test_registered_beside_the_default_with_every_filter_learned() -> None:
    assert {"plain_cnn", "ifd_cnn_small"} <= set(known_backbones())
    model = create_backbone("plain_cnn", img_size=64)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and len([m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]) == 5
    assert not [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    buffers = {name.rsplit(".", 1)[-1] for name, _ in model.named_buffers()}
    assert buffers <= {"running_mean", "running_var", "num_batches_tracked"}  # no fixed kernels
    assert all(p.requires_grad for p in model.parameters())
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 1.0e6
    for size in (32, 64, 100):
        assert model.eval()(torch.zeros(2, 3, size, size)).shape == (2, model.num_features) == (2, 256)


def _shifted(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n uniform-noise reals, n fakes shifted by +5/255 in red and -5/255 in blue (pixel noise std 74/255)."""
    shift = torch.tensor([5.0, 0.0, -5.0]).view(1, 3, 1, 1) / 255
    x = torch.cat([torch.rand(n, 3, 32, 32, generator=g), torch.rand(n, 3, 32, 32, generator=g) + shift])
    return x, torch.cat([torch.zeros(n), torch.ones(n)]).long()


def test_it_learns_a_weak_global_colour_shift() -> None:
    """A trace with all its energy at frequency zero: per-sample normalisation would erase it, BN keeps it."""
    from ifd.eval.scoring import auc_score

    g = torch.Generator().manual_seed(0)
    x, y = _shifted(g, 64)
    torch.manual_seed(0)
    backbone = create_backbone("plain_cnn", img_size=32)
    model = nn.Sequential(backbone, nn.Linear(backbone.num_features, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        idx = torch.randperm(len(y), generator=g)[:32]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = _shifted(g, 64)
    with torch.no_grad():
        p = torch.softmax(model.eval()(xt), 1)[:, 1]
    assert auc_score(yt.numpy(), p.numpy()) > 0.9


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t, size=32)
    return root


@pytest.mark.parametrize("strategy", ["lid", "naive"])
def test_it_serves_as_backbone_of_our_detector_and_of_a_baseline(strategy: str, stream: Path, tmp_path: Path) -> None:
    from ifd.bench.spec import RunSpec
    from ifd.bench.worker import run_one
    from ifd.continual.config import LIDConfig

    lid = LIDConfig(backbone="plain_cnn", img_size=32, epochs=1, batch_size=8, step_size=1, budget_per_task=4,
                    replay_per_class_per_task=2).model_dump(mode="json")
    result = run_one(RunSpec(strategy=strategy, stream=str(stream), lid=lid, work_dir=str(tmp_path / strategy)),
                     progress=lambda _: None)
    assert result.ok, result.error
    assert result.matrix is not None and [len(r) for r in result.matrix["auc"]] == [1, 2]


def test_a_saved_detector_on_it_loads_with_the_same_scores(stream: Path, tmp_path: Path) -> None:
    from ifd.continual.config import LIDConfig
    from ifd.data.tasks import tasks_from_stream
    from ifd.train.evaluate import predict_task
    from ifd.train.loop import train_sequence
    from ifd.train.state import IncrementalState

    cfg = LIDConfig(backbone="plain_cnn", img_size=32, epochs=1, batch_size=8, step_size=1, budget_per_task=4,
                    replay_per_class_per_task=2)
    tasks = tasks_from_stream(stream)[:1]
    state = train_sequence(tasks, cfg, tmp_path / "out", progress=lambda _: None)
    loaded = IncrementalState.load(tmp_path / "out" / "state.pt")
    _, p0, _, _ = predict_task(state.model, tasks[0], img_size=32)
    _, p1, _, _ = predict_task(loaded.model, tasks[0], img_size=32)
    assert p0 == pytest.approx(p1, abs=1e-6)
