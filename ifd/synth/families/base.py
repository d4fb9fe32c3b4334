"""The generator-family interface and its registry.

A family draws its fixed parameters (a kernel, a frequency set, a network's seed) once per task from
`rng` and `variant` (the how-many-th repeat of the family in the stream, so repeats differ), then
turns a batch of reals (N, H, W, 3) float32 in [0, 1] into fakes of the same shape and range.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ifd.registry_utils import Registry


class Family(ABC):
    """One way of forging: fixed parameters at construction, fakes from a batch of reals."""

    name: ClassVar[str]

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        self.variant = variant
        self.params: dict[str, Any] = {}

    @abstractmethod
    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fakes (N, H, W, 3) float32 in [0, 1] from reals of the same shape."""

    def __call__(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if reals.ndim != 4 or reals.shape[-1] != 3:
            raise ValueError(f"{self.name}: expected reals of shape (N, H, W, 3), got {reals.shape}")
        fakes = self.forge(reals.astype(np.float32, copy=False), rng)
        return np.clip(fakes, 0.0, 1.0).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """The family, its variant and its drawn parameters (plain JSON values)."""
        return {"family": self.name, "variant": self.variant, **self.params}


FAMILIES: Registry[type[Family]] = Registry("generator family")


def pick(options: list[dict[str, Any]], variant: int) -> dict[str, Any]:
    """The parameter set of a variant: the table cycles, later repeats differ by the drawn parameters."""
    return dict(options[variant % len(options)])
