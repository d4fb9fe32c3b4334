"""What every image augmentation shares: the registry, the transform protocol and the pipeline.

A transform maps uint8 pixels (3, S, S) to uint8 pixels of the same shape, drawing its randomness from a
numpy Generator it is given, so that a sample's augmentation depends only on the seed the batch sampler
drew for it (a resumed run augments exactly as the uninterrupted one). Each transform fires with its own
probability `p`. Defaults follow the official SUR-LID / DeepfakeBench training config: horizontal flip
p 0.5; Gaussian blur p 0.5, kernel 3-7; brightness and contrast +-0.1, p 0.5; JPEG re-compression
quality 40-100, p 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from ifd.errors import ConfigError
from ifd.registry_utils import Registry


class Transform(Protocol):
    p: float

    def apply(self, pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor: ...


AUGMENTATIONS: Registry[Callable[..., Transform]] = Registry("image augmentation")

DEFAULT_AUGMENTATIONS: dict[str, dict[str, Any]] = {
    "hflip": {},
    "gaussian_blur": {},
    "color_jitter": {},
    "jpeg": {},
}
"""The official code's four, in the order applied (JPEG last, as the camera-to-upload path would)."""


def check_probability(p: float, name: str) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise ConfigError(f"augmentation {name}: p must lie in [0, 1], got {p}")
    return float(p)


class ImageAugment:
    """Transforms in order; each fires with its probability; `(pixels, seed) -> pixels`."""

    def __init__(self, transforms: Sequence[tuple[str, Transform]]) -> None:
        self.transforms = list(transforms)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.transforms]

    def __call__(self, pixels: torch.Tensor, seed: int) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        for _, transform in self.transforms:
            if rng.random() < transform.p:
                pixels = transform.apply(pixels, rng)
        return pixels


def build_augment(spec: Mapping[str, Mapping[str, Any]]) -> ImageAugment:
    """The pipeline of `{name: keyword arguments}`, in the mapping's order; a wrong name or argument fails."""
    transforms = []
    for name, kwargs in spec.items():
        factory = AUGMENTATIONS.get(name)
        try:
            transforms.append((name, factory(**dict(kwargs or {}))))
        except TypeError as exc:
            raise ConfigError(f"augmentation {name}: {exc}") from exc
    return ImageAugment(transforms)
