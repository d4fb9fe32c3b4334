"""Generator attribution and unknown-generator scoring in LID's latent space (beyond the papers).

LID isolates every (task, class) pair as its own cluster on the unit sphere, so the clusters of the learned
tasks are landmarks. A fake is attributed to the generator whose fake centroid is nearest (cosine). Its
unknown-generator score is the cosine distance to the nearest known cluster of either class: an image of a
generator never learned is, more often than a known one, far from everything the detector knows. (Only
fake clusters would not do: the fakes of an unseen generator are mostly scored real, so they sit far from
every fake cluster exactly like the reals do.) The score is calibrated on validation images of the known
tasks: `threshold` is their `quantile`-th score, so about (1 - quantile) of known images are flagged by
chance; the monitor therefore judges the flagged share of a window, not single flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ifd.errors import IfdError


def _centroid(f: torch.Tensor) -> torch.Tensor:
    return F.normalize(F.normalize(f.float(), dim=1).mean(0), dim=0)


@dataclass
class AttributionIndex:
    """Fake centroids (G, D) named by generator, centroids of every known cluster (K, D), and the threshold."""

    generators: list[str]
    fake_centroids: torch.Tensor
    centroids: torch.Tensor
    threshold: float
    quantile: float

    def unknown_scores(self, features: torch.Tensor) -> np.ndarray:
        """Cosine distance of each row to the nearest known cluster."""
        f = F.normalize(features.float(), dim=1)
        return (1.0 - f @ self.centroids.T.to(f.device)).min(dim=1).values.cpu().numpy().astype(np.float64)

    def attribute(self, features: torch.Tensor) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(nearest generator name, unknown score, unknown flag) per row."""
        f = F.normalize(features.float(), dim=1)
        nearest = (f @ self.fake_centroids.T.to(f.device)).argmax(dim=1)
        names = [self.generators[int(i)] for i in nearest.tolist()]
        score = self.unknown_scores(features)
        return names, score, score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "generators": list(self.generators),
            "fake_centroids": self.fake_centroids.detach().cpu(),
            "centroids": self.centroids.detach().cpu(),
            "threshold": float(self.threshold),
            "quantile": float(self.quantile),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributionIndex:
        return cls(
            list(d["generators"]), d["fake_centroids"].float(), d["centroids"].float(), float(d["threshold"]), float(d["quantile"])
        )


def fit_attribution(
    fake_features: Sequence[torch.Tensor],
    real_features: Sequence[torch.Tensor],
    generators: Sequence[str],
    val_features: torch.Tensor,
    quantile: float = 0.95,
) -> AttributionIndex:
    """Centroids from each known task's fake (and real) features; threshold from validation images."""
    if len(fake_features) != len(generators) or not generators or any(len(f) == 0 for f in fake_features):
        raise IfdError("attribution needs a non-empty fake feature set per generator")
    fakes = torch.stack([_centroid(f) for f in fake_features])
    reals = [_centroid(f) for f in real_features if len(f)]
    index = AttributionIndex(list(generators), fakes, torch.cat([fakes, *[r[None] for r in reals]]), float("inf"), quantile)
    if val_features.shape[0]:
        index.threshold = float(np.quantile(index.unknown_scores(val_features), quantile))
    return index


def attribution_accuracy(index: AttributionIndex, features: torch.Tensor, true_generators: Sequence[str]) -> float:
    """Share of fakes attributed to the generator that made them."""
    names, _, _ = index.attribute(features)
    return float(np.mean([a == b for a, b in zip(names, true_generators, strict=True)])) if names else float("nan")


def unknown_auc(index: AttributionIndex, known: torch.Tensor, unknown: torch.Tensor) -> float:
    """AUC of the unknown score separating images of unseen generators (positive) from known ones."""
    from ifd.eval.scoring import auc_score

    s_known, s_unknown = index.unknown_scores(known), index.unknown_scores(unknown)
    y = np.r_[np.zeros(len(s_known)), np.ones(len(s_unknown))]
    return auc_score(y, np.r_[s_known, s_unknown])
