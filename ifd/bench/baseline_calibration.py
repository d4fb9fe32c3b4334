"""The Avalanche baselines scored like LID (issue 12): AUC on the raw margin, ACC on a p(fake) calibrated
from what the strategy itself keeps.

After each experience, Platt scaling (`ifd.continual.calibration.fit_platt`, slope > 0) is fitted on the
strategy's own memory — the samples in its replay buffers (ReplayPlugin / DER / GDumb storage, A-GEM's
per-experience buffers: the ones `memory_footprint` counts; Avalanche does not tell their experience
apart, so the whole buffer is used) — plus the newest task's val split, LID's budget rule (LID: replay
store + newest val). A strategy without a memory (naive, EWC, LwF) calibrates on the newest val split
alone. AUC (frame and video level) is computed on l_fake - l_real (softmax is monotone in it), so
calibration never moves it. Splits are read batch by batch (lazy datasets stay lazy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ifd.continual.calibration import fit_platt
from ifd.eval.matrix import MatrixRow
from ifd.eval.scoring import auc_score
from ifd.eval.video import video_auc


def buffers(strategy: Any) -> list[Any]:
    """The strategy's replay memories (the ones `memory_footprint` counts)."""
    found: list[Any] = []
    for holder in (strategy, *strategy.plugins):
        policy = getattr(holder, "storage_policy", None)
        if policy is not None:
            found.append(policy.buffer)
        if isinstance(getattr(holder, "buffers", None), list):
            found.extend(holder.buffers)
    return [b for b in found if len(b)]


def _batches(data: Any, batch_size: int, workers: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers):
        yield batch[0], torch.as_tensor(batch[1])


@torch.no_grad()
def margins(model: nn.Module, data: Any, batch_size: int = 64, workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(labels, l_fake - l_real float64) of every item of `data`, in order, eval mode (mode given back)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ys, ms = [], []
    try:
        for x, y in _batches(data, batch_size, workers):
            logits = model(x.to(device)).double()
            ms.append((logits[:, 1] - logits[:, 0]).cpu())
            ys.append(y)
    finally:
        model.train(was_training)
    if not ms:
        return np.zeros(0, dtype=int), np.zeros(0)
    return torch.cat(ys).numpy().astype(int), torch.cat(ms).numpy()


def calibrated_row(
    strategy: Any, newest_val: Any, tests: Sequence[Any], workers: int = 0
) -> tuple[MatrixRow, list[dict[str, Any]], dict[str, Any]]:
    """(the matrix row on `tests`, per-task raw scores, {"a", "b" fitted on memory + newest val, "n": samples
    used, "acc_uncalibrated": ACC of argmax, i.e. Avalanche's own accuracy})."""
    model = strategy.model
    cal = [margins(model, d, workers=workers) for d in [newest_val, *buffers(strategy)]]
    a, b = fit_platt(np.concatenate([m for _, m in cal]), np.concatenate([y for y, _ in cal]))
    aucs, accs, videos, scores, raw_accs = [], [], [], [], []
    for data in tests:
        y, s = margins(model, data, workers=workers)
        p = 1.0 / (1.0 + np.exp(-(a * s + b)))
        aucs.append(auc_score(y, s))
        accs.append(float(np.mean((p >= 0.5).astype(int) == y)))
        raw_accs.append(float(np.mean((s > 0).astype(int) == y)))
        ids = getattr(data, "video_ids", None)
        videos.append(video_auc(y, s, list(ids)) if ids is not None else None)
        scores.append({"y": y.tolist(), "score": [float(v) for v in s]})
    info = {"a": a, "b": b, "n": int(sum(len(y) for y, _ in cal)), "acc_uncalibrated": raw_accs}
    return MatrixRow(aucs, accs, videos), scores, info
