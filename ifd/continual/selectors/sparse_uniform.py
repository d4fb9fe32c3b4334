"""Sparse Uniform Replay (SUR; SUR-LID, CVPR 2025, arXiv 2411.11396, §SUR).

For one class of one task, with per-class budget n:
1. magnitude of each sample: distance to the class centroid, ||f_i - c|| (paper), or the dot product with
   an exponential-moving-average centroid, f_i . c_ema with c <- (1 - a) c + a f_i over the samples in
   order (official code, a = 0.1); f are L2-normalised pooled features (the space LID's losses work in);
2. sort by magnitude and cut the sorted samples into ceil(n / 2) intervals of equal count;
3. in each interval keep the most stable sample s and the sample least cosine-similar to s
   (angular spread), so the replay covers the class from its core to its rim and in every direction.
Priority order: the stable sample of every interval first (low to high magnitude), then the partners.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ifd.continual.selectors.base import SELECTORS, ReplaySelector
from ifd.errors import IfdError

Magnitude = Literal["distance", "dot_ema"]


def magnitudes(f: torch.Tensor, mode: Magnitude = "distance", ema_alpha: float = 0.1) -> torch.Tensor:
    """(N,) magnitude of each normalised feature row relative to the class centroid."""
    if mode == "distance":
        return (f - f.mean(dim=0, keepdim=True)).norm(dim=1)
    if mode == "dot_ema":
        c = f[0].clone()
        for row in f[1:]:
            c = (1 - ema_alpha) * c + ema_alpha * row
        return f @ c
    raise IfdError(f"unknown SUR magnitude {mode!r}; known: distance, dot_ema")


@SELECTORS.register("sparse_uniform")
class SparseUniformSelector(ReplaySelector):
    def __init__(self, magnitude: Magnitude = "distance", ema_alpha: float = 0.1) -> None:
        self.magnitude = magnitude
        self.ema_alpha = ema_alpha

    @classmethod
    def from_config(cls, cfg: Any) -> SparseUniformSelector:
        return cls(magnitude=cfg.magnitude, ema_alpha=float(cfg.ema_alpha))

    def intervals(self, features: torch.Tensor, budget: int) -> list[torch.Tensor]:
        """Row indices sorted by magnitude, cut into ceil(budget / 2) equal-count intervals."""
        f = F.normalize(features.float(), dim=1)
        order = torch.argsort(magnitudes(f, self.magnitude, self.ema_alpha), stable=True)
        k = max(1, math.ceil(budget / 2))
        return [chunk for chunk in torch.tensor_split(order, k) if chunk.numel()]

    def select(
        self, features: torch.Tensor, stability: torch.Tensor, budget: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n = features.shape[0]
        budget = max(0, min(budget, n))
        if budget == 0:
            return torch.zeros(0, dtype=torch.long)
        f = F.normalize(features.float(), dim=1)
        stable, spread = [], []
        for chunk in self.intervals(features, budget):
            s = int(chunk[int(torch.argmax(stability[chunk].float()))])
            stable.append(s)
            if chunk.numel() > 1:
                cos = f[chunk] @ f[s]
                cos[chunk == s] = float("inf")
                spread.append(int(chunk[int(torch.argmin(cos))]))
        picked = (stable + spread)[:budget]
        if len(picked) < budget:  # only when intervals hold a single sample: top up by stability
            rest = [i for i in torch.argsort(stability.float(), descending=True).tolist() if i not in set(picked)]
            picked += rest[: budget - len(picked)]
        return torch.tensor(picked, dtype=torch.long)
