"""JPEG re-compression at a quality drawn from [quality_min, quality_max] (official code: 40-100, p 0.5).

Real uploads are re-compressed; a detector that leans on traces JPEG destroys learns to look elsewhere.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ifd.data.augment.base import AUGMENTATIONS, check_probability
from ifd.errors import ConfigError


@AUGMENTATIONS.register("jpeg")
class JpegRecompression:
    def __init__(self, p: float = 0.5, quality_min: int = 40, quality_max: int = 100) -> None:
        self.p = check_probability(p, "jpeg")
        if not 1 <= quality_min <= quality_max <= 100:
            raise ConfigError(f"augmentation jpeg: need 1 <= quality_min <= quality_max <= 100, got {quality_min}, {quality_max}")
        self.quality_min, self.quality_max = int(quality_min), int(quality_max)

    def apply(self, pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        quality = int(rng.integers(self.quality_min, self.quality_max + 1))
        buf = io.BytesIO()
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        arr = np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8).copy()
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
