"""The plain `backbone + Linear(D, 2)` model of the baselines, and the memory unit of a replay sample.

The Avalanche strategies read their images through `ifd.bench.lazy_split.LazySplit` (decoded on
demand, normalised with `to_model_input`, the input our detector sees); their rows of the matrix are
scored in `ifd.bench.baseline_calibration` (frame- and video-level AUC on the raw margin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


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


def pixel_bytes(n_samples: int, img_size: int) -> int:
    """What `n_samples` images weigh as uint8 pixels at the shared size (a like-for-like memory unit)."""
    return int(n_samples) * 3 * int(img_size) ** 2
