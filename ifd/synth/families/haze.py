"""Haze: a smooth veil of one colour over the image, thicker toward one side, as a relit or re-rendered scene.

Generators that re-render a scene (relighting, style transfer, diffusion img2img at low strength) tend
to wash it toward an ambient colour, smoothly over the picture; the atmospheric scattering model
I = J * t + A * (1 - t) (He, Sun & Tang, "Single image haze removal using dark channel prior", CVPR 2009)
is the simplest form of that trace. A task's family draws an airlight colour A and the direction in
which the veil thickens; each fake is real * (1 - v) + A * v with a veil v(x, y) that ramps linearly
across the image, at a per-image thickness (5-28 %, thicker on one side). The change is low-frequency
(a ramp and a constant times the image) and weak next to the content: no edge, no print, no noise.
At half this thickness a plain BN CNN reached only AUC 0.66 on 170 training pairs (64 px, 8 epochs).
"""

from __future__ import annotations

import numpy as np

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"veil": (0.06, 0.26), "airlight": (0.55, 0.85)},
    {"veil": (0.05, 0.20), "airlight": (0.6, 0.9)},
    {"veil": (0.07, 0.28), "airlight": (0.5, 0.8)},
]


@FAMILIES.register("haze")
class Haze(Family):
    name = "haze"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)
        tint = rng.normal(0.0, 0.06, 3)
        self.airlight = np.clip(rng.uniform(*self.params["airlight"]) + tint - tint.mean(), 0, 1).astype(np.float32)
        self.angle = float(rng.uniform(0, 2 * np.pi))
        self.params.update({"airlight_rgb": np.round(self.airlight, 4).tolist(), "angle": round(self.angle, 4)})

    def veil(self, h: int, w: int, scale: float = 1.0) -> np.ndarray:
        """(h, w) veil from veil[0] on one side to veil[1] on the other, along the task's direction."""
        yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
        ramp = (np.cos(self.angle) * xx + np.sin(self.angle) * yy) / np.sqrt(2) * 0.5 + 0.5
        lo, hi = self.params["veil"]
        return (scale * (lo + (hi - lo) * ramp)).astype(np.float32)

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w, _ = reals.shape
        out = np.empty_like(reals)
        for i, img in enumerate(reals):
            v = self.veil(h, w, rng.uniform(0.7, 1.3))[:, :, None]
            out[i] = img * (1 - v) + self.airlight * v
        return out
