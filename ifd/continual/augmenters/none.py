"""The no-op latent augmenter: no extra samples (the `lid-no-lsda` ablation)."""

from __future__ import annotations

from typing import Any

import torch

from ifd.continual.augmenters.base import AUGMENTERS, LatentAugmenter


@AUGMENTERS.register("none")
class NoAugmenter(LatentAugmenter):
    def __init__(self, **_: Any) -> None:
        pass

    def augment(
        self, f: torch.Tensor, cluster_labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return f[:0], cluster_labels[:0]
