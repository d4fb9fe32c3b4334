"""After an increment: calibrate p(fake), fit the attribution index, and measure both on held-out data.

Everything here reads only what the strategy keeps within its memory budget (METHOD.md §4): the replay
store's samples of the old tasks (re-read through their references and embedded by the current model;
the stored features in features-only mode) plus the newest task's val split (`ifd.train.val_split`), the
`CalibrationSet`. No other image of an old task, and never a test image, is read.
- Calibration: Platt scaling of the mean-of-heads margin on the calibration set (slope kept > 0).
- Attribution index: centroids of every seen (task, class) from the replay entries (the newest task's from
  its val split when it keeps no replay; an old task without replay keeps its stored (task, class)
  centroid); the unknown score `cfg.unknown.method` (ifd/eval/unknown: centroid, kNN over the calibration
  set as its bank, Mahalanobis with a tied Ledoit-Wolf covariance fitted on it, the heads' energy), its
  threshold at the `cfg.unknown.quantile` (95th percentile) of the calibration set's scores.
- Open-set report (`ifd train`, a report): attribution accuracy on the seen tasks' test fakes; the
  unknown-generator AUC of the next, not yet learned task's test images against the seen tasks', and, given
  the state, every registered score side by side on test and on val (`unknown_auc_by_method`,
  `unknown_auc_val_by_method`) with the bytes each keeps.
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
from ifd.eval.attribution import (
    AttributionIndex,
    attribution_accuracy,
    fit_attribution,
    score_auc,
    unknown_auc,
)
from ifd.eval.unknown import UnknownFitData, UnknownScorer, calibrated_scorer, report_scorers
from ifd.train.evaluate import model_device, predict_task

K = 2


@dataclass
class CalibrationSet:
    """Features (under the current model), labels and task index of every budgeted calibration sample."""

    z: torch.Tensor
    y: np.ndarray
    task: np.ndarray
    n_replay: int
    n_val: int
    groups: np.ndarray | None = None
    """(N,) source of each sample ("task:source_id"): a real and the fake forged from it, or the frames of one
    video, share one; held-out scores leave a whole source out, not only the sample."""


def source_groups(task_index: int, rows: pd.DataFrame) -> np.ndarray:
    """"task:source_id" per row (the row's path where the manifest has no source ids)."""
    if "source_id" in rows.columns:
        ids = [str(s) if isinstance(s, str) and s else str(p) for s, p in zip(rows["source_id"], rows["path"], strict=True)]
    else:
        ids = [str(p) for p in rows["path"]]
    return np.asarray([f"{task_index}:{i}" for i in ids], dtype=object)


def _entry_groups(entries: Sequence[Any], seen: Sequence[TaskData]) -> np.ndarray:
    """The source group of each replay entry, looked up by path in its task's manifest."""
    lookup: dict[int, dict[str, str]] = {}
    out = []
    for e in entries:
        if e.task not in lookup:
            frame = seen[e.task].frame
            groups = source_groups(e.task, frame)
            lookup[e.task] = dict(zip((str(p) for p in frame["path"]), groups, strict=True))
        out.append(lookup[e.task].get(str(e.path), f"{e.task}:{e.path}"))
    return np.asarray(out, dtype=object)


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
        zs, ys, ts, gs = [], [], [], []
        old = store.entries_for()
        old = [e for e in old if e.task < len(seen) - 1]
        if old:
            zs.append(entry_features(model, old, store, roots, img_size, cache))
            ys.append(np.array([e.label for e in old]))
            ts.append(np.array([e.task for e in old]))
            gs.append(_entry_groups(old, seen))
        y, _, _, z = predict_task(model, seen[-1], "val", img_size=img_size, cache=cache)
        zs.append(z)
        ys.append(np.asarray(y))
        ts.append(np.full(len(y), len(seen) - 1))
        gs.append(source_groups(len(seen) - 1, seen[-1].split("val")))
        return CalibrationSet(torch.cat(zs), np.concatenate(ys), np.concatenate(ts), len(old), len(y), np.concatenate(gs))
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


def fit_data(
    model: nn.Module, seen: Sequence[TaskData], store: Any, roots: Mapping[str, str], cfg: Any, cache: ImageCache,
    cal: CalibrationSet, centroids: Mapping[int, torch.Tensor] | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], UnknownFitData]:
    """Fake and real features of every seen task's clusters, and everything an unknown score may be fitted
    on (the calibration set as its bank, the heads' weights), from budgeted data only."""
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
        heads = model.heads.stacked() if len(model.heads) else None
        heads = (heads[0].detach().float().cpu(), heads[1].detach().float().cpu()) if heads is not None else None
        data = UnknownFitData([*fakes, *[r for r in reals if len(r)]], cal.z, np.asarray(cal.y), np.asarray(cal.task), heads,
                              groups=cal.groups)
        return fakes, reals, data
    finally:
        model.train(was_training)


