"""Scores of a detector on tasks: p(fake) per image, pooled features, and one row of the a[t][i] matrix.

Inference averages the logits of the heads that exist (SUR-LID, CVPR 2025; the official code evaluates
with one head too many). Always eval mode, no grad, batched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ifd.data.image_dataset import ImageCache, TaskImageDataset
from ifd.data.tasks import TaskData
from ifd.eval.matrix import MatrixRow


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def iter_batches(
    task: TaskData,
    split: str,
    img_size: int,
    batch_size: int,
    cache: ImageCache | None = None,
    task_index: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """The rows of one split in manifest order, as stacked batches (no shuffling, no workers)."""
    ds = TaskImageDataset(task.root, task.split(split), img_size, task_index, cache=cache)
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        yield {k: torch.stack([it[k] for it in items]) for k in items[0]}


@torch.no_grad()
def predict_task(
    model: nn.Module,
    task: TaskData,
    split: str = "test",
    *,
    img_size: int,
    batch_size: int = 64,
    cache: ImageCache | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], torch.Tensor]:
    """(y, p_fake, video_ids, features) for every row of `split`, in manifest order; features on the CPU."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    ys, ps, zs = [], [], []
    try:
        for batch in iter_batches(task, split, img_size, batch_size, cache):
            z = model.forward_features(batch["x"].to(device))
            ps.append(model.p_fake(z).float().cpu())
            zs.append(z.float().cpu())
            ys.append(batch["y"])
    finally:
        model.train(was_training)
    y = torch.cat(ys).numpy()
    p = torch.cat(ps).numpy()
    return y, p, task.video_ids(task.split(split)), torch.cat(zs)


def score_row(
    model: nn.Module,
    tasks_seen: Sequence[TaskData],
    *,
    img_size: int,
    split: str = "test",
    batch_size: int = 64,
    cache: ImageCache | None = None,
) -> MatrixRow:
    """One row of the result matrix: frame-level AUC / ACC and video-level AUC on each task in `tasks_seen`."""
    from ifd.eval.video import matrix_row

    scores = []
    for task in tasks_seen:
        y, p, videos, _ = predict_task(model, task, split, img_size=img_size, batch_size=batch_size, cache=cache)
        scores.append((y, p, videos))
    return matrix_row(scores)


def evaluate_row(
    model: nn.Module,
    tasks_seen: Sequence[TaskData],
    *,
    img_size: int,
    split: str = "test",
    batch_size: int = 64,
    cache: ImageCache | None = None,
) -> tuple[list[float], list[float]]:
    """Frame-level AUC and ACC of `model` on each task in `tasks_seen` (`score_row` without the video level)."""
    row = score_row(model, tasks_seen, img_size=img_size, split=split, batch_size=batch_size, cache=cache)
    return row.auc, row.acc
