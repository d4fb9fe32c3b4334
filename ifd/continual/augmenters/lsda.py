"""Latent space data augmentation (LSDA; Yan et al., CVPR 2024, arXiv 2311.11278) on fake clusters.

Works on per-sample latent vectors (the paper's code uses channel slices of 8x8 maps). Only fake
clusters (odd cluster labels `task * 2 + 1`) are touched; reals are never augmented and never
mixed with fakes. Two families of extra samples:

- within-domain, one op per fake sample, drawn uniformly among the enabled ones (l ~ U(0, strength)):
  interpolation toward the cluster's hard example (farthest from its mean) z + l * (z_hard - z),
  centrifugal extrapolation z + l * (z - mu), additive noise z + l * eps * sigma (eps ~ N(0, I),
  sigma the cluster's per-dimension std);
- cross-domain mixup between two fake samples of *different* clusters, l * z_a + (1 - l) * z_b,
  l ~ Beta(a, a), a ~ U(0.5, 2); the mixed sample takes the label of its larger weight.

Cluster statistics (mu, z_hard, sigma) are constants; gradients flow through the samples.
A cluster with one sample in the batch yields copies of it for interpolation and extrapolation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ifd.continual.augmenters.base import AUGMENTERS, LatentAugmenter
from ifd.continual.losses import is_fake_cluster


@AUGMENTERS.register("lsda")
class LSDAAugmenter(LatentAugmenter):
    """Within-domain ops per fake cluster plus cross-domain mixup between different fake clusters."""

    def __init__(
        self,
        interp: float = 1.0,
        extrap: float = 1.0,
        noise: float = 1.0,
        mixup: bool = True,
        mix_alpha_range: Sequence[float] = (0.5, 2.0),
    ) -> None:
        if min(interp, extrap, noise) < 0:
            raise ValueError("LSDA strengths must be >= 0")
        self.strengths = {"interp": interp, "extrap": extrap, "noise": noise}
        self.ops = [name for name, s in self.strengths.items() if s > 0]
        self.mixup = mixup
        self.mix_alpha_range = (float(mix_alpha_range[0]), float(mix_alpha_range[1]))

    def augment(
        self, f: torch.Tensor, cluster_labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extras: first one within-domain sample per fake row (in row order), then the cross-domain mixes."""
        labels = cluster_labels.to(f.device).long()
        fake = is_fake_cluster(labels)
        z, y = f[fake], labels[fake]
        outs, outs_y = [f[:0]], [labels[:0]]
        if z.shape[0] and self.ops:
            outs.append(self._within(z, y, generator))
            outs_y.append(y)
        if self.mixup:
            mixed, mixed_y = self._cross(z, y, generator)
            outs.append(mixed)
            outs_y.append(mixed_y)
        return torch.cat(outs), torch.cat(outs_y)

    def _within(self, z: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        mu, hard, sigma = _cluster_stats(z.detach(), y)
        n = z.shape[0]
        op = torch.randint(len(self.ops), (n,), generator=generator, device=z.device)
        lam = torch.rand(n, 1, generator=generator, device=z.device, dtype=z.dtype)
        eps = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        candidates = {
            "interp": z + lam * self.strengths["interp"] * (hard - z),
            "extrap": z + lam * self.strengths["extrap"] * (z - mu),
            "noise": z + lam * self.strengths["noise"] * eps * sigma,
        }
        out = torch.zeros_like(z)
        for k, name in enumerate(self.ops):
            out = torch.where((op == k)[:, None], candidates[name], out)
        return out

    def _cross(
        self, z: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = z.shape[0]
        other = y[:, None] != y[None, :]
        has_other = other.any(dim=1)
        if not bool(has_other.any()):
            return z[:0], y[:0]
        scores = torch.rand(n, n, generator=generator, device=z.device).masked_fill(~other, -1.0)
        partner = scores.argmax(dim=1)
        rows = has_other.nonzero().squeeze(1)
        partner = partner[rows]
        lo, hi = self.mix_alpha_range
        a = lo + (hi - lo) * torch.rand(rows.shape[0], generator=generator, device=z.device, dtype=z.dtype)
        lam = sample_symmetric_beta(a, generator)[:, None]
        mixed = lam * z[rows] + (1 - lam) * z[partner]
        label = torch.where(lam.squeeze(1) >= 0.5, y[rows], y[partner])
        return mixed, label


def _cluster_stats(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row: its cluster's mean, hard example (farthest from the mean) and per-dimension std."""
    mu, hard, sigma = torch.empty_like(z), torch.empty_like(z), torch.empty_like(z)
    overall_std = z.std(dim=0, unbiased=False) if z.shape[0] > 1 else torch.zeros_like(z[0])
    for label in y.unique().tolist():
        rows = y == label
        zc = z[rows]
        m = zc.mean(dim=0)
        far = zc[(zc - m).norm(dim=1).argmax()]
        s = zc.std(dim=0, unbiased=False) if zc.shape[0] > 1 else overall_std
        mu[rows], hard[rows], sigma[rows] = m, far, s
    return mu, hard, sigma


def sample_symmetric_beta(
    a: torch.Tensor, generator: torch.Generator | None = None, rounds: int = 200
) -> torch.Tensor:
    """Beta(a, a) draws by Johnk's rejection method, so that `generator` controls them (torch.distributions cannot)."""
    out = torch.full_like(a, 0.5)
    todo = torch.ones_like(a, dtype=torch.bool)
    for _ in range(rounds):
        u = torch.rand(a.shape, generator=generator, device=a.device, dtype=a.dtype).clamp_min(1e-12)
        v = torch.rand(a.shape, generator=generator, device=a.device, dtype=a.dtype).clamp_min(1e-12)
        x, w = u.log() / a, v.log() / a
        log_sum = torch.logaddexp(x, w)
        accept = todo & (log_sum <= 0)
        out = torch.where(accept, (x - log_sum).exp(), out)
        todo = todo & ~accept
        if not bool(todo.any()):
            break
    return out
