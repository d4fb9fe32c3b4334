"""Energy score over every task head's logits (Liu et al., "Energy-based Out-of-distribution Detection",
NeurIPS 2020): E(z) = -logsumexp of the T x 2 logits of the T heads; higher energy = less familiar.

The heads are linear maps of the pooled features, so the scorer keeps a copy of their weights (T x 2 x D)
and scores from features alone, as every other score does (the ONNX graph hands out the embedding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ifd.errors import IfdError
from ifd.eval.unknown.base import UNKNOWN_SCORERS, UnknownFitData, UnknownScorer, as_numpy


@UNKNOWN_SCORERS.register("energy")
class EnergyScorer(UnknownScorer):
    method = "energy"

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        if weight.ndim != 3 or bias.shape != weight.shape[:2] or not len(weight):
            raise IfdError("the energy score needs head weights (T, C, D) and biases (T, C) of at least one head")
        self.weight = weight.detach().float().cpu()
        self.bias = bias.detach().float().cpu()

    @classmethod
    def fit(cls, data: UnknownFitData, **params: Any) -> EnergyScorer:
        if data.heads is None:
            raise IfdError("the energy score needs the task heads' weights; this model exposes none")
        return cls(*data.heads)

    def scores(self, z: torch.Tensor) -> np.ndarray:
        f = z.detach().float()
        logits = torch.einsum("bd,tcd->btc", f, self.weight.to(f.device)) + self.bias.to(f.device)
        return as_numpy(-torch.logsumexp(logits.flatten(1), dim=1))

    def state(self) -> dict[str, Any]:
        return {"weight": self.weight, "bias": self.bias}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EnergyScorer:
        return cls(state["weight"], state["bias"])
