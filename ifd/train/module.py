"""One increment of the Latent-space Incremental Detector (SUR-LID, CVPR 2025) as a LightningModule.

The module holds the math of one task: the LID losses against a frozen teacher (a copy of the model
taken at the start of the task), a fresh Adam + StepLR (the official code never resets its optimiser;
we reset it per task on purpose, because a new Trainer.fit builds a new one), and Incremental Decision
Alignment after every optimiser step once the first epoch of the task is done.

Randomness inside a step (DR, LSDA, dropout) is seeded from (seed, task, global step, DDP rank), so a run
resumed from a checkpoint takes the same steps as an uninterrupted one. BatchNorm statistics of the student
are frozen from the second task on (ifd/continual/batchnorm.py says why), so at a task's first step the
student's features equal the teacher's and L_dis starts at zero. Under DDP (ifd/train/ddp.py) IDA is
computed on rank 0 and broadcast, and an epoch's mean losses are averaged over the ranks, reported by rank 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from ifd.continual.batchnorm import freeze_statistics, hold_statistics
from ifd.continual.ida import align_heads
from ifd.continual.lid_step import lid_losses
from ifd.train.ddp import broadcast_


class LIDModule(pl.LightningModule):
    """Trains `model` (an IncrementalDetector whose newest head is task `task_index`) on one increment."""

    def __init__(
        self,
        model: nn.Module,
        teacher: nn.Module | None,
        cfg: Any,
        centroids: Mapping[int, torch.Tensor] | torch.Tensor | None,
        task_index: int,
        seed: int = 0,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self._frozen: tuple[nn.Module, ...] = ()
        if teacher is not None:
            teacher.eval().requires_grad_(False)
            self._frozen = (teacher,)
        self.cfg = cfg
        self.centroids = centroids
        self.task_index = task_index
        self.seed = seed
        self._on_epoch_end = on_epoch_end
        self._sums: dict[str, float] = {}
        self._count = 0
        self._generator: torch.Generator | None = None
        self.freeze_bn = freeze_statistics(str(getattr(cfg, "bn_stats", "train")), task_index)
        self.last_losses: dict[str, torch.Tensor] = {}

    @property
    def teacher(self) -> nn.Module | None:
        """The frozen copy of the model taken at the start of the task (not a submodule: never saved or trained)."""
        return self._frozen[0] if self._frozen else None

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device).eval()
        self.centroids = _to_device(self.centroids, self.device)

    def _step_seed(self) -> int:
        # Each DDP rank draws its own noise for its own shard (rank 0: the single-process draws).
        rank = self.global_rank * 100_000_007
        return (self.seed * 1_000_003 + self.task_index * 10_007 + self.global_step + rank) % (2**63 - 1)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.freeze_bn:  # after Lightning's model.train() of the epoch
            hold_statistics(self.model)
        step_seed = self._step_seed()
        torch.manual_seed(step_seed)
        self._generator = torch.Generator(device=self.device).manual_seed(step_seed)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.teacher is not None:
            self.teacher.eval()
        losses = lid_losses(self.model, self.teacher, batch, self.cfg, self.centroids, self._generator)
        self.last_losses = {k: v.detach() for k, v in losses.items()}
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach())
        self._count += 1
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.cfg.use_ida and self.current_epoch >= 1:
            if self.global_rank == 0:
                align_heads(
                    self.model.heads,
                    self.cfg.ida_newest_gamma,
                    self.cfg.ida_previous_gamma,
                    self.cfg.ida_older_gamma,
                    partner=self.cfg.ida_partner,
                )
            if self.trainer.world_size > 1:  # under DDP: every rank takes rank 0's aligned heads
                broadcast_(self.model.heads.parameters())

    def on_train_epoch_start(self) -> None:
        self._sums, self._count = {}, 0

    def on_train_epoch_end(self) -> None:
        if self._on_epoch_end is not None and self._count:
            means = {k: v / self._count for k, v in self._sums.items()}
            if self.trainer.world_size > 1:  # the mean over every rank's shard, reported once
                keys = sorted(means)
                local = torch.tensor([means[k] for k in keys], dtype=torch.float64, device=self.device)
                mean = self.trainer.strategy.reduce(local, reduce_op="mean")
                means = dict(zip(keys, mean.tolist(), strict=True))
            if self.global_rank == 0:
                self._on_epoch_end(self.current_epoch, means)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=self.cfg.step_size, gamma=self.cfg.gamma_lr
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def _to_device(centroids: Any, device: torch.device) -> Any:
    if centroids is None:
        return None
    if isinstance(centroids, torch.Tensor):
        return centroids.to(device)
    return {k: v.to(device) for k, v in centroids.items()}
