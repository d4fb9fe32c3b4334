"""Random replay: a uniform sample of the class (the `lid-random-replay` ablation; paper: 0.783 vs SUR 0.932)."""

from __future__ import annotations

import torch

from ifd.continual.selectors.base import SELECTORS, ReplaySelector


@SELECTORS.register("random")
class RandomSelector(ReplaySelector):
    def select(
        self, features: torch.Tensor, stability: torch.Tensor, budget: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n = features.shape[0]
        return torch.randperm(n, generator=generator)[: max(0, min(budget, n))]
