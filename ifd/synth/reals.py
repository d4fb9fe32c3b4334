"""Real images for the synthetic stream: crops of photographs that ship inside installed packages, mixed
with procedural natural-statistics images (dead leaves, 1/f noise).

Photographs: scikit-image's bundled samples (only those stored in the wheel; others need pooch and the
network, and are skipped) and scikit-learn's `load_sample_images()`. Every crop gets a random scale,
position, flips/rotation and a colour jitter, so each task brings reals never seen before.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ifd.errors import IfdError
from ifd.synth.procedural import dead_leaves, pink_noise

# scikit-image samples stored in the package itself (checked offline); greyscale ones get tinted by the jitter
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "brick", "camera", "grass", "gravel", "moon", "coins",
)
PHOTO_SHARE = 0.7  # the rest: dead leaves and 1/f noise, half each
MIN_STD = 0.04  # crops flatter than this (sky, black retina background) are drawn again


@lru_cache(maxsize=1)
def photo_pool() -> tuple[tuple[str, np.ndarray], ...]:
    """(name, float32 HxWx3 in [0, 1]) for every bundled photograph that loads without the network."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    pool: list[tuple[str, np.ndarray]] = []
    for name in SKIMAGE_PHOTOS:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            continue
        try:
            pool.append((name, _as_rgb_float(loader())))
        except (ModuleNotFoundError, OSError, ValueError):
            continue  # not in this scikit-image wheel (would need pooch / the network)
    bunch = load_sample_images()
    for path, img in zip(bunch.filenames, bunch.images, strict=True):
        pool.append((path.rsplit("/", 1)[-1].split(".")[0], _as_rgb_float(img)))
    if not pool:
        raise IfdError("no bundled sample photograph could be loaded (scikit-image / scikit-learn data missing)")
    return tuple(pool)


def draw_real(size: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One real image (size, size, 3) float32 in [0, 1] and the name of its source."""
    u = rng.random()
    if u < PHOTO_SHARE:
        return photo_crop(size, rng)
    if u < PHOTO_SHARE + (1 - PHOTO_SHARE) / 2:
        return _jitter(dead_leaves(size, rng), rng), "dead_leaves"
    return _jitter(pink_noise(size, rng), rng), "pink_noise"


def photo_crop(size: int, rng: np.random.Generator, tries: int = 20) -> tuple[np.ndarray, str]:
    """A random crop of a random bundled photograph: scale, position, flips, colour jitter."""
    pool = photo_pool()
    for _ in range(tries):
        name, photo = pool[rng.integers(len(pool))]
        h, w = photo.shape[:2]
        max_scale = min(3.0, min(h, w) / size)
        side = int(round(size * np.exp(rng.uniform(0.0, np.log(max_scale)))))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = photo[y : y + side, x : x + side]
        if crop.std() < MIN_STD:
            continue
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if side != size else crop.copy()
        crop = np.rot90(crop, rng.integers(4))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return _jitter(np.ascontiguousarray(crop), rng), name
    return _jitter(pink_noise(size, rng), rng), "pink_noise"


def _jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White balance, saturation, contrast, brightness and gamma changes, drawn per image."""
    img = img * rng.uniform(0.88, 1.12, 3).astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.7, 1.3)
    img = (img - img.mean()) * rng.uniform(0.8, 1.2) + img.mean() + rng.uniform(-0.08, 0.08)
    img = np.clip(img, 0, 1) ** np.exp(rng.uniform(-0.25, 0.25))
    return img.astype(np.float32)


def _as_rgb_float(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    return np.ascontiguousarray(img.astype(np.float32) / scale)
