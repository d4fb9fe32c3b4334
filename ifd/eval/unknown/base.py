"""The unknown-generator scorer interface and its registry (one file per score, registry key = file name).

A scorer is fitted on what the memory budget holds after an increment (`UnknownFitData`: the known
(task, class) clusters and the calibration set, i.e. the old tasks' replay samples plus the newest task's
val split; the heads' weights for a logit-based score) and maps pooled features z (N, D) to one score per
row, higher = farther from everything known. It serialises to tensors and plain Python (`to_dict`), so the
detector state still loads with `torch.load(weights_only=True)`, and says how many bytes it keeps
(`nbytes`): a bank of features kept after the task counts in the memory budget.

The threshold is a quantile of `heldout_scores(data)`: each calibration row scored by a scorer that did not
learn from it (leave-one-out for kNN, cross-fitted folds for Mahalanobis), since in-sample distances are
smaller than those of new known images and the threshold would flag far more than 1 - quantile of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ifd.registry_utils import Registry


@dataclass
class UnknownFitData:
    """What a scorer may be fitted on: budgeted data only (ifd/train/attribution_fit.py builds it)."""

    clusters: list[torch.Tensor]
    """Features of every known (task, class) cluster (fakes first, then reals); one row may be a stored centroid."""
    bank: torch.Tensor
    """(N, D) features of the calibration set: replay samples of the old tasks + the newest task's val split."""
    labels: np.ndarray
    """(N,) 0 real / 1 fake of each bank row."""
    tasks: np.ndarray
    """(N,) task index of each bank row."""
    heads: tuple[torch.Tensor, torch.Tensor] | None = None
    """Weights (T, C, D) and biases (T, C) of the task heads, for logit-based scores."""
    groups: np.ndarray | None = None
    """(N,) source of each bank row (a real and its forged fake, the frames of one video share one): a
    held-out score leaves the row's whole source out, or its near-twin would stand in for it."""


class UnknownScorer:
    """Scores how far each feature row lies from every known generator (higher = more likely unknown)."""

    method: ClassVar[str] = ""

    @classmethod
    def fit(cls, data: UnknownFitData, **params: Any) -> UnknownScorer:
        raise NotImplementedError

    def scores(self, z: torch.Tensor) -> np.ndarray:
        """(N,) float64 scores of pooled features z (N, D)."""
        raise NotImplementedError

    @classmethod
    def heldout_scores(cls, data: UnknownFitData, **params: Any) -> np.ndarray:
        """Scores of the bank's rows by a scorer that was not fitted on them (the threshold's quantile is
        taken over these): here the scorer fitted on everything, for a score that does not learn from the bank."""
        return cls.fit(data, **params).scores(data.bank)

    def state(self) -> dict[str, Any]:
        """Tensors and plain Python that `from_state` rebuilds the scorer from."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> UnknownScorer:
        raise NotImplementedError

    @property
    def label(self) -> str:
        """The name of the scorer with its settings, as reports show it (e.g. `knn@10`)."""
        return self.method

    def nbytes(self) -> int:
        """Bytes of the tensors the scorer keeps after the task."""
        return sum(int(v.numel() * v.element_size()) for v in self.state().values() if isinstance(v, torch.Tensor))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self.state()}


UNKNOWN_SCORERS: Registry[type[UnknownScorer]] = Registry("unknown-generator score")


def group_codes(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each group, group index of each row) of `UnknownFitData.groups`."""
    _, first, codes = np.unique(np.asarray(groups, dtype=str), return_index=True, return_inverse=True)
    return first, codes.reshape(-1)


def unit_rows(z: torch.Tensor) -> torch.Tensor:
    """Rows of z as float32 unit vectors (on the sphere LID's isolation loss shapes)."""
    return torch.nn.functional.normalize(z.detach().float(), dim=1)


def as_numpy(scores: torch.Tensor) -> np.ndarray:
    return scores.detach().cpu().numpy().astype(np.float64)
