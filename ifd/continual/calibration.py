"""Calibration of LID's p(fake) by Platt scaling (Platt, 1999) on validation data.

LID scores an image with the mean of every task head's logits. Each head learned only its own task, so
on a fake of task i the other heads vote "real" and the mean margin l_fake - l_real leans negative: the
ranking is good (AUC) but softmax(mean logits) >= 0.5 misses most fakes. After each increment we fit
p(fake) = sigmoid(a * margin + b) on the budgeted calibration set (the replay store's old samples plus the
newest task's val split, ifd/train/attribution_fit.py), classes weighted equally, so that a threshold of
0.5 (the serving policy's default) means something. The slope is kept positive (a fit with a <= 0, a
detector that ranks its calibration set backwards, gives the identity instead), so the map is strictly
increasing; AUC is computed on the raw margin anyway. (a, b) live in a buffer of the detector, so they are
saved and loaded with it.
"""

from __future__ import annotations

import numpy as np
import torch

from ifd.errors import IfdError


def fit_platt(margins: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) maximising the class-balanced likelihood of sigmoid(a * margin + b), a > 0; identity for one class
    or when the best slope is not positive (an inverting calibration is never set)."""
    from sklearn.linear_model import LogisticRegression

    margins = np.asarray(margins, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    if not np.isfinite(margins).all():
        raise IfdError("calibration: non-finite detector margins")
    lr = LogisticRegression(C=1e4, class_weight="balanced", max_iter=1000)
    lr.fit(margins, y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 0 else (1.0, 0.0)


def calibrated_p_fake(mean_logits: torch.Tensor, calibration: torch.Tensor) -> torch.Tensor:
    """sigmoid(a * (l_fake - l_real) + b) per row of (B, 2) mean logits."""
    margin = (mean_logits[:, 1] - mean_logits[:, 0]).float()
    a, b = calibration.float()
    return torch.sigmoid(a * margin + b)
