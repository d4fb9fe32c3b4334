"""Smooth gain field: a low-order multiplicative illumination change, as relighting leaves it.

Face reenactment and relighting generators re-render shading; their outputs differ from the source by
a smooth, low-order change of illumination rather than by a pixel-level print (the lighting
inconsistency cue of Johnson & Farid, "Exposing digital forgeries by detecting inconsistencies in
lighting", ACM MM-Sec 2005). A task's family draws one second-order polynomial field over the image
plane (its shape is the generator's lighting bias); every fake is the real times 1 + amplitude * field,
at a per-image strength, with a small per-image tilt. The trace is weak (the brightness changes by
at most 16-24 % at the field's extremes, much less over most of the image) and low-frequency: no fixed
high-pass residual sees it. At 8 % a plain BN CNN did not learn it (AUC 0.60 on 170 training pairs,
64 px, 8 epochs); at 20 % it reached 0.81 and `ifd_cnn_small` 0.55 (benchmarks/backbone_probe.py, 2 seeds).
"""

from __future__ import annotations

import numpy as np

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"amplitude": 0.20, "tilt": 0.02},
    {"amplitude": 0.16, "tilt": 0.01},
    {"amplitude": 0.24, "tilt": 0.03},
]
TERMS = ("x", "y", "xx", "yy", "xy")


def _monomials(h: int, w: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    return {"x": xx, "y": yy, "xx": xx**2 - 1 / 3, "yy": yy**2 - 1 / 3, "xy": xx * yy}


@FAMILIES.register("gain_field")
class GainField(Family):
    name = "gain_field"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)
        coef = rng.normal(0.0, 1.0, len(TERMS))
        self.coef = coef / np.abs(coef).sum()
        self.params["coefficients"] = dict(zip(TERMS, np.round(self.coef, 4).tolist(), strict=True))

    def field(self, h: int, w: int) -> np.ndarray:
        """The task's fixed field (h, w), zero mean, at most 1 in magnitude."""
        mono = _monomials(h, w)
        out = sum(c * mono[t] for c, t in zip(self.coef, TERMS, strict=True))
        return (out / max(np.abs(out).max(), 1e-8)).astype(np.float32)

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w, _ = reals.shape
        base = self.field(h, w)
        mono = _monomials(h, w)
        out = np.empty_like(reals)
        for i, img in enumerate(reals):
            tilt = self.params["tilt"] * (rng.normal() * mono["x"] + rng.normal() * mono["y"])
            gain = 1.0 + self.params["amplitude"] * rng.uniform(0.7, 1.3) * base + tilt
            out[i] = img * gain[:, :, None].astype(np.float32)
        return out
