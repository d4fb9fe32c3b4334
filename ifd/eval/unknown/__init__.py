"""Unknown-generator scores by name (registry UNKNOWN_SCORERS): one file each, registered on import."""

from __future__ import annotations

from typing import Any

import numpy as np

from ifd.eval.unknown import centroid, energy, knn, mahalanobis  # noqa: F401  (register the scores)
from ifd.eval.unknown.base import UNKNOWN_SCORERS, UnknownFitData, UnknownScorer


def fit_scorer(method: str, data: UnknownFitData, **params: Any) -> UnknownScorer:
    """The registered score `method` fitted on budgeted `data`."""
    return UNKNOWN_SCORERS.get(method).fit(data, **params)


def calibrated_scorer(method: str, data: UnknownFitData, **params: Any) -> tuple[UnknownScorer, np.ndarray]:
    """The score `method` fitted on `data`, and its held-out scores of the bank's rows (for the threshold)."""
    cls = UNKNOWN_SCORERS.get(method)
    return cls.fit(data, **params), cls.heldout_scores(data, **params)


def scorer_from_dict(d: dict[str, Any]) -> UnknownScorer:
    """The scorer `UnknownScorer.to_dict` wrote."""
    state = dict(d)
    return UNKNOWN_SCORERS.get(str(state.pop("method"))).from_state(state)


def report_scorers(data: UnknownFitData, k: int) -> dict[str, tuple[UnknownScorer, np.ndarray]]:
    """Every registered score fitted on `data` with its held-out bank scores, by label (kNN at each of
    REPORT_K and at `k`); a score the data cannot support (energy without heads) is left out."""
    from ifd.errors import IfdError

    out: dict[str, tuple[UnknownScorer, np.ndarray]] = {}
    for method in UNKNOWN_SCORERS:
        settings = [{"k": kk} for kk in sorted({*knn.REPORT_K, k})] if method == "knn" else [{}]
        for params in settings:
            try:
                scorer, held = calibrated_scorer(method, data, **params)
            except IfdError:
                continue
            out[scorer.label] = (scorer, held)
    return out


__all__ = ["UNKNOWN_SCORERS", "UnknownFitData", "UnknownScorer", "calibrated_scorer", "fit_scorer", "report_scorers", "scorer_from_dict"]
