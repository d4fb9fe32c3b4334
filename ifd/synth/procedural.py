"""Procedural images with natural-image statistics: dead leaves and 1/f ("pink") noise textures.

Dead leaves: occluding disks with radii drawn from p(r) ~ r^-3, the model of Lee, Mumford & Huang,
"Occlusion models for natural images" (IJCV 2001), which reproduces the scale invariance and the
1/f^2 power spectrum of photographs. 1/f noise: white noise shaped in the Fourier domain.
"""

from __future__ import annotations

import cv2
import numpy as np


def dead_leaves(size: int, rng: np.random.Generator, n_disks: int = 800) -> np.ndarray:
    """A dead-leaves image (size, size, 3) in [0, 1], rendered at 2x and area-downsampled.

    Disks are painted back to front, so the last ones occlude the earlier: the same picture as
    dropping leaves front to back until the plane is covered, when `n_disks` is large enough.
    """
    big = 2 * size
    r_min, r_max = 3.0, big / 2.0
    palette = _palette(rng, 6)
    img = np.empty((big, big, 3), np.float32)
    img[:] = palette[0]
    u = rng.random(n_disks)
    radii = 1.0 / np.sqrt((1 - u) / r_min**2 + u / r_max**2)  # inverse CDF of p(r) ~ r^-3
    radii = np.sort(radii)[::-1]  # big ones first: they end up mostly occluded, as in the model
    centres = rng.uniform(0, big, (n_disks, 2))
    shades = rng.uniform(0.6, 1.2, n_disks)
    picks = rng.integers(len(palette), size=n_disks)
    jitter = rng.normal(0, 0.03, (n_disks, 3))
    for r, (cx, cy), shade, k, j in zip(radii, centres, shades, picks, jitter, strict=True):
        colour = np.clip(palette[k] * shade + j, 0, 1)
        cv2.circle(img, (int(cx), int(cy)), max(int(round(r)), 1), tuple(float(c) for c in colour), -1, cv2.LINE_8)
    img += rng.normal(0, rng.uniform(0.0, 0.02), img.shape).astype(np.float32)
    return np.clip(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA), 0, 1)


def pink_noise(size: int, rng: np.random.Generator) -> np.ndarray:
    """A colour texture (size, size, 3) in [0, 1] with power spectrum ~ 1/f^alpha, alpha in [1.6, 2.6]."""
    alpha = rng.uniform(1.6, 2.6)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0 / size
    amp = f ** (-alpha / 2.0)
    channels = []
    for _ in range(3):
        spec = amp * (rng.normal(size=amp.shape) + 1j * rng.normal(size=amp.shape))
        channels.append(np.fft.irfft2(spec, s=(size, size)))
    field = np.stack(channels, -1)
    field = (field - field.mean()) / (field.std() + 1e-8)
    mix = np.eye(3) * rng.uniform(0.2, 0.6) + rng.uniform(0.3, 1.0, (1, 3))  # correlated colour channels
    field = field @ mix.T
    field = field / (np.abs(field).max() + 1e-8)
    out = rng.uniform(0.35, 0.65, 3) + field * rng.uniform(0.2, 0.45)
    return np.clip(out, 0, 1).astype(np.float32)


def _palette(rng: np.random.Generator, n: int) -> np.ndarray:
    """A few related colours (a random hue family), so that images look like scenes, not confetti."""
    base = rng.uniform(0.1, 0.9, 3)
    return np.clip(base + rng.normal(0, 0.25, (n, 3)), 0.02, 0.98).astype(np.float32)
