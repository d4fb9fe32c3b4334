"""Brightness and contrast jitter (official code: RandomBrightnessContrast, +-0.1 each, p 0.5).

out = pixels * (1 + c) + b * 255 with c ~ U(-contrast, contrast), b ~ U(-brightness, brightness), clipped.
"""

from __future__ import annotations

import numpy as np
import torch

from ifd.data.augment.base import AUGMENTATIONS, check_probability
from ifd.errors import ConfigError


@AUGMENTATIONS.register("color_jitter")
class ColorJitter:
    def __init__(self, p: float = 0.5, brightness: float = 0.1, contrast: float = 0.1) -> None:
        self.p = check_probability(p, "color_jitter")
        if not (0.0 <= brightness <= 1.0 and 0.0 <= contrast <= 1.0):
            raise ConfigError("augmentation color_jitter: brightness and contrast must lie in [0, 1]")
        self.brightness, self.contrast = float(brightness), float(contrast)

    def apply(self, pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        c = rng.uniform(-self.contrast, self.contrast)
        b = rng.uniform(-self.brightness, self.brightness)
        x = pixels.float() * (1.0 + c) + b * 255.0
        return x.round_().clamp_(0, 255).to(torch.uint8)
