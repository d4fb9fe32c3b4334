"""Herding (Welling, ICML 2009; the exemplar rule of iCaRL, Rebuffi et al., CVPR 2017).

Greedily picks the sample that brings the mean of the chosen (normalised) features closest to the
class mean; the order of picking is the priority order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ifd.continual.selectors.base import SELECTORS, ReplaySelector


@SELECTORS.register("herding")
class HerdingSelector(ReplaySelector):
    def select(
        self, features: torch.Tensor, stability: torch.Tensor, budget: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        f = F.normalize(features.float(), dim=1)
        n = f.shape[0]
        k = max(0, min(budget, n))
        mu = f.mean(dim=0)
        chosen: list[int] = []
        running = torch.zeros_like(mu)
        free = torch.ones(n, dtype=torch.bool)
        for step in range(1, k + 1):
            candidate_means = (running[None, :] + f) / step
            dist = (candidate_means - mu[None, :]).norm(dim=1).masked_fill(~free, float("inf"))
            i = int(dist.argmin())
            chosen.append(i)
            free[i] = False
            running = running + f[i]
        return torch.tensor(chosen, dtype=torch.long)
