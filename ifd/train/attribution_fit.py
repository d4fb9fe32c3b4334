"""After an increment: calibrate p(fake), fit the attribution index, and measure both on held-out data.

- Calibration: Platt scaling of the mean-of-heads margin on the validation splits of every seen task.
- Attribution index: centroids of every seen (task, class) from the replay store's entries, re-read and
  embedded by the current model (stored features in features-only mode; the validation split for a task
  without replay entries); unknown threshold calibrated on the validation images of every seen task.
- Open-set report: attribution accuracy on the seen tasks' test fakes; the unknown-generator AUC of the
  next, not yet learned tasks' test images against the seen tasks' test images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ifd.continual.calibration import fit_platt
from ifd.data.image_dataset import ImageCache, TaskImageDataset
from ifd.data.tasks import TaskData
from ifd.eval.attribution import AttributionIndex, attribution_accuracy, fit_attribution, unknown_auc
from ifd.train.evaluate import model_device, predict_task

UNKNOWN_QUANTILE = 0.95


def _holdout(task: TaskData) -> str:
    """The split used for calibration: val, or train when a batch has no val rows (never test)."""
    return "val" if task.has_split("val") else "train"


@torch.no_grad()
def calibrate(model: nn.Module, seen: Sequence[TaskData], img_size: int, cache: ImageCache) -> tuple[float, float]:
    """Fit and set the detector's Platt calibration on the seen tasks' validation images; returns (a, b)."""
    model.set_calibration(1.0, 0.0)
    ys, margins = [], []
    for task in seen:
        y, _, _, z = predict_task(model, task, _holdout(task), img_size=img_size, cache=cache)
        logits = model.heads.mean_logits(z.to(model_device(model)))
        margins.append((logits[:, 1] - logits[:, 0]).float().cpu().numpy())
        ys.append(y)
    a, b = fit_platt(np.concatenate(margins), np.concatenate(ys))
    model.set_calibration(a, b)
    return a, b


@torch.no_grad()
def _embed_entries(model: nn.Module, entries: Sequence[Any], roots: Mapping[str, str], img_size: int, cache: ImageCache) -> torch.Tensor:
    device = model_device(model)
    feats = []
    for start in range(0, len(entries), 64):
        xs = []
        for e in entries[start : start + 64]:
            root = Path(roots.get(e.task_name, e.batch))
            ds = TaskImageDataset(root, pd.DataFrame({"path": [e.path], "label": ["fake"]}), img_size, e.task, cache=cache)
            xs.append(ds[0]["x"])
        feats.append(model.forward_features(torch.stack(xs).to(device)).float().cpu())
    return torch.cat(feats)


def _class_features(
    model: nn.Module, t: int, task: TaskData, store: Any, roots: Mapping[str, str], img_size: int, cache: ImageCache,
    holdout: tuple[np.ndarray, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(real features, fake features) of task t from its replay entries, or from its holdout split."""
    out = []
    for label in (0, 1):
        entries = store.entries_for(task=t, label=label)
        if entries and store.features_only:
            out.append(torch.stack([e.feature.float() for e in entries]))
        elif entries:
            out.append(_embed_entries(model, entries, roots, img_size, cache))
        else:
            y, z = holdout
            out.append(z[torch.as_tensor(y) == label])
    return out[0], out[1]


def fit_index(model: nn.Module, seen: Sequence[TaskData], store: Any, roots: Mapping[str, str], cfg: Any, cache: ImageCache) -> AttributionIndex:
    """The attribution index of `model` over the generators of `seen` (one per task)."""
    was_training = model.training
    model.eval()
    try:
        reals, fakes, val = [], [], []
        for t, task in enumerate(seen):
            y, _, _, z = predict_task(model, task, _holdout(task), img_size=cfg.img_size, cache=cache)
            real, fake = _class_features(model, t, task, store, roots, cfg.img_size, cache, (y, z))
            reals.append(real)
            fakes.append(fake)
            val.append(z)
        return fit_attribution(fakes, reals, [t.name for t in seen], torch.cat(val), UNKNOWN_QUANTILE)
    finally:
        model.train(was_training)


def open_set_report(model: nn.Module, index: AttributionIndex, seen: Sequence[TaskData], unseen: Sequence[TaskData], cfg: Any, cache: ImageCache) -> dict[str, Any]:
    """Attribution accuracy on the seen tasks' test fakes; unknown-generator AUC and flag rates against `unseen`."""
    known, fake_z, names = [], [], []
    for task in seen:
        y, _, _, z = predict_task(model, task, "test", img_size=cfg.img_size, cache=cache)
        known.append(z)
        fake_z.append(z[torch.as_tensor(y) == 1])
        names += [task.name] * int((y == 1).sum())
    known_z = torch.cat(known)
    report: dict[str, Any] = {
        "after": seen[-1].name,
        "attribution_acc": attribution_accuracy(index, torch.cat(fake_z), names),
        "known_flagged": float(index.attribute(known_z)[2].mean()),
    }
    if unseen:
        new = torch.cat([predict_task(model, t, "test", img_size=cfg.img_size, cache=cache)[3] for t in unseen])
        report["unseen"] = [t.name for t in unseen]
        report["unknown_auc"] = unknown_auc(index, known_z, new)
        report["unseen_flagged"] = float(index.attribute(new)[2].mean())
    return report
