"""Training-time image augmentations, one file each, registered by name (see base.py).

`build_augment(names_and_params)` gives the pipeline the train data applies to every new and replayed
image when `LIDConfig.augment` is on; evaluation and replay selection never augment.
"""

from ifd.data.augment import color_jitter, gaussian_blur, hflip, jpeg  # noqa: F401  (registers the transforms)
from ifd.data.augment.base import AUGMENTATIONS, DEFAULT_AUGMENTATIONS, ImageAugment, build_augment

__all__ = ["AUGMENTATIONS", "DEFAULT_AUGMENTATIONS", "ImageAugment", "build_augment"]
