"""Horizontal flip (official code: p 0.5). Faces are left-right symmetric; forgery traces survive a flip."""

from __future__ import annotations

import numpy as np
import torch

from ifd.data.augment.base import AUGMENTATIONS, check_probability


@AUGMENTATIONS.register("hflip")
class HorizontalFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = check_probability(p, "hflip")

    def apply(self, pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return torch.flip(pixels, dims=(-1,))
