"""Gaussian blur with an odd kernel drawn from [min_kernel, max_kernel] (official code: p 0.5, 3-7).

sigma follows the kernel size as OpenCV derives it (0.3 * ((k - 1) / 2 - 1) + 0.8), so the parameters
read like the official albumentations config; the convolution is separable, with reflected borders.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ifd.data.augment.base import AUGMENTATIONS, check_probability
from ifd.errors import ConfigError


def _kernel(size: int) -> torch.Tensor:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


@AUGMENTATIONS.register("gaussian_blur")
class GaussianBlur:
    def __init__(self, p: float = 0.5, min_kernel: int = 3, max_kernel: int = 7) -> None:
        self.p = check_probability(p, "gaussian_blur")
        if min_kernel < 3 or max_kernel < min_kernel or min_kernel % 2 == 0 or max_kernel % 2 == 0:
            raise ConfigError(f"augmentation gaussian_blur: kernels must be odd, 3 <= min <= max; got {min_kernel}, {max_kernel}")
        self.sizes = list(range(min_kernel, max_kernel + 1, 2))

    def apply(self, pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        size = int(self.sizes[int(rng.integers(len(self.sizes)))])
        k = _kernel(size)
        pad = size // 2
        x = pixels.float()[None]
        if min(x.shape[-2:]) <= pad:
            return pixels
        x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), k.view(1, 1, 1, size).repeat(3, 1, 1, 1), groups=3)
        x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), k.view(1, 1, size, 1).repeat(3, 1, 1, 1), groups=3)
        return x[0].round_().clamp_(0, 255).to(torch.uint8)
