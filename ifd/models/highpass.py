"""A fixed high-pass residual layer for forensic backbones.

Generators leave their traces in the high frequencies (up-sampling grids, decoder smoothing, spectral
peaks, resampling), which image content drowns out. Steganalysis and manipulation detection therefore
feed networks noise residuals from fixed high-pass filters (Fridrich & Kodovsky, "Rich Models for
Steganalysis", IEEE TIFS 2012; Zhou et al., "Learning Rich Features for Image Manipulation Detection",
CVPR 2018). Here four small residual kernels per colour channel (first differences along x and y, the
second difference along x, the 3x3 Laplacian) are concatenated to the RGB input: on the synthetic
stream this makes a from-scratch CNN learn every family in a few CPU epochs instead of tens.
The kernels are buffers (saved with the model, never trained).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNELS: tuple[tuple[tuple[float, ...], ...], ...] = (
    ((0, 0, 0), (0, -1, 1), (0, 0, 0)),
    ((0, 0, 0), (0, -1, 0), (0, 1, 0)),
    ((0, 0, 0), (1, -2, 1), (0, 0, 0)),
    ((0, 1, 0), (1, -4, 1), (0, 1, 0)),
)
GAIN = 4.0  # residuals are small next to normalised pixels; this brings them to a comparable scale


class HighPassResiduals(nn.Module):
    """(B, C, H, W) -> (B, C + 4C, H, W): the input followed by its residuals under each fixed kernel."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        k = torch.tensor(KERNELS, dtype=torch.float32)[:, None]
        self.register_buffer("kernels", k.repeat(in_channels, 1, 1, 1))
        self.in_channels = in_channels
        self.out_channels = in_channels * (1 + len(KERNELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        residuals = F.conv2d(padded, self.kernels.to(x.dtype), groups=self.in_channels) * GAIN
        return torch.cat([x, residuals], dim=1)
