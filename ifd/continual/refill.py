"""Distribution re-filling (DR) of replay features (SUR-LID, CVPR 2025, arXiv 2411.11396).

The few replay samples of an old (task, class) cluster in a batch are replaced by random points in
the triangle spanned by two replay features of that cluster and its centroid:
    f' = beta * (alpha * f1 + (1 - alpha) * f2) + (1 - beta) * c,   alpha, beta ~ U(0, 1),
so the isolation loss sees the whole old cluster rather than the same stored points. f1 is the
sample itself and f2 another replay sample of its cluster in the batch (itself if it is alone).
The centroid is normalised first (the official code mixed a normalised feature with an
unnormalised centroid); the result is normalised again.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

Centroids = Mapping[int, torch.Tensor] | torch.Tensor


def centroid_matrix(
    f: torch.Tensor, cluster_labels: torch.Tensor, centroids: Centroids | None
) -> torch.Tensor:
    """(N, D) normalised centroid of each row's cluster; a cluster without a stored centroid uses its batch mean."""
    out = torch.empty_like(f)
    for label in cluster_labels.unique().tolist():
        rows = cluster_labels == label
        c = _lookup(centroids, int(label))
        if c is None:
            c = f[rows].detach().mean(dim=0)
        out[rows] = F.normalize(c.to(device=f.device, dtype=f.dtype).view(1, -1), dim=1)
    return out


def _lookup(centroids: Centroids | None, label: int) -> torch.Tensor | None:
    if centroids is None:
        return None
    if isinstance(centroids, torch.Tensor):
        return centroids[label] if 0 <= label < centroids.shape[0] else None
    return centroids.get(label)


def partner_indices(cluster_labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each row, a random other row of the same cluster (the row itself when it is alone)."""
    n = cluster_labels.shape[0]
    device = cluster_labels.device
    same = (cluster_labels[:, None] == cluster_labels[None, :]) & ~torch.eye(
        n, dtype=torch.bool, device=device
    )
    scores = torch.rand(n, n, generator=generator, device=device).masked_fill(~same, -1.0)
    best = scores.argmax(dim=1)
    return torch.where(same.any(dim=1), best, torch.arange(n, device=device))


def distribution_refill(
    f: torch.Tensor,
    cluster_labels: torch.Tensor,
    centroids: Centroids | None,
    generator: torch.Generator | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """Re-filled replay features (N, D); differentiable w.r.t. `f`, centroids are constants."""
    if f.shape[0] == 0:
        return f
    f = F.normalize(f, dim=1)
    cluster_labels = cluster_labels.to(f.device)
    c = centroid_matrix(f, cluster_labels, centroids)
    f2 = f[partner_indices(cluster_labels, generator)]
    alpha = torch.rand(f.shape[0], 1, generator=generator, device=f.device, dtype=f.dtype)
    beta = torch.rand(f.shape[0], 1, generator=generator, device=f.device, dtype=f.dtype)
    out = beta * (alpha * f + (1 - alpha) * f2) + (1 - beta) * c
    return F.normalize(out, dim=1) if normalize else out
