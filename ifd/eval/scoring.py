"""Frame-level and video-level AUC / ACC of p(fake) scores (METHOD.md §4).

Video level: frames that share a video id (dataset/label/source, see `TaskData.video_ids`) are averaged
into one score per video. ACC uses the 0.5 threshold on p(fake). AUC of a set with one class only is
undefined: we return NaN rather than a number that means nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score


def auc_score(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, np.asarray(p, dtype=np.float64)))


def frame_scores(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
    """(AUC, ACC) over frames."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    return auc_score(y, p), float(np.mean((p >= threshold).astype(int) == y))


def video_scores(
    y: np.ndarray, p: np.ndarray, video_ids: Sequence[str], threshold: float = 0.5
) -> tuple[float, float, int]:
    """(AUC, ACC, number of videos) with frame scores averaged per video."""
    ids = np.asarray(video_ids)
    uniq, inverse = np.unique(ids, return_inverse=True)
    p_video = np.bincount(inverse, weights=np.asarray(p, dtype=np.float64)) / np.bincount(inverse)
    y_video = np.zeros(len(uniq), dtype=int)
    y_video[inverse] = np.asarray(y)
    auc, acc = frame_scores(y_video, p_video, threshold)
    return auc, acc, len(uniq)