def fit_index(
    model: nn.Module, seen: Sequence[TaskData], store: Any, roots: Mapping[str, str], cfg: Any, cache: ImageCache,
    cal: CalibrationSet, centroids: Mapping[int, torch.Tensor] | None = None,
) -> AttributionIndex:
    """The attribution index of `model` over the generators of `seen` (one per task), from budgeted data only:
    the unknown score `cfg.unknown.method`, thresholded at `cfg.unknown.quantile` of the calibration set."""
    fakes, reals, data = fit_data(model, seen, store, roots, cfg, cache, cal, centroids)
    scorer, held = calibrated_scorer(cfg.unknown.method, data, **cfg.unknown.params())
    return fit_attribution(fakes, reals, [t.name for t in seen], cal.z, cfg.unknown.quantile, scorer=scorer, calibration_scores=held)


def open_set_report(
    model: nn.Module, index: AttributionIndex, seen: Sequence[TaskData], unseen: Sequence[TaskData], cfg: Any,
    cache: ImageCache, state: Any | None = None,
) -> dict[str, Any]:
    """Attribution accuracy on the seen tasks' test fakes; unknown-generator AUC and flag rates against `unseen`.

    With `state` (the `IncrementalState` that holds `model`), every registered unknown score is also fitted
    on the same budgeted data and measured side by side, on test (`unknown_auc_by_method`) and on val
    (`unknown_auc_val_by_method`: the unseen tasks' val images against the seen tasks' val images, the
    newest task's by their held-out scores since they are calibration rows). The unseen task's images
    include its reals, drawn like every known task's; `unknown_fake_auc*_by_method` takes its fakes only,
    the images of the unseen generator."""
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
        "unknown_method": index.method,
        "unknown_bytes": index.scorer.nbytes(),
    }
    if unseen:
        new_y, new = _split_features(model, unseen, "test", cfg, cache)
        report["unseen"] = [t.name for t in unseen]
        report["unknown_auc"] = unknown_auc(index, known_z, new)
        report["unknown_fake_auc"] = unknown_auc(index, known_z, new[torch.as_tensor(new_y == 1)])
        report["unseen_flagged"] = float(index.attribute(new)[2].mean())
        if state is not None:
            scorers = _report_scorers(model, seen, state, cfg, cache)
            report.update(_by_method(scorers, model, seen, unseen, cfg, cache, known_z, (new_y, new)))
            report["unknown_auc_val"] = report["unknown_auc_val_by_method"].get(index.method, float("nan"))
    return report


def _split_features(model: nn.Module, tasks: Sequence[TaskData], split: str, cfg: Any, cache: ImageCache) -> tuple[np.ndarray, torch.Tensor]:
    """Labels and features of `split` of every task in `tasks`, concatenated."""
    got = [predict_task(model, t, split, img_size=cfg.img_size, cache=cache) for t in tasks]
    return np.concatenate([np.asarray(g[0]) for g in got]), torch.cat([g[3] for g in got])


def _report_scorers(
    model: nn.Module, seen: Sequence[TaskData], state: Any, cfg: Any, cache: ImageCache
) -> tuple[dict[str, tuple[UnknownScorer, np.ndarray]], np.ndarray]:
    """Every registered score fitted on `state`'s budgeted data with its held-out calibration scores, and
    which calibration rows are the newest task's val images."""
    cal = calibration_set(model, seen, state.store, state.task_roots, cfg.img_size, cache)
    _, _, data = fit_data(model, seen, state.store, state.task_roots, cfg, cache, cal, state.centroids)
    return report_scorers(data, cfg.unknown.k), np.asarray(cal.task) == len(seen) - 1


def _by_method(
    fitted: tuple[dict[str, tuple[UnknownScorer, np.ndarray]], np.ndarray], model: nn.Module, seen: Sequence[TaskData],
    unseen: Sequence[TaskData], cfg: Any, cache: ImageCache, known_test: torch.Tensor, new_test: tuple[np.ndarray, torch.Tensor],
) -> dict[str, Any]:
    """Per score: AUC on test and on val (the newest task's val images, which are calibration rows, by their
    held-out scores), flag rates at the score's own threshold, bytes kept."""
    def val_z(task: TaskData) -> torch.Tensor:
        return predict_task(model, task, "val", img_size=cfg.img_size, cache=cache)[3]

    scorers, newest = fitted
    old_val = [val_z(t) for t in seen[:-1]]
    new_val_y, new_val = _split_features(model, unseen, "val", cfg, cache)
    new_y, new_z = new_test
    keys = ("auc", "auc_val", "fake_auc", "fake_auc_val", "bytes", "known_flagged", "unseen_flagged")
    table: dict[str, dict[str, Any]] = {k: {} for k in keys}
    for label, (scorer, held) in scorers.items():
        threshold = float(np.quantile(held, cfg.unknown.quantile))
        s_known, s_new = scorer.scores(known_test), scorer.scores(new_z)
        s_known_val = np.concatenate([*[scorer.scores(z) for z in old_val], held[newest]])
        s_new_val = scorer.scores(new_val)
        table["auc"][label] = score_auc(s_known, s_new)
        table["auc_val"][label] = score_auc(s_known_val, s_new_val)
        table["fake_auc"][label] = score_auc(s_known, s_new[new_y == 1])
        table["fake_auc_val"][label] = score_auc(s_known_val, s_new_val[new_val_y == 1])
        table["bytes"][label] = scorer.nbytes()
        table["known_flagged"][label] = float((s_known > threshold).mean())
        table["unseen_flagged"][label] = float((s_new > threshold).mean())
    return {f"unknown_{k}_by_method": v for k, v in table.items()}
