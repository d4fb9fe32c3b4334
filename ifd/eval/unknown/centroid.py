"""Cosine distance to the nearest known (task, class) centroid: the original score of ifd's open-set check.

LID isolates every (task, class) pair as its own cluster on the unit sphere; an image of a generator never
learned is, more often than a known one, far from all of them. The centroids come from the replay entries
of each cluster (a stored centroid for an old task without replay). Keeps K x D floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ifd.errors import IfdError
from ifd.eval.unknown.base import UNKNOWN_SCORERS, UnknownFitData, UnknownScorer, as_numpy, unit_rows


def centroid_of(f: torch.Tensor) -> torch.Tensor:
    """The normalised mean of the normalised rows of f."""
    return torch.nn.functional.normalize(unit_rows(f).mean(0), dim=0)


@UNKNOWN_SCORERS.register("centroid")
class CentroidScorer(UnknownScorer):
    method = "centroid"

    def __init__(self, centroids: torch.Tensor, unit: bool = False) -> None:
        if centroids.ndim != 2 or not len(centroids):
            raise IfdError("the centroid score needs at least one known cluster centroid")
        self.centroids = centroids.detach().float() if unit else unit_rows(centroids)  # `unit`: saved, already unit

    @classmethod
    def fit(cls, data: UnknownFitData, **params: Any) -> CentroidScorer:
        kept = [centroid_of(f) for f in data.clusters if len(f)]
        if not kept:
            raise IfdError("the centroid score needs at least one non-empty known cluster")
        return cls(torch.stack(kept))

    def scores(self, z: torch.Tensor) -> np.ndarray:
        f = unit_rows(z)
        return as_numpy((1.0 - f @ self.centroids.T.to(f.device)).min(dim=1).values)

    def state(self) -> dict[str, Any]:
        return {"centroids": self.centroids.cpu()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CentroidScorer:
        return cls(state["centroids"].float(), unit=True)
