"""Low-frequency colour cast: a smooth chroma shift that drifts across the image, as a decoder's colour bias.

Latent-diffusion and GAN decoders reproduce colour slightly off, smoothly over the image: a cast that
varies at the scale of the whole picture, not a pixel pattern (the colour statistics cues of McCloskey &
Albright, "Detecting GAN-generated imagery using saturation cues", ICIP 2019; Nataraj et al., "Detecting
GAN generated fake images using co-occurrence matrices", 2019). A task's family draws a chroma direction
(zero sum over R, G, B: no change of brightness) and a smooth pattern of one to two cycles per image;
each fake gets real + amplitude * pattern * direction at a per-image strength and phase offset of the
pattern. 20-28 grey levels at the peak, about 8 on average, at the lowest spatial frequencies:
invisible to a high-pass residual. At a quarter of this a plain BN CNN did not learn it (AUC 0.53).
"""

from __future__ import annotations

import numpy as np

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"amplitude": 24.0 / 255, "cycles": (0.5, 1.5), "offset": 0.5},
    {"amplitude": 28.0 / 255, "cycles": (1.0, 2.0), "offset": 0.3},
    {"amplitude": 20.0 / 255, "cycles": (0.5, 1.0), "offset": 0.7},
]


@FAMILIES.register("colour_cast")
class ColourCast(Family):
    name = "colour_cast"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)
        direction = rng.normal(0.0, 1.0, 3)
        direction -= direction.mean()
        self.direction = (direction / np.linalg.norm(direction)).astype(np.float32)
        lo, hi = self.params["cycles"]
        self.cycles = float(rng.uniform(lo, hi))
        self.angle = float(rng.uniform(0, np.pi))
        self.params.update({"direction": np.round(self.direction, 4).tolist(), "cycles_per_image": round(self.cycles, 4),
                            "angle": round(self.angle, 4)})

    def pattern(self, h: int, w: int, phase: float = 0.0) -> np.ndarray:
        """offset + (1 - offset) * cos(...) of the task's frequency and orientation: (h, w), peak 1."""
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        u = (np.cos(self.angle) * xx / w + np.sin(self.angle) * yy / h) * self.cycles
        off = self.params["offset"]
        return (off + (1 - off) * np.cos(2 * np.pi * u + phase)).astype(np.float32)

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w, _ = reals.shape
        out = np.empty_like(reals)
        for i, img in enumerate(reals):
            strength = self.params["amplitude"] * rng.uniform(0.7, 1.3)
            cast = self.pattern(h, w, rng.uniform(-0.5, 0.5))[:, :, None] * self.direction
            out[i] = img + strength * cast
        return out
