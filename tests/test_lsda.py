"""LSDA in latent space: only fake clusters are augmented, reals are never touched or mixed in."""

from __future__ import annotations

import pytest
import torch

from ifd.continual.augmenters import AUGMENTERS, create_augmenter
from ifd.continual.augmenters.lsda import LSDAAugmenter
from ifd.errors import UnknownNameError


def _stream(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Reals of 3 tasks far out on dimension 0; fakes of 3 tasks near the origin, one offset each."""
    g = torch.Generator().manual_seed(seed)
    rows, labels = [], []
    for t in range(3):
        real = torch.randn(4, 6, generator=g) * 0.1
        real[:, 0] += 100.0
        fake = torch.randn(5, 6, generator=g) * 0.3
        fake[:, 1 + t] += 2.0
        rows += [real, fake]
        labels += [torch.full((4,), 2 * t), torch.full((5,), 2 * t + 1)]
    return torch.cat(rows), torch.cat(labels)


def test_outputs_come_only_from_fakes_and_carry_fake_labels() -> None:
    f, labels = _stream()
    f_aug, y_aug = LSDAAugmenter().augment(f, labels, torch.Generator().manual_seed(0))
    n_fake = int((labels % 2 == 1).sum())
    assert f_aug.shape == (2 * n_fake, f.shape[1]) and y_aug.shape == (2 * n_fake,)
    assert set(y_aug.tolist()) <= {1, 3, 5}
    assert f_aug[:, 0].abs().max() < 10.0


def test_reals_get_no_gradient_and_inputs_stay_unchanged() -> None:
    f, labels = _stream()
    f = f.clone().requires_grad_(True)
    before = f.detach().clone()
    f_aug, _ = LSDAAugmenter().augment(f, labels, torch.Generator().manual_seed(1))
    f_aug.pow(2).sum().backward()
    real = labels % 2 == 0
    assert f.grad[real].abs().max() == 0 and f.grad[~real].abs().sum() > 0
    assert torch.equal(f.detach(), before)


def test_no_fakes_no_extras_and_one_fake_cluster_no_mixup() -> None:
    f, labels = _stream()
    reals = labels % 2 == 0
    f_aug, y_aug = LSDAAugmenter().augment(f[reals], labels[reals])
    assert f_aug.shape[0] == 0 and y_aug.shape[0] == 0
    one = (labels == 0) | (labels == 1)
    f_aug, y_aug = LSDAAugmenter().augment(f[one], labels[one])
    assert f_aug.shape[0] == 5 and set(y_aug.tolist()) == {1}


def test_mixup_joins_different_fake_clusters_and_takes_the_larger_weight_label() -> None:
    centres = {1: torch.tensor([10.0, 0, 0]), 3: torch.tensor([0, 10.0, 0]), 5: torch.tensor([0, 0, 10.0])}
    labels = torch.tensor([1, 1, 3, 3, 5, 5, 0, 0])
    f = torch.stack([centres.get(int(y), torch.tensor([-50.0, -50.0, -50.0])) for y in labels])
    aug = LSDAAugmenter(interp=0.0, extrap=0.0, noise=0.0, mixup=True)
    f_aug, y_aug = aug.augment(f, labels, torch.Generator().manual_seed(0))
    assert f_aug.shape[0] == 6
    for z, y in zip(f_aug, y_aug, strict=True):
        weights = {k: float(z @ c) / 100.0 for k, c in centres.items()}
        used = [k for k, w in weights.items() if w > 1e-6]
        assert len(used) <= 2 and abs(sum(weights.values()) - 1.0) < 1e-5
        assert int(y) == max(weights, key=weights.get)


def test_within_domain_ops_move_as_described() -> None:
    f, labels = _stream(3)
    fake = labels % 2 == 1
    z, y = f[fake], labels[fake]
    mu = torch.stack([z[y == c].mean(0) for c in y.tolist()])
    dist = (z - mu).norm(dim=1)
    far = torch.stack([(z[y == c] - z[y == c].mean(0)).norm(dim=1).max() for c in y.tolist()])
    g = torch.Generator().manual_seed(0)
    out, _ = LSDAAugmenter(interp=0.0, extrap=1.0, noise=0.0, mixup=False).augment(f, labels, g)
    assert ((out - mu).norm(dim=1) >= dist - 1e-5).all()
    assert ((out - mu).norm(dim=1) <= 2 * dist + 1e-5).all()
    out, _ = LSDAAugmenter(interp=1.0, extrap=0.0, noise=0.0, mixup=False).augment(f, labels, g)
    assert ((out - mu).norm(dim=1) <= far + 1e-5).all()
    out, _ = LSDAAugmenter(interp=0.0, extrap=0.0, noise=1.0, mixup=False).augment(f, labels, g)
    assert (out - z).abs().sum() > 0 and (out - z).norm(dim=1).max() < 5.0


def test_same_generator_same_extras() -> None:
    f, labels = _stream()
    a = LSDAAugmenter().augment(f, labels, torch.Generator().manual_seed(7))
    b = LSDAAugmenter().augment(f, labels, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_registry() -> None:
    assert {"lsda", "none"} <= set(AUGMENTERS.names())
    f, labels = _stream()
    f_aug, y_aug = create_augmenter("none", interp=1.0).augment(f, labels)
    assert f_aug.shape == (0, f.shape[1]) and y_aug.shape == (0,)
    with pytest.raises(UnknownNameError, match="lsda"):
        create_augmenter("nope")
