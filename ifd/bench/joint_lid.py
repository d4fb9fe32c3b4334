"""`joint-lid`: LID's upper bound (METHOD.md §4) — LID's own architecture and losses, trained jointly.

At step t the detector of step t - 1, with a new head for task t, learns the union of the train splits of
every task seen so far, for the same number of epochs as one increment (cumulative training, as
Avalanche's `Cumulative`: it gets every update LID gets, on all the data instead of a replay sample; a
fresh detector per step, as before 2026-12-01, had t times fewer updates than LID's chain and fell below it
at 5 epochs per task, which made it no upper bound): every sample goes through its own task's head
(L_det), supervised-contrastive isolation over (task, class) clusters (L_iso) with LSDA's extra fakes, IDA
after every step from the second epoch; no teacher (nothing to distil from) and no replay (so no DR).
Calibration and thresholds use the val splits of every seen task: joint training keeps all data anyway.
A method that scores above this bound has a bug to explain, not a result to report.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from ifd.bench.lid_runner import finish_joint
from ifd.bench.spec import RunContext, RunResult
from ifd.data.image_dataset import ImageCache, TaskImageDataset
from ifd.data.tasks import TaskData

JOINT_DELTAS: dict[str, Any] = {"use_dr": False, "weight_dis": 0.0}


class UnionDataModule(pl.LightningDataModule):
    """The train splits of `tasks`, each sample labelled with its own task index, shuffled per epoch (seeded)."""

    def __init__(self, tasks: Sequence[TaskData], cfg: Any, cache: ImageCache, seed: int) -> None:
        super().__init__()
        self.tasks, self.cfg, self.cache, self.seed = list(tasks), cfg, cache, seed
        self.dataset: ConcatDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is None:
            parts = [TaskImageDataset(t.root, t.split("train"), self.cfg.img_size, k, cache=self.cache)
                     for k, t in enumerate(self.tasks)]
            self.dataset = ConcatDataset(parts)

    def train_dataloader(self) -> DataLoader:
        from ifd.train.datamodule import collate_increment

        self.setup("fit")
        assert self.dataset is not None
        bs = int(self.cfg.batch_size)
        return DataLoader(self.dataset, batch_size=bs, shuffle=True, collate_fn=collate_increment,
                          generator=torch.Generator().manual_seed(self.seed), drop_last=len(self.dataset) % bs == 1)


def val_calibration_set(model: Any, seen: Sequence[TaskData], img_size: int, cache: ImageCache) -> Any:
    """Every seen task's val split as the calibration set (what joint training keeps: everything)."""
    from ifd.train.attribution_fit import CalibrationSet
    from ifd.train.evaluate import predict_task

    zs, ys, ts = [], [], []
    for k, task in enumerate(seen):
        y, _, _, z = predict_task(model, task, "val", img_size=img_size, cache=cache)
        zs.append(z)
        ys.append(np.asarray(y))
        ts.append(np.full(len(y), k))
    return CalibrationSet(torch.cat(zs), np.concatenate(ys), np.concatenate(ts), 0, int(sum(len(y) for y in ys)))


def learn_joint(seen: Sequence[TaskData], cfg: Any, out_dir: Path, cache: ImageCache, previous: Any = None) -> tuple[Any, float]:
    """The previous step's detector (a fresh one at the first step) with one more head, trained on the
    union of the seen tasks; (model, learn seconds)."""
    from ifd.train.loop import _eval_device
    from ifd.train.module import LIDModule
    from ifd.train.state import build_detector
    from ifd.train.trainer import fit_context, make_trainer

    t = len(seen) - 1
    pl.seed_everything(int(cfg.seed) + t, workers=True, verbose=False)
    started = time.perf_counter()
    if previous is None:
        model = build_detector(cfg, n_heads=len(seen), pretrained=True)
    else:
        model = previous.train()
        while model.num_tasks < len(seen):
            model.start_task()
    module = LIDModule(model, None, cfg, None, t, seed=int(cfg.seed))
    data = UnionDataModule(seen, cfg, cache, seed=int(cfg.seed) + t)
    with fit_context():
        make_trainer(cfg, Path(out_dir) / "ckpt", Path(out_dir)).fit(module, datamodule=data)
    return module.model.to(_eval_device(cfg)).eval(), time.perf_counter() - started


def run_joint_lid(name: str, ctx: RunContext) -> RunResult:
    """Row t: the joint LID detector of step t on the test split of each seen task."""
    from ifd.continual.config import LIDConfig
    from ifd.eval.matrix import ResultMatrix
    from ifd.train.attribution_fit import calibrate
    from ifd.train.raw_row import raw_score_row

    tuned = dict(ctx.baseline_params.get(name) or {})
    cfg = LIDConfig.model_validate({**ctx.base.model_dump(), "seed": ctx.seed, **tuned, **JOINT_DELTAS})
    cache, matrix, model = ImageCache(), ResultMatrix(), None
    result = RunResult(strategy=name, seed=ctx.seed, notes={"replay": "all past train images (re-read from disk)",
                                                            "upper_bound_of": "lid"})
    for t, task in enumerate(ctx.tasks):
        seen = ctx.tasks[: t + 1]
        out = ctx.work_dir / f"joint_lid_{t}"
        try:
            model, learn_s = learn_joint(seen, cfg, out, cache, previous=model)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        calibrate(model, val_calibration_set(model, seen, cfg.img_size, cache))
        row, scores = raw_score_row(model, seen, img_size=cfg.img_size, split=ctx.eval_split, cache=cache)
        matrix.add(task.name, row)
        result.final_scores = scores
        result.time_per_task_s.append(round(learn_s, 3))
        result.eval_time_per_task_s.append(round(time.perf_counter() - started, 3))
        ctx.progress(f"[bench] joint-lid step {t}: AUC " + " ".join(f"{a:.3f}" for a in row.auc))
        model.cpu()
    return finish_joint(result, matrix, ctx, cfg.img_size)
