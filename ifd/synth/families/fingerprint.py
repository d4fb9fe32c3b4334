"""Periodic spectral fingerprint: a faint fixed pattern that shows up as peaks in the Fourier spectrum.

Generators leave periodic traces that are constant across their outputs (Zhang, Karaman & Chang,
"Detecting and Simulating Artifacts in GAN Fake Images", WIFS 2019; Marra et al., "Do GANs leave
artificial fingerprints?", MIPR 2019). A task's family draws a few high spatial frequencies, phases and
colour weights once; every fake gets that pattern at a per-image strength, modulated by its brightness.
"""

from __future__ import annotations

import numpy as np

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"peaks": 3, "f_min": 0.18, "f_max": 0.45, "amplitude": 8.0 / 255},
    {"peaks": 4, "f_min": 0.12, "f_max": 0.35, "amplitude": 12.0 / 255},
    {"peaks": 2, "f_min": 0.30, "f_max": 0.50, "amplitude": 8.0 / 255},
]


@FAMILIES.register("fingerprint")
class Fingerprint(Family):
    name = "fingerprint"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)
        p = self.params["peaks"]
        radius = rng.uniform(self.params["f_min"], self.params["f_max"], p)
        angle = rng.uniform(0, np.pi, p)
        self.freqs = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)  # cycles per pixel (fy, fx)
        self.phases = rng.uniform(0, 2 * np.pi, p)
        self.colour = rng.uniform(0.3, 1.0, (p, 3)) * rng.choice([-1.0, 1.0], (p, 3))
        self.params["freqs"] = np.round(self.freqs, 4).tolist()

    def pattern(self, h: int, w: int) -> np.ndarray:
        """The fixed (h, w, 3) pattern, unit peak amplitude per component."""
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        out = np.zeros((h, w, 3))
        for (fy, fx), ph, col in zip(self.freqs, self.phases, self.colour, strict=True):
            out += np.cos(2 * np.pi * (fy * yy + fx * xx) + ph)[:, :, None] * col
        return (out / len(self.freqs) ** 0.5).astype(np.float32)

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w, _ = reals.shape
        strength = self.params["amplitude"] * rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
        lum = reals.mean(axis=3, keepdims=True)
        return reals + strength * (0.5 + lum) * self.pattern(h, w)[None]
