"""Generator attribution and unknown-generator scoring in LID's latent space (beyond the papers).

LID isolates every (task, class) pair as its own cluster on the unit sphere, so the clusters of the learned
tasks are landmarks. A fake is attributed to the generator whose fake centroid is nearest (cosine). Its
unknown-generator score is one of the registered scores of ifd/eval/unknown (centroid distance, kNN
distance to the calibration bank, Mahalanobis distance under a tied shrunk covariance, the heads' energy;
LIDConfig `unknown.method`): an image of a generator never learned is, more often than a known one, far
from everything the detector knows. (Only fake clusters would not do: the fakes of an unseen generator are
mostly scored real, so they sit far from every fake cluster exactly like the reals do.) The score is
calibrated on the budgeted calibration set: `threshold` is the `quantile`-th of its held-out scores
(leave-one-out for kNN, cross-fitted for Mahalanobis: in-sample distances are too small), so about (1 - quantile) of known images are flagged by chance; the monitor
therefore judges the flagged share of a window, not single flags.

An index saved before the scores were pluggable (no `unknown` entry) loads as the centroid score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ifd.errors import IfdError
from ifd.eval.unknown import UnknownFitData, UnknownScorer, scorer_from_dict
from ifd.eval.unknown.centroid import CentroidScorer, centroid_of


@dataclass
class AttributionIndex:
    """Fake centroids (G, D) named by generator, the unknown-generator scorer, and its threshold."""

    generators: list[str]
    fake_centroids: torch.Tensor
    scorer: UnknownScorer
    threshold: float
    quantile: float

    @property
    def method(self) -> str:
        return self.scorer.label

    def unknown_scores(self, features: torch.Tensor) -> np.ndarray:
        """The unknown-generator score of each row (higher = farther from everything known)."""
        return self.scorer.scores(features)

    def attribute(self, features: torch.Tensor) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(nearest generator name, unknown score, unknown flag) per row."""
        f = F.normalize(features.float(), dim=1)
        nearest = (f @ self.fake_centroids.T.to(f.device)).argmax(dim=1)
        names = [self.generators[int(i)] for i in nearest.tolist()]
        score = self.unknown_scores(features)
        return names, score, score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "generators": list(self.generators),
            "fake_centroids": self.fake_centroids.detach().cpu(),
            "threshold": float(self.threshold),
            "quantile": float(self.quantile),
            "unknown": self.scorer.to_dict(),
        }
        if isinstance(self.scorer, CentroidScorer):  # the layout an older reader expects
            d["centroids"] = self.scorer.centroids.cpu()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttributionIndex:
        scorer = scorer_from_dict(d["unknown"]) if "unknown" in d else CentroidScorer(d["centroids"].float(), unit=True)
        return cls(list(d["generators"]), d["fake_centroids"].float(), scorer, float(d["threshold"]), float(d["quantile"]))


def fit_attribution(
    fake_features: Sequence[torch.Tensor],
    real_features: Sequence[torch.Tensor],
    generators: Sequence[str],
    val_features: torch.Tensor,
    quantile: float = 0.95,
    scorer: UnknownScorer | None = None,
    calibration_scores: np.ndarray | None = None,
) -> AttributionIndex:
    """Fake centroids from each known task's fake features; the unknown score `scorer` (default: the
    centroid distance over these fake and real clusters), thresholded at the `quantile` of
    `calibration_scores` (the scorer's held-out scores of its calibration bank) or, without them, of its
    scores of `val_features`."""
    if len(fake_features) != len(generators) or not generators or any(len(f) == 0 for f in fake_features):
        raise IfdError("attribution needs a non-empty fake feature set per generator")
    fakes = torch.stack([centroid_of(f) for f in fake_features])
    if scorer is None:
        clusters = [*fake_features, *[r for r in real_features if len(r)]]
        scorer = CentroidScorer.fit(UnknownFitData(clusters, val_features, np.zeros(0), np.zeros(0)))
    index = AttributionIndex(list(generators), fakes, scorer, float("inf"), quantile)
    if calibration_scores is not None and len(calibration_scores):
        index.threshold = float(np.quantile(calibration_scores, quantile))
    elif val_features.shape[0]:
        index.threshold = float(np.quantile(index.unknown_scores(val_features), quantile))
    return index


def attribution_accuracy(index: AttributionIndex, features: torch.Tensor, true_generators: Sequence[str]) -> float:
    """Share of fakes attributed to the generator that made them."""
    names, _, _ = index.attribute(features)
    return float(np.mean([a == b for a, b in zip(names, true_generators, strict=True)])) if names else float("nan")


def score_auc(known: np.ndarray, unknown: np.ndarray) -> float:
    """AUC of scores separating images of unseen generators (positive) from known ones."""
    from ifd.eval.scoring import auc_score

    y = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    return auc_score(y, np.r_[known, unknown])


def unknown_auc(index: AttributionIndex, known: torch.Tensor, unknown: torch.Tensor) -> float:
    """AUC of the unknown score separating images of unseen generators (positive) from known ones."""
    return score_auc(index.unknown_scores(known), index.unknown_scores(unknown))
