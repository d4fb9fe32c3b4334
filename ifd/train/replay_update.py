"""After a task is learned: its training samples' features and stability, the replay selection, the
replay store update and the task's (task, class) centroids (Sparse Uniform Replay, SUR-LID, CVPR 2025).

Features come from the model just trained on the task (eval mode). The store keeps references
(batch, path), the pooled feature and the stability score, never the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ifd.data.image_dataset import ImageCache
from ifd.data.tasks import TaskData
from ifd.train.evaluate import iter_batches, model_device

K = 2


@dataclass
class TaskFeatures:
    """Pooled features (N, D), stability (N,) and labels (N,) of a task's train rows, in manifest order."""

    features: torch.Tensor
    stability: torch.Tensor
    labels: torch.Tensor


@torch.no_grad()
def task_features(
    model: nn.Module, task: TaskData, cfg: Any, cache: ImageCache | None = None, batch_size: int = 64
) -> TaskFeatures:
    """Features and patch-shuffle stability of every train row of `task`."""
    from ifd.continual.stability import stability_scores

    was_training = model.training
    model.eval()
    device = model_device(model)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    zs, ss, ys = [], [], []
    try:
        for batch in iter_batches(task, "train", cfg.img_size, batch_size, cache):
            x = batch["x"].to(device)
            zs.append(model.forward_features(x).float().cpu())
            ss.append(
                stability_scores(model.forward_features, x, mode=cfg.stability, generator=gen).float().cpu()
            )
            ys.append(batch["y"])
    finally:
        model.train(was_training)
    return TaskFeatures(torch.cat(zs), torch.cat(ss), torch.cat(ys))


def class_centroids(feats: TaskFeatures, task_index: int) -> dict[int, torch.Tensor]:
    """Normalised mean of the normalised features of each class, keyed by cluster label t*K + k."""
    f = F.normalize(feats.features, dim=1)
    out: dict[int, torch.Tensor] = {}
    for k in range(K):
        mask = feats.labels == k
        if mask.any():
            out[task_index * K + k] = F.normalize(f[mask].mean(0), dim=0)
    return out


def select_entries(feats: TaskFeatures, task: TaskData, task_index: int, cfg: Any) -> list[Any]:
    """Replay entries of one task: `cfg.budget_per_task` samples chosen by the configured selector."""
    from ifd.continual.build_replay import select_replay
    from ifd.continual.replay_store import ReplayEntry
    from ifd.continual.selectors import build_selector

    if int(cfg.budget_per_task) <= 0:
        return []
    rows = task.split("train")
    gen = torch.Generator().manual_seed(int(cfg.seed) * 7919 + task_index)
    selector = build_selector(cfg)
    chosen = select_replay(
        feats.features, feats.stability, feats.labels, int(cfg.budget_per_task), selector, gen
    )
    indices = torch.cat([torch.as_tensor(ix, dtype=torch.long).reshape(-1) for ix in _per_class(chosen)])
    return [
        ReplayEntry(
            task=task_index,
            task_name=task.name,
            batch=str(task.root),
            path=str(rows["path"].iloc[i]),
            label=int(feats.labels[i]),
            feature=feats.features[i].clone(),
            stability=float(feats.stability[i]),
        )
        for i in indices.tolist()
    ]


def _per_class(chosen: Any) -> list[Any]:
    if isinstance(chosen, dict):
        return [chosen[k] for k in sorted(chosen)]
    return list(chosen)


def update_replay(
    model: nn.Module, task: TaskData, task_index: int, cfg: Any, store: Any, cache: ImageCache | None = None
) -> dict[int, torch.Tensor]:
    """Select and store the task's replay entries; return the task's centroids."""
    feats = task_features(model, task, cfg, cache)
    store.add_task(task_index, task.name, select_entries(feats, task, task_index, cfg))
    return class_centroids(feats, task_index)
