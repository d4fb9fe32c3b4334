"""Generator attribution and unknown-generator scoring in LID's latent space (beyond the papers).

LID isolates every (task, class) pair as its own cluster on the unit sphere, so the fake clusters of the
learned tasks are landmarks: a fake image is attributed to the generator whose fake centroid is nearest
(cosine), and its cosine distance to that centroid is its unknown-generator score. The score is
calibrated on validation fakes of the known generators: `threshold` is their `quantile`-th distance, so
about (1 - quantile) of known fakes are flagged by mistake and a fake beyond it is called unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ifd.errors import IfdError


@dataclass
class AttributionIndex:
    """Normalised fake centroids (G, D) with their generator names, and the calibrated threshold."""

    generators: list[str]
    centroids: torch.Tensor
    threshold: float
    quantile: float

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """(N, G) cosine distance of each feature row to each fake centroid."""
        f = F.normalize(features.float(), dim=1)
        return 1.0 - f @ self.centroids.T.to(f.device)

    def attribute(self, features: torch.Tensor) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(nearest generator name, unknown score = distance to it, unknown flag) per row."""
        d = self.distances(features)
        best = d.min(dim=1)
        score = best.values.cpu().numpy().astype(np.float64)
        names = [self.generators[int(i)] for i in best.indices.tolist()]
        return names, score, score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "generators": list(self.generators),
            "centroids": self.centroids.detach().cpu(),
            "threshold": float(self.threshold),
            "quantile": float(self.quantile),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributionIndex:
        return cls(list(d["generators"]), d["centroids"].float(), float(d["threshold"]), float(d["quantile"]))


def fit_attribution(
    fake_features: Sequence[torch.Tensor],
    generators: Sequence[str],
    val_features: torch.Tensor,
    quantile: float = 0.95,
) -> AttributionIndex:
    """Centroids from each generator's fake features; threshold from the validation fakes' distances."""
    if len(fake_features) != len(generators) or not generators:
        raise IfdError("attribution needs one non-empty feature set per generator")
    cents = torch.stack([F.normalize(F.normalize(f.float(), dim=1).mean(0), dim=0) for f in fake_features])
    index = AttributionIndex(list(generators), cents, threshold=float("inf"), quantile=quantile)
    if val_features.shape[0]:
        d = index.distances(val_features).min(dim=1).values.numpy()
        index.threshold = float(np.quantile(d, quantile))
    return index


def attribution_accuracy(index: AttributionIndex, features: torch.Tensor, true_generators: Sequence[str]) -> float:
    """Share of fakes attributed to the generator that made them."""
    names, _, _ = index.attribute(features)
    return float(np.mean([a == b for a, b in zip(names, true_generators, strict=True)])) if names else float("nan")


def unknown_auc(index: AttributionIndex, known: torch.Tensor, unknown: torch.Tensor) -> float:
    """AUC of the unknown score separating fakes of unseen generators (positive) from known ones."""
    from ifd.eval.scoring import auc_score

    _, s_known, _ = index.attribute(known)
    _, s_unknown, _ = index.attribute(unknown)
    y = np.r_[np.zeros(len(s_known)), np.ones(len(s_unknown))]
    return auc_score(y, np.r_[s_known, s_unknown])
