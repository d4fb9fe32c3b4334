"""Transposed-convolution upsampling: the checkerboard artefact of generator decoders.

Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill 2016): a stride-s
transposed convolution whose kernel size is not a multiple of s, or whose s*s sub-kernels have unequal
sums, stamps a period-s pattern on its output. The image is area-downsampled by s and brought back by a
fixed random depthwise transposed convolution: a bilinear kernel plus noise, with small per-phase gains.
A share of the real's own detail is added back (a generator synthesises high frequencies too), so the
trace is the periodic pattern more than the loss of resolution.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"stride": 2, "kernel": 4, "noise": 0.06, "phase_gain": 0.03, "detail": 0.7},
    {"stride": 2, "kernel": 3, "noise": 0.08, "phase_gain": 0.02, "detail": 0.5},
    {"stride": 4, "kernel": 8, "noise": 0.03, "phase_gain": 0.02, "detail": 0.8},
]


@FAMILIES.register("checkerboard")
class Checkerboard(Family):
    name = "checkerboard"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)
        self.weight = _random_kernel(self.params, rng)
        self.smooth = _random_kernel({**self.params, "noise": 0.0, "phase_gain": 0.0}, rng)

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Upsampled image plus a share `detail` of the real's own detail (what plain upsampling loses)."""
        s = self.params["stride"]
        n, h, w, _ = reals.shape
        small = np.stack([cv2.resize(im, (w // s, h // s), interpolation=cv2.INTER_AREA) for im in reals])
        x = F.pad(torch.from_numpy(small).permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate")  # no dark rim
        up, smooth = self._upsample(x, self.weight, h, w), self._upsample(x, self.smooth, h, w)
        return up + self.params["detail"] * (reals - smooth)

    def _upsample(self, x: torch.Tensor, weight: torch.Tensor, h: int, w: int) -> np.ndarray:
        s, k = self.params["stride"], self.params["kernel"]
        with torch.no_grad():
            y = F.conv_transpose2d(x, weight, stride=s, padding=(k - s + 1) // 2, groups=3)
        top = s + (y.shape[-1] - (w + 2 * s)) // 2
        return y[:, :, top : top + h, top : top + w].permute(0, 2, 3, 1).numpy()


def _random_kernel(params: dict, rng: np.random.Generator) -> torch.Tensor:
    """(3, 1, k, k) depthwise kernel: bilinear + noise, each of the s*s phases summing to ~1."""
    s, k = params["stride"], params["kernel"]
    centre = (k - 1) / 2
    tri = np.maximum(0.0, 1.0 - np.abs(np.arange(k) - centre) / s)
    base = np.outer(tri, tri)
    kernels = []
    for _ in range(3):
        ker = base * (1.0 + params["noise"] * rng.normal(size=(k, k))) + 0.5 * params["noise"] * rng.normal(size=(k, k)) / s
        for py in range(s):
            for px in range(s):
                phase = ker[py::s, px::s]
                total = phase.sum()
                gain = 1.0 + params["phase_gain"] * rng.normal()
                ker[py::s, px::s] = phase / (total if abs(total) > 1e-3 else 1.0) * gain
        kernels.append(ker)
    return torch.from_numpy(np.stack(kernels)[:, None].astype(np.float32))
