"""The Latent-space Incremental Detector's model (SUR-LID, CVPR 2025, arXiv 2411.11396).

A shared backbone gives pooled features z; one linear head per task maps z to (real, fake) logits.
Training sends each sample through its own task's head; inference averages the logits of all the
heads that exist (not one too many, as the official evaluation did), then applies a softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ifd.continual.heads import TaskHeads

NUM_CLASSES = 2


class IncrementalDetector(nn.Module):
    """`backbone` (forward(x) -> (B, D), attribute `num_features`) plus `TaskHeads`."""

    def __init__(self, backbone: nn.Module, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = int(backbone.num_features)
        self.heads = TaskHeads(self.num_features, num_classes)

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

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """p(fake) per image, (B,): softmax of the mean-of-heads logits (put the model in eval mode first)."""
        return F.softmax(self(x), dim=1)[:, 1]
