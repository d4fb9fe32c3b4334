"""Latent augmenters by name (registry AUGMENTERS): one file each, registered on import."""

from ifd.continual.augmenters import lsda, none  # noqa: F401  (register the augmenters)
from ifd.continual.augmenters.base import AUGMENTERS, LatentAugmenter, create_augmenter

__all__ = ["AUGMENTERS", "LatentAugmenter", "create_augmenter"]
