"""Fit the attribution index of a detector after an increment, and measure it on held-out generators.

Centroids of the known generators come from the replay store's fake entries, re-read and embedded by
the current model (stored features in features-only mode; the validation fakes for a task with no
replay entries); the unknown threshold is calibrated on the validation fakes of every seen task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ifd.data.image_dataset import ImageCache, TaskImageDataset
from ifd.data.tasks import TaskData
from ifd.eval.attribution import AttributionIndex, attribution_accuracy, fit_attribution, unknown_auc
from ifd.train.evaluate import model_device, predict_task

UNKNOWN_QUANTILE = 0.95


@torch.no_grad()
def _embed_entries(model: nn.Module, entries: Sequence[Any], roots: Mapping[str, str], img_size: int, cache: ImageCache) -> torch.Tensor:
    device = model_device(model)
    feats = []
    for start in range(0, len(entries), 64):
        chunk = entries[start : start + 64]
        xs = []
        for e in chunk:
            root = Path(roots.get(e.task_name, e.batch))
            ds = TaskImageDataset(root, _one_row(e.path), img_size, e.task, cache=cache)
            xs.append(ds[0]["x"])
        feats.append(model.forward_features(torch.stack(xs).to(device)).float().cpu())
    return torch.cat(feats)


def _one_row(path: str) -> Any:
    import pandas as pd

    return pd.DataFrame({"path": [path], "label": ["fake"]})


def _fakes(model: nn.Module, task: TaskData, split: str, img_size: int, cache: ImageCache) -> torch.Tensor:
    y, _, _, z = predict_task(model, task, split, img_size=img_size, cache=cache)
    return z[torch.as_tensor(y) == 1]


def fit_index(model: nn.Module, seen: Sequence[TaskData], store: Any, roots: Mapping[str, str], cfg: Any, cache: ImageCache) -> AttributionIndex:
    """The attribution index of `model` over the generators of `seen` (one per task)."""
    was_training = model.training
    model.eval()
    try:
        per_task, val = [], []
        for t, task in enumerate(seen):
            entries = store.entries_for(task=t, label=1)
            split = "val" if task.has_split("val") else "test"
            val_fakes = _fakes(model, task, split, cfg.img_size, cache)
            if entries and store.features_only:
                per_task.append(torch.stack([e.feature.float() for e in entries]))
            elif entries:
                per_task.append(_embed_entries(model, entries, roots, cfg.img_size, cache))
            else:
                per_task.append(val_fakes)
            val.append(val_fakes)
        return fit_attribution(per_task, [t.name for t in seen], torch.cat(val), UNKNOWN_QUANTILE)
    finally:
        model.train(was_training)


def open_set_report(model: nn.Module, index: AttributionIndex, seen: Sequence[TaskData], unseen: Sequence[TaskData], cfg: Any, cache: ImageCache) -> dict[str, Any]:
    """Attribution accuracy on the seen tasks' test fakes; unknown-generator AUC against `unseen` test fakes."""
    known, names = [], []
    for task in seen:
        z = _fakes(model, task, "test", cfg.img_size, cache)
        known.append(z)
        names += [task.name] * z.shape[0]
    known_z = torch.cat(known)
    report: dict[str, Any] = {
        "after": seen[-1].name,
        "attribution_acc": attribution_accuracy(index, known_z, names),
        "known_flagged": float(index.attribute(known_z)[2].mean()),
    }
    if unseen:
        new = torch.cat([_fakes(model, t, "test", cfg.img_size, cache) for t in unseen])
        report["unseen"] = [t.name for t in unseen]
        report["unknown_auc"] = unknown_auc(index, known_z, new)
        report["unseen_flagged"] = float(index.attribute(new)[2].mean())
    return report
