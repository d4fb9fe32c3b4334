"""One row of the a[t][i] matrix with AUC on the raw, monotone score and ACC on the calibrated p(fake).

AUC is a ranking metric: frame- and video-level AUC are computed on the mean-of-heads margin
l_fake - l_real in float64, never on the calibrated probability (whose float32 sigmoid saturates into
ties, and which a calibration with a non-positive slope would invert). ACC uses the calibrated p(fake)
at 0.5, the deployed decision. The per-image raw scores come back too, for the bootstrap intervals of
`ifd bench` (ifd/eval/bootstrap.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from ifd.data.image_dataset import ImageCache
from ifd.data.tasks import TaskData
from ifd.eval.matrix import MatrixRow
from ifd.eval.scoring import auc_score
from ifd.eval.video import video_auc
from ifd.train.attribution_fit import raw_margins
from ifd.train.evaluate import predict_task


def raw_score_row(
    model: nn.Module, tasks: Sequence[TaskData], *, img_size: int, split: str = "test", cache: ImageCache | None = None,
) -> tuple[MatrixRow, list[dict[str, Any]]]:
    """(the matrix row of `split` on each task, per task {"y", "score"} raw scores in manifest order)."""
    aucs, accs, videos, scores = [], [], [], []
    for task in tasks:
        y, p, ids, z = predict_task(model, task, split, img_size=img_size, cache=cache)
        margin = raw_margins(model, z)
        aucs.append(auc_score(y, margin))
        accs.append(float(np.mean((np.asarray(p) >= 0.5).astype(int) == y)))
        videos.append(video_auc(y, margin, ids))
        scores.append({"y": np.asarray(y).astype(int).tolist(), "score": [float(s) for s in margin]})
    return MatrixRow(aucs, accs, videos), scores
