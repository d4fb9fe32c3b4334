"""Autoencoder reconstruction: reals passed through a small convolutional autoencoder trained on them.

Latent diffusion models decode every image through their autoencoder, whose reconstruction error is a
detectable trace (Ricker, Lukovnikov & Fischer, "AEROBLADE", CVPR 2024); reconstructing reals through
the autoencoder gives fakes aligned with their reals in content (the idea behind "Aligned Datasets",
Rajan et al., ICLR 2025). A tiny space-to-depth autoencoder (its linear bottleneck initialised by PCA, the
optimal linear autoencoder, so that a short training suffices) is trained for a fixed number of steps on
the task's reals, a couple of seconds on one CPU core; the fakes are its reconstructions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ifd.synth.families.base import FAMILIES, Family, pick

VARIANTS = [
    {"factor": 4, "latent": 16, "width": 32, "steps": 150, "lr": 1e-3},
    {"factor": 2, "latent": 4, "width": 32, "steps": 150, "lr": 1e-3},
    {"factor": 8, "latent": 40, "width": 64, "steps": 150, "lr": 1e-3},
]
BATCH, CROP = 16, 32


class _TinyAE(nn.Module):
    """Space-to-depth, a linear bottleneck initialised by PCA, nonlinear residual blocks around it."""

    def __init__(self, factor: int, latent: int, width: int) -> None:
        super().__init__()
        c = 3 * factor * factor
        self.unshuffle, self.shuffle = nn.PixelUnshuffle(factor), nn.PixelShuffle(factor)
        self.project, self.expand = nn.Conv2d(c, latent, 1), nn.Conv2d(latent, c, 1)
        self.enc_block, self.dec_block = _residual(latent, width), _residual(latent, width)

    def init_pca(self, x: torch.Tensor) -> None:
        """Set the linear bottleneck to the optimal linear autoencoder: the top principal components."""
        patches = self.unshuffle(x).permute(0, 2, 3, 1).reshape(-1, self.project.in_channels).double()
        mean = patches.mean(0)
        _, _, vh = torch.linalg.svd(patches - mean, full_matrices=False)
        basis = vh[: self.project.out_channels].float()
        with torch.no_grad():
            self.project.weight.copy_(basis[:, :, None, None])
            self.project.bias.copy_(-(basis @ mean.float()))
            self.expand.weight.copy_(basis.T[:, :, None, None])
            self.expand.bias.copy_(mean.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.project(self.unshuffle(x))
        z = z + self.enc_block(z)
        z = z + self.dec_block(z)
        return self.shuffle(self.expand(z))


def _residual(channels: int, width: int) -> nn.Sequential:
    block = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, channels, 3, padding=1))
    nn.init.zeros_(block[2].weight)
    nn.init.zeros_(block[2].bias)
    return block


@FAMILIES.register("autoencoder")
class Autoencoder(Family):
    name = "autoencoder"

    def __init__(self, variant: int, rng: np.random.Generator) -> None:
        super().__init__(variant, rng)
        self.params = pick(VARIANTS, variant)
        self.torch_seed = int(rng.integers(2**31))

    def forge(self, reals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(reals)).permute(0, 3, 1, 2).contiguous()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # bit-for-bit the same on every machine, and kind to a shared CPU
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.torch_seed)
                model = self._train(x, rng)
            with torch.no_grad():
                out = torch.cat([model(chunk) for chunk in x.split(128)])
        finally:
            torch.set_num_threads(threads)
        return out.permute(0, 2, 3, 1).numpy()

    def _train(self, x: torch.Tensor, rng: np.random.Generator) -> nn.Module:
        p = self.params
        f, size = p["factor"], x.shape[-1]
        crop = min(CROP, size) // f * f
        model = _TinyAE(f, p["latent"], p["width"])
        model.init_pca(x)
        opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
        for _ in range(p["steps"]):
            idx = torch.from_numpy(rng.integers(0, len(x), min(BATCH, len(x))))
            oy, ox = (rng.integers(0, size - crop + 1, 2) // f * f).tolist()
            batch = x[idx, :, oy : oy + crop, ox : ox + crop]
            loss = nn.functional.mse_loss(model(batch), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return model.eval()
