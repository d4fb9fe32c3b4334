"""The low-frequency branch: coarse statistics that keep position, per-image gain and colour, and a backbone
with it that learns a smooth gain field the high-pass CNN alone does not."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ifd.data.image_dataset import to_model_input
from ifd.models.backbones import create_backbone
from ifd.models.lowfreq_branch import GRID, LowFrequencyBranch, LowFrequencyStatistics


def _uniform(value: float, size: int = 32) -> torch.Tensor:
    return torch.full((1, 3, size, size), value)


def _stats(pixels01: torch.Tensor) -> torch.Tensor:
    """statistics of [0, 1] images, split into (mean, log-mean, std) each (B, 3, G, G)."""
    x = to_model_input((pixels01 * 255).round().to(torch.uint8))
    s = LowFrequencyStatistics()(x)
    return s.view(len(x), 3, 3, GRID, GRID).unbind(1)


def test_a_gain_on_one_half_moves_only_that_half_of_the_log_means() -> None:
    base = _uniform(0.5)
    lit = base.clone()
    lit[..., :, :16] *= 1.2  # left half 20 % brighter
    (_, log0, _), (_, log1, _) = _stats(base), _stats(lit)
    diff = log1 - log0
    left, right = diff[..., : GRID // 2], diff[..., GRID // 2 :]
    assert left.mean().item() == pytest.approx(math.log(1.2), abs=0.02)
    assert right.abs().max().item() < 1e-5  # where the change sits is kept, not pooled away


def test_per_image_colour_and_contrast_survive() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 32, 32, generator=g) * 0.5 + 0.25
    cast = img + torch.tensor([0.04, 0.0, -0.04]).view(1, 3, 1, 1)
    veiled = img * 0.7 + 0.3 * 0.8
    (m0, _, s0), (m1, _, _), (_, _, s2) = _stats(img), _stats(cast), _stats(veiled)
    assert (m1[0, 0] - m0[0, 0]).mean().item() == pytest.approx(0.04, abs=0.005)
    assert (m1[0, 2] - m0[0, 2]).mean().item() == pytest.approx(-0.04, abs=0.005)
    assert (s2 / s0).mean().item() == pytest.approx(0.7, abs=0.03)  # a veil lowers the local contrast


def test_images_smaller_than_the_grid_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="at least 8 px"):
        LowFrequencyStatistics()(torch.zeros(1, 3, 4, 4))


def test_the_backbone_concatenates_trunk_and_branch_at_any_size() -> None:
    model = create_backbone("ifd_cnn_small_lf", img_size=64).eval()
    assert model.num_features == 192 + 64
    for size in (16, 64, 100):
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 256)
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())  # held by the project's BN rule


def test_a_single_image_trains_through_the_branch() -> None:
    """A baseline's last minibatch can hold one image: train mode must not fail on it, and uses the
    running statistics for it (what eval mode does)."""
    model = create_backbone("ifd_cnn_small_lf", img_size=32)
    model.train()(torch.randn(8, 3, 32, 32))  # running statistics move off their initial values
    x = torch.randn(1, 3, 32, 32)
    train_out = model.branch.train()(x)
    assert torch.allclose(train_out, model.branch.eval()(x), atol=1e-6)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4).train()(torch.randn(1, 4))  # what plain BatchNorm1d does


def _gain_pairs(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n smooth-textured reals and n fakes lit by a fixed left-to-right gain ramp of +-15 %."""
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    reals = nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False) * 0.6 + 0.2
    reals = (reals + 0.05 * torch.rand(n, 3, 32, 32, generator=g)).clamp(0, 1)
    ramp = torch.linspace(-0.15, 0.15, 32).view(1, 1, 1, 32)
    fakes = (reals * (1 + ramp)).clamp(0, 1)
    x = to_model_input((torch.cat([reals, fakes]) * 255).round().to(torch.uint8))
    return x, torch.cat([torch.zeros(n), torch.ones(n)]).long()


def _held_out_auc(features: nn.Module, dim: int) -> float:
    from ifd.eval.scoring import auc_score

    g = torch.Generator().manual_seed(0)
    x, y = _gain_pairs(g, 48)
    model = nn.Sequential(features, nn.Linear(dim, 2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        idx = torch.randperm(len(y), generator=g)[:32]
        loss = nn.functional.cross_entropy(model.train()(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, yt = _gain_pairs(g, 48)
    with torch.no_grad():
        p = torch.softmax(model.eval()(xt), 1)[:, 1]
    return auc_score(yt.numpy(), p.numpy())


def test_the_branch_alone_learns_a_smooth_gain_field() -> None:
    """The trace of the widened stream's gain_field family in miniature, through nothing but the branch."""
    torch.manual_seed(0)
    branch = LowFrequencyBranch(out_features=64)
    assert _held_out_auc(branch, 64) > 0.85
    torch.manual_seed(0)
    blind = nn.Sequential(LowFrequencyStatistics(), nn.Unflatten(1, (9, GRID, GRID)), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert _held_out_auc(blind, 9) < 0.65  # the same statistics pooled over position: the ramp's shape is gone
