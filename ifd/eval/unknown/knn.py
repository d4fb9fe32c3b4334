"""k-th nearest-neighbour cosine distance on L2-normalised features (Sun et al., "Out-of-Distribution
Detection with Deep Nearest Neighbors", ICML 2022).

The bank is the budgeted calibration set and nothing else: the replay samples of the old tasks plus the
newest task's val split, as unit vectors. It is kept after the task, so its bytes (N x D float32) count in
the memory budget. Non-parametric: no assumption that a generator's features form one blob, which the
fakes of several traces and the reals of many photographs do not.

The threshold is a quantile of held-out scores of the bank: each row scored without every row of its
source (`UnknownFitData.groups`: a real and the fake forged from it, the frames of one video), since a
twin left in the bank answers at distance ~0 and would pull the threshold, and the val AUC, toward an
over-confident value (with ImageNet features a weak trace leaves a fake next to its real). An image that is
itself in the bank (cosine distance below SELF_DISTANCE to a bank row) is scored at query time without
that row only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ifd.errors import IfdError
from ifd.eval.unknown.base import (
    UNKNOWN_SCORERS,
    UnknownFitData,
    UnknownScorer,
    as_numpy,
    group_codes,
    unit_rows,
)

REPORT_K = (1, 10)
"""The k the open-set report always measures side by side (plus the configured one)."""
SELF_DISTANCE = 1e-5
"""A bank row nearer than this (cosine distance) to a query is the query itself."""


@UNKNOWN_SCORERS.register("knn")
class KNNScorer(UnknownScorer):
    method = "knn"

    def __init__(self, bank: torch.Tensor, k: int, unit: bool = False) -> None:
        if k < 1:
            raise IfdError(f"kNN unknown score: k must be at least 1, got {k}")
        if bank.ndim != 2 or not len(bank):
            raise IfdError("the kNN unknown score needs a bank of at least one calibration sample")
        self.bank = bank.detach().float() if unit else unit_rows(bank)  # `unit`: rows already normalised (a saved bank)
        self.k = int(k)

    @classmethod
    def fit(cls, data: UnknownFitData, k: int = 10, **params: Any) -> KNNScorer:
        return cls(data.bank, k)

    @classmethod
    def heldout_scores(cls, data: UnknownFitData, k: int = 10, **params: Any) -> np.ndarray:
        """Each bank row's k-th nearest neighbour among the rows of *other* sources (`data.groups`; without
        groups, other rows). The synthetic stream forges each fake from a real of the same split, and a
        video's frames share a split: with only the row itself left out, its twin answers at distance ~0."""
        if data.groups is None:
            return super().heldout_scores(data, k=k, **params)
        bank = unit_rows(data.bank)
        codes = torch.as_tensor(group_codes(data.groups)[1])
        rank = min(int(k), len(bank))
        out = []
        for start in range(0, len(bank), 2048):
            mine = codes[start : start + 2048, None] == codes[None, :]
            dist = (1.0 - bank[start : start + 2048] @ bank.T).masked_fill(mine, float("inf"))
            # the k-th nearest row of another source (the farthest there is when fewer than k exist)
            pick = torch.clamp((~mine).sum(1).clamp(max=rank) - 1, min=0)
            out.append(dist.topk(rank, dim=1, largest=False).values.gather(1, pick[:, None])[:, 0])
        held = as_numpy(torch.cat(out)) if out else np.zeros(0)
        alone = ~np.isfinite(held)  # a bank of one source: no other source to hold out against
        if alone.any():
            held[alone] = super().heldout_scores(data, k=k, **params)[alone]
        return held

    @property
    def label(self) -> str:
        return f"knn@{self.k}"

    def scores(self, z: torch.Tensor) -> np.ndarray:
        f = unit_rows(z)
        bank = self.bank.to(f.device)
        rank = min(self.k + 1, len(bank))
        out = []
        for chunk in f.split(4096):
            dist = 1.0 - (chunk @ bank.T).topk(rank, dim=1).values  # ascending distances
            is_self = (dist[:, 0] < SELF_DISTANCE).long()
            # the k-th neighbour other than the query itself (the farthest there is when the bank is smaller)
            pick = torch.clamp(self.k - 1 + is_self, max=rank - 1)
            out.append(dist.gather(1, pick[:, None])[:, 0])
        return as_numpy(torch.cat(out)) if out else np.zeros(0)

    def state(self) -> dict[str, Any]:
        return {"bank": self.bank.cpu(), "k": self.k}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KNNScorer:
        return cls(state["bank"].float(), int(state["k"]), unit=True)
