"""Face-swap-like blending: a region of another image pasted through a soft elliptic mask.

Face swapping generates the inner face elsewhere and blends it into the target with a feathered mask;
the traces are the blending boundary and a colour/resolution mismatch between inside and outside
(Li et al., "Face X-ray for More General Face Forgery Detection", CVPR 2020; Shiohara & Yamasaki,
"Detecting Deepfakes with Self-Blended Images", CVPR 2022). The donor is another real of the batch,
resampled (generated at a lower resolution), colour-shifted and given another noise level (splicing
noise inconsistency; Mahdian & Saic, Image and Vision Computing 2009) before it is pasted.
"""

from __future__ import annotations

import cv2
import numpy as np

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"axes": (0.3, 0.45), "feather": 0.06, "colour": 0.06, "donor_scale": (0.7, 0.9), "grain": (0.03, 0.05)},
    {"axes": (0.25, 0.4), "feather": 0.03, "colour": 0.08, "donor_scale": (0.6, 0.8), "grain": (0.03, 0.05)},
    {"axes": (0.3, 0.45), "feather": 0.10, "colour": 0.05, "donor_scale": (0.35, 0.5), "grain": (0.025, 0.04)},
]


@FAMILIES.register("blend")
class Blend(Family):
    name = "blend"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w, _ = reals.shape
        out = np.empty_like(reals)
        shift = 1 + rng.integers(max(n - 1, 1))
        for i in range(n):
            donor = reals[(i + shift) % n] if n > 1 else reals[i][::-1, ::-1]
            mask = self._mask(h, w, rng)[:, :, None]
            out[i] = reals[i] * (1 - mask) + self._prepare(donor, rng) * mask
        return out

    def _mask(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.params["axes"]
        centre = (w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65))
        diameters = (2 * w * rng.uniform(lo, hi), 2 * h * rng.uniform(lo, hi))  # `axes` are semi-axes, in widths
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (centre, diameters, rng.uniform(0, 180)), 1.0, -1)
        return cv2.GaussianBlur(mask, (0, 0), max(self.params["feather"] * w, 0.5))

    def _prepare(self, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The donor as a generator would have made it: lower resolution, another colour balance."""
        h, w = donor.shape[:2]
        s = rng.uniform(*self.params["donor_scale"])
        small = cv2.resize(donor, (max(int(w * s), 4), max(int(h * s), 4)), interpolation=cv2.INTER_AREA)
        donor = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        c = self.params["colour"]
        donor = donor * (1 + rng.normal(0, c, 3)).astype(np.float32) + rng.normal(0, c / 2, 3).astype(np.float32)
        grain = rng.normal(0, rng.uniform(*self.params["grain"]), (h, w, 3)).astype(np.float32)
        return donor + grain  # another camera's noise: the spliced region's noise level does not match
