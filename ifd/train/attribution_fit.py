"""After an increment: calibrate p(fake), fit the attribution index, and measure both on held-out data.

Everything here reads only what the strategy keeps within its memory budget (METHOD.md §4): the replay
store's samples of the old tasks (re-read through their references and embedded by the current model;
the stored features in features-only mode) plus the newest task's val split (`ifd.train.val_split`), the
`CalibrationSet`. No other image of an old task, and never a test image, is read.
- Calibration: Platt scaling of the mean-of-heads margin on the calibration set (slope kept > 0).
- Attribution index: centroids of every seen (task, class) from the replay entries (the newest task's from
  its val split when it keeps no replay; an old task without replay keeps its stored (task, class)
  centroid); unknown threshold at the 95th percentile of the calibration set's unknown scores.
- Open-set report (`ifd train --open-set`, a report): attribution accuracy on the seen tasks' test fakes;
  the unknown-generator AUC of the next, not yet learned task's test images against the seen tasks'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
K = 2


@dataclass
class CalibrationSet:
    """Features (under the current model), labels and task index of every budgeted calibration sample."""

    z: torch.Tensor
    y: np.ndarray
    task: np.ndarray
    n_replay: int
    n_val: int


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
    return torch.cat(feats) if feats else torch.zeros(0, int(model.num_features))


def entry_features(model: nn.Module, entries: Sequence[Any], store: Any, roots: Mapping[str, str], img_size: int, cache: ImageCache) -> torch.Tensor:
    """Features of replay entries: re-read and embedded, or (features-only) as stored."""
    if store.features_only:
        return torch.stack([e.feature.float() for e in entries]) if entries else torch.zeros(0, int(model.num_features))
    return _embed_entries(model, entries, roots, img_size, cache)


def calibration_set(
    model: nn.Module, seen: Sequence[TaskData], store: Any, roots: Mapping[str, str], img_size: int, cache: ImageCache
) -> CalibrationSet:
    """The old tasks' replay entries plus the newest task's val split: all calibration may read."""
    was_training = model.training
    model.eval()
    try:
        zs, ys, ts = [], [], []
        old = store.entries_for()
        old = [e for e in old if e.task < len(seen) - 1]
        if old:
            zs.append(entry_features(model, old, store, roots, img_size, cache))
            ys.append(np.array([e.label for e in old]))
            ts.append(np.array([e.task for e in old]))
        y, _, _, z = predict_task(model, seen[-1], "val", img_size=img_size, cache=cache)
        zs.append(z)
        ys.append(np.asarray(y))
        ts.append(np.full(len(y), len(seen) - 1))
        return CalibrationSet(torch.cat(zs), np.concatenate(ys), np.concatenate(ts), len(old), len(y))
    finally:
        model.train(was_training)


@torch.no_grad()
def raw_margins(model: nn.Module, z: torch.Tensor) -> np.ndarray:
    """The monotone score under calibration: l_fake - l_real of the mean of the heads, float64."""
    logits = model.heads.mean_logits(z.to(model_device(model))).double()
    return (logits[:, 1] - logits[:, 0]).cpu().numpy()


def calibrate(model: nn.Module, cal: CalibrationSet) -> tuple[float, float]:
    """Fit and set the detector's Platt calibration on the budgeted calibration set; returns (a, b)."""
    a, b = fit_platt(raw_margins(model, cal.z), cal.y)
    model.set_calibration(a, b)
    return a, b


def fit_index(
    model: nn.Module, seen: Sequence[TaskData], store: Any, roots: Mapping[str, str], cfg: Any, cache: ImageCache,
    cal: CalibrationSet, centroids: Mapping[int, torch.Tensor] | None = None,
) -> AttributionIndex:
    """The attribution index of `model` over the generators of `seen` (one per task), from budgeted data only."""
    was_training = model.training
    model.eval()
    try:
        reals, fakes = [], []
        newest = len(seen) - 1
        for t in range(len(seen)):
            for label, out in ((0, reals), (1, fakes)):
                entries = store.entries_for(task=t, label=label)
                if entries:
                    out.append(entry_features(model, entries, store, roots, cfg.img_size, cache))
                elif t == newest:
                    out.append(cal.z[torch.as_tensor((cal.task == t) & (cal.y == label))])
                elif centroids is not None and t * K + label in centroids:
                    out.append(centroids[t * K + label].float().reshape(1, -1).cpu())
                else:
                    out.append(torch.zeros(0, cal.z.shape[1]))
        return fit_attribution(fakes, reals, [t.name for t in seen], cal.z, UNKNOWN_QUANTILE)
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
