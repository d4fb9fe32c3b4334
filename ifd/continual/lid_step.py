"""The losses of one LID training step (SUR-LID, CVPR 2025, arXiv 2411.11396; LSDA, CVPR 2024, arXiv 2311.11278).

    z = backbone(x), f = normalize(z)
    L_det = CE of each sample through its own task's head (optionally also LSDA's extra fakes)
    L_iso = SupCon over cluster labels task*2+class, replay features re-filled (DR), LSDA extras appended
    L_dis = MSE(normalize(z_student), normalize(z_teacher)) on the replay images (no teacher on task 0)
    loss  = weight_iso * L_iso + weight_dis * L_dis + weight_det * L_det

The batch is `dict(x, y, task, is_replay)`; in features-only mode replay samples come as stored
features (`replay_features`, `replay_y`, `replay_task`): they enter L_det and L_iso as constants and,
having no image, no distillation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ifd.continual.augmenters import create_augmenter
from ifd.continual.losses import K, cluster_labels, detection_loss, distillation_loss, supcon_loss
from ifd.continual.refill import Centroids, distribution_refill


def _gather(z_img: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Features, labels, tasks and replay mask of every sample: image rows first, stored-feature rows after."""
    device = z_img.device
    y = batch["y"].to(device).long()
    task = batch["task"].to(device).long()
    replay = batch.get("is_replay")
    replay = replay.to(device).bool() if replay is not None else torch.zeros_like(y, dtype=torch.bool)
    stored = batch.get("replay_features")
    if stored is None or stored.shape[0] == 0:
        return z_img, y, task, replay
    z = torch.cat([z_img, stored.to(device=device, dtype=z_img.dtype).detach()])
    y = torch.cat([y, batch["replay_y"].to(device).long()])
    task = torch.cat([task, batch["replay_task"].to(device).long()])
    replay = torch.cat([replay, torch.ones(stored.shape[0], dtype=torch.bool, device=device)])
    return z, y, task, replay


def _isolation(
    z: torch.Tensor,
    labels: torch.Tensor,
    iso_labels: torch.Tensor,
    replay: torch.Tensor,
    extras: tuple[torch.Tensor, torch.Tensor],
    cfg: Any,
    centroids: Centroids | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    f = F.normalize(z, dim=1)
    if cfg.use_dr and bool(replay.any()):
        rows = replay.nonzero().squeeze(1)
        f = f.index_put((rows,), distribution_refill(f[rows], labels[rows], centroids, generator))
    z_aug, y_aug = extras
    if z_aug.shape[0]:
        f = torch.cat([f, F.normalize(z_aug, dim=1)])
        iso_labels = torch.cat([iso_labels, y_aug])
    return supcon_loss(f, iso_labels, cfg.temperature, cfg.supcon_scale_by_temperature)


def _distillation(
    z_img: torch.Tensor, x: torch.Tensor, replay_img: torch.Tensor, teacher: nn.Module | None
) -> torch.Tensor:
    if teacher is None or not bool(replay_img.any()):
        return z_img.new_zeros(())
    with torch.no_grad():
        z_teacher = teacher.forward_features(x[replay_img])
    return distillation_loss(z_img[replay_img], z_teacher)


def lid_losses(
    model: nn.Module,
    teacher: nn.Module | None,
    batch: Mapping[str, torch.Tensor],
    cfg: Any,
    centroids: Centroids | None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """{"loss": differentiable total, "det"/"iso"/"dis": detached parts} for one batch."""
    x = batch["x"]
    z_img = model.forward_features(x)
    z, y, task, replay = _gather(z_img, batch)
    labels = cluster_labels(task, y)
    zero = z.new_zeros(())

    use_extras = cfg.use_lsda and (cfg.weight_iso > 0 or cfg.lsda_through_heads)
    augmenter = create_augmenter(cfg.augmenter_name() if use_extras else "none", **cfg.augmenter_kwargs())
    extras = augmenter.augment(z, labels, generator)

    logits, targets = model.forward_head(z, task), y
    if cfg.lsda_through_heads and extras[0].shape[0]:
        z_aug, y_aug = extras
        logits = torch.cat([logits, model.forward_head(z_aug, y_aug // K)])
        targets = torch.cat([targets, y_aug % K])
    det = detection_loss(logits, targets) if cfg.weight_det > 0 else zero

    iso = zero
    if cfg.weight_iso > 0:
        iso_labels = cluster_labels(task, y, cfg.shared_real_label)
        iso = _isolation(z, labels, iso_labels, replay, extras, cfg, centroids, generator)

    dis = zero
    if cfg.weight_dis > 0:
        dis = _distillation(z_img, x, replay[: z_img.shape[0]], teacher)

    loss = cfg.weight_iso * iso + cfg.weight_dis * dis + cfg.weight_det * det
    return {"loss": loss, "det": det.detach(), "iso": iso.detach(), "dis": dis.detach()}
