"""The Latent-space Incremental Detector's model (SUR-LID, CVPR 2025, arXiv 2411.11396).

A shared backbone gives pooled features z; one linear head per task maps z to (real, fake) logits.
Training sends each sample through its own task's head; inference averages the logits of all the
heads that exist (not one too many, as the official evaluation did). p(fake) is the Platt-calibrated
sigmoid of the mean margin (ifd/continual/calibration.py); uncalibrated, it equals the softmax of the
mean logits.
"""

from __future__ import annotations

import torch
from torch import nn

from ifd.continual.calibration import calibrated_p_fake
from ifd.continual.heads import TaskHeads

NUM_CLASSES = 2


class IncrementalDetector(nn.Module):
    """`backbone` (forward(x) -> (B, D), attribute `num_features`) plus `TaskHeads`."""

    def __init__(self, backbone: nn.Module, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = int(backbone.num_features)
        self.heads = TaskHeads(self.num_features, num_classes)
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))

    @property
    def num_tasks(self) -> int:
        return len(self.heads)

    def start_task(self) -> int:
        """Add the head of a new task; returns its index."""
        return self.heads.add_head()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features z: (B, D)."""
        return self.backbone(x)

    def forward_head(self, z: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """(B, 2) logits of each sample's own task head."""
        return self.heads(z, task_ids)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2) mean-of-heads logits."""
        return self.heads.mean_logits(self.forward_features(x))

    def p_fake(self, z: torch.Tensor) -> torch.Tensor:
        """Calibrated p(fake) of pooled features z, (B,)."""
        return calibrated_p_fake(self.heads.mean_logits(z), self.calibration)

    def set_calibration(self, a: float, b: float) -> None:
        self.calibration.copy_(torch.tensor([a, b], dtype=self.calibration.dtype))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated p(fake) per image, (B,) (put the model in eval mode first)."""
        return self.p_fake(self.forward_features(x))
