"""Mahalanobis distance to the nearest known (task, class) mean under one shared covariance (Lee et al.,
"A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018).

Fitted on the budgeted calibration set only: one mean per (task, class) present in it, and one tied
covariance of the residuals around those means. With ~50 samples per cluster and D = 192..1280 feature
dimensions the sample covariance is ill-conditioned or singular, so it is shrunk toward a scaled identity
with the Ledoit-Wolf estimate (sklearn), which picks the shrinkage from the data instead of a ridge we
would have to tune on it. Features are L2-normalised first (the sphere LID's isolation loss shapes; the
kNN score uses the same). The scorer keeps a whitening matrix W (D x D, W W^T = covariance^-1) and the
whitened means (K x D); score = min_k ||z W - m_k W||^2. Fitted means and covariance sit closer to their
own samples than to new ones, so the threshold is taken over cross-fitted scores (`heldout_scores`).
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

FOLDS = 5
"""Folds of the cross-fitted calibration scores."""
EIG_FLOOR = 1e-6
"""Eigenvalues of the shrunk covariance below this fraction of the largest are raised to it."""


def whitening(covariance: np.ndarray) -> np.ndarray:
    """W with W W^T = covariance^-1 (eigen-decomposition, float64)."""
    vals, vecs = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    vals = np.maximum(vals, EIG_FLOOR * max(float(vals.max()), 1e-30))
    return vecs / np.sqrt(vals)


def group_means(z: torch.Tensor, labels: np.ndarray, tasks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, D) mean of every (task, class) present, and the residual of each row around its own mean."""
    keys = np.asarray(tasks, dtype=np.int64) * 2 + np.asarray(labels, dtype=np.int64)
    means, resid = [], torch.empty_like(z)
    for key in np.unique(keys):
        rows = torch.as_tensor(keys == key)
        mean = z[rows].mean(0)
        means.append(mean)
        resid[rows] = z[rows] - mean
    return torch.stack(means), resid


@UNKNOWN_SCORERS.register("mahalanobis")
class MahalanobisScorer(UnknownScorer):
    method = "mahalanobis"

    def __init__(self, whiten: torch.Tensor, centres: torch.Tensor, normalize: bool = True) -> None:
        if whiten.ndim != 2 or centres.ndim != 2 or not len(centres) or centres.shape[1] != whiten.shape[1]:
            raise IfdError("the Mahalanobis score needs a (D, D) whitening matrix and at least one (D,) mean")
        self.whiten = whiten.float()
        self.centres = centres.float()
        self.normalize = bool(normalize)

    @classmethod
    def from_moments(cls, means: torch.Tensor, covariance: np.ndarray, normalize: bool = True) -> MahalanobisScorer:
        """The scorer of cluster means (K, D) under one covariance (D, D) (means in the scored space)."""
        w = torch.as_tensor(whitening(covariance), dtype=torch.float32)
        return cls(w, means.float() @ w, normalize)

    @classmethod
    def fit(cls, data: UnknownFitData, normalize: bool = True, **params: Any) -> MahalanobisScorer:
        from sklearn.covariance import LedoitWolf

        if len(data.bank) < 2:
            raise IfdError("the Mahalanobis score needs at least two calibration samples")
        z = unit_rows(data.bank) if normalize else data.bank.detach().float()
        means, resid = group_means(z, data.labels, data.tasks)
        cov = LedoitWolf(assume_centered=True).fit(resid.double().numpy()).covariance_
        return cls.from_moments(means, cov, normalize)

    @classmethod
    def heldout_scores(cls, data: UnknownFitData, normalize: bool = True, **params: Any) -> np.ndarray:
        """Cross-fitted: the bank's rows in FOLDS folds (every (task, class) spread over all of them), each fold
        scored by the scorer fitted on the others."""
        keys = np.asarray(data.tasks, dtype=np.int64) * 2 + np.asarray(data.labels, dtype=np.int64)
        fold = np.zeros(len(keys), dtype=np.int64)
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            fold[rows] = np.arange(len(rows)) % FOLDS
        if data.groups is not None:  # a source's rows (a real and its fake) in one fold, never on both sides
            first, codes = group_codes(data.groups)
            fold = fold[first][codes]
        out = np.zeros(len(keys))
        for f in range(FOLDS):
            held, rest = fold == f, fold != f
            if not held.any():
                continue
            if rest.sum() < 2:
                raise IfdError("the Mahalanobis score needs more calibration samples to cross-fit its threshold")
            part = UnknownFitData([], data.bank[torch.as_tensor(rest)], keys[rest] % 2, keys[rest] // 2)
            out[held] = cls.fit(part, normalize=normalize).scores(data.bank[torch.as_tensor(held)])
        return out

    def scores(self, z: torch.Tensor) -> np.ndarray:
        f = unit_rows(z) if self.normalize else z.detach().float()
        w = f @ self.whiten.to(f.device)
        c = self.centres.to(f.device)
        d2 = (w * w).sum(1, keepdim=True) - 2.0 * w @ c.T + (c * c).sum(1)[None]
        return as_numpy(d2.clamp_min(0.0).min(dim=1).values)

    def state(self) -> dict[str, Any]:
        return {"whiten": self.whiten.cpu(), "centres": self.centres.cpu(), "normalize": self.normalize}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MahalanobisScorer:
        return cls(state["whiten"], state["centres"], bool(state.get("normalize", True)))
