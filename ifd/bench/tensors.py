"""Task splits as in-memory tensors and the plain `backbone + Linear(D, 2)` model of the baselines.

The Avalanche strategies train on tensors: every image of a split is decoded once, resized to the
shared image size and normalised with `to_model_input` (the same input our detector sees). Scores are
p(fake) = softmax(logits)[:, 1], frame-level AUC / ACC as everywhere else (`ifd.eval.scoring`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ifd.data.image_dataset import ImageCache, TaskImageDataset, to_model_input
from ifd.data.tasks import TaskData


class BackboneClassifier(nn.Module):
    """`backbone` (images -> (B, D) pooled features) followed by one linear layer to 2 logits (real, fake)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(int(backbone.num_features), 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


def build_classifier(cfg: Any) -> BackboneClassifier:
    """The baselines' model on the config's backbone (local weights when the config names a file)."""
    from ifd.models.backbones import create_backbone

    weights = cfg.backbone_weights
    backbone = create_backbone(cfg.backbone, weights=Path(weights) if weights else None, img_size=cfg.img_size)
    return BackboneClassifier(backbone)


def split_tensors(
    task: TaskData, split: str, img_size: int, cache: ImageCache | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of every row of `split`, in manifest order: x float32 (N, 3, S, S) normalised, y int64 (N,)."""
    ds = TaskImageDataset(task.root, task.split(split), img_size, 0, cache=cache)
    pixels = torch.stack([ds.pixels(i) for i in range(len(ds))])
    return to_model_input(pixels), ds.labels.clone()


@torch.no_grad()
def predict_fake(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """p(fake) = softmax(logits)[:, 1] for every row of `x`, in eval mode (the mode is given back)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size].to(device))
            out.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


def evaluate_tensors(
    model: nn.Module, tests: Sequence[tuple[torch.Tensor, torch.Tensor]], batch_size: int = 64
) -> tuple[list[float], list[float]]:
    """Frame-level AUC and ACC on each (x, y) test split: one row of the result matrix."""
    from ifd.eval.scoring import frame_scores

    aucs, accs = [], []
    for x, y in tests:
        auc, acc = frame_scores(y.numpy(), predict_fake(model, x, batch_size))
        aucs.append(float(auc))
        accs.append(float(acc))
    return aucs, accs


def pixel_bytes(n_samples: int, img_size: int) -> int:
    """What `n_samples` images weigh as uint8 pixels at the shared size (a like-for-like memory unit)."""
    return int(n_samples) * 3 * int(img_size) ** 2
