"""A low-frequency branch beside the high-pass CNN: coarse, position-aware image statistics.

`ifd_cnn_small` sees forgeries through fixed high-pass residuals and GroupNorm, and both discard what a
weak, smooth trace changes: an illumination field, a colour cast, a veil of haze (ifd/synth/families/
gain_field.py, colour_cast.py, haze.py). Its global average pool also throws away *where* in the image a
change sits, which is the whole signal of a trace that has a fixed spatial shape per generator. On the
widened stream it stayed at chance (AUC 0.50-0.53) on those families (benchmarks/synth9_backbones/).

The branch looks at the image on a coarse G x G grid (G = 8): per cell and colour channel the mean
intensity, its logarithm (a multiplicative gain is additive there, as in retinex-style lighting
models: Land & McCann, "Lightness and retinex theory", JOSA 1971) and the standard deviation (a veil
lowers local contrast), 9 G^2 numbers in a fixed order, so the position of each cell is kept. A
BatchNorm1d standardises them (its statistics follow the project's BatchNorm rule: learned on the first
task, frozen after, ifd/continual/batchnorm.py), and a two-layer MLP maps them to `branch_features`
values that are concatenated to the trunk's pooled features. No per-image normalisation, so a per-image
gain or cast survives. A linear probe on these statistics reached val AUC 0.81 / 0.88 / 0.72
(gain_field / colour_cast / haze, synth9 val, 240 training pairs per class) where both CNNs stayed
at 0.50-0.53 under LID.

The input is the ImageNet-normalised tensor every ifd backbone gets (ifd.data.image_dataset.to_model_input);
the branch undoes that normalisation to work on intensities in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ifd.data.image_dataset import MEAN, STD
from ifd.models.ifd_cnn import ifd_cnn_small
from ifd.models.registry import BACKBONES

GRID = 8
STATISTICS = 3  # mean, log-mean, standard deviation per cell and channel
LOG_FLOOR = 1.0 / 255  # one grey level: the log of a black cell stays finite


class LowFrequencyStatistics(nn.Module):
    """(B, 3, S, S) ImageNet-normalised -> (B, 9 * grid^2): per-cell mean, log-mean and std of each channel."""

    def __init__(self, grid: int = GRID) -> None:
        super().__init__()
        self.grid = grid
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        self.out_features = STATISTICS * 3 * grid * grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.grid or x.shape[-2] < self.grid:
            raise ValueError(f"the low-frequency branch needs images of at least {self.grid} px, got {tuple(x.shape[-2:])}")
        pixels = (x * self.std.to(x.dtype) + self.mean.to(x.dtype)).clamp(0.0, 1.0)
        mean = F.adaptive_avg_pool2d(pixels, self.grid)
        square = F.adaptive_avg_pool2d(pixels * pixels, self.grid)
        std = (square - mean * mean).clamp_min(0.0).add(1e-6).sqrt()
        stats = torch.cat([mean, torch.log(mean + LOG_FLOOR), std], dim=1)
        return stats.flatten(1)


class StatisticsNorm(nn.BatchNorm1d):
    """BatchNorm1d that also accepts a batch of one sample in train mode, normalising it with the running
    statistics (a lone sample has no batch variance). A (2D) BatchNorm over feature maps never meets this
    case; a baseline's last minibatch of an epoch (Avalanche does not drop it) can hold a single image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class LowFrequencyBranch(nn.Module):
    """Coarse statistics -> BatchNorm1d (StatisticsNorm) -> Linear-ReLU-Linear-ReLU -> (B, out_features)."""

    def __init__(self, out_features: int = 64, hidden: int = 128, grid: int = GRID) -> None:
        super().__init__()
        self.statistics = LowFrequencyStatistics(grid)
        n = self.statistics.out_features
        self.mlp = nn.Sequential(
            StatisticsNorm(n),
            nn.Linear(n, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_features),
            nn.ReLU(inplace=True),
        )
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.statistics(x))


class WithLowFrequencyBranch(nn.Module):
    """A trunk's pooled features followed by the low-frequency branch's: (B, trunk + branch)."""

    def __init__(self, trunk: nn.Module, branch: LowFrequencyBranch) -> None:
        super().__init__()
        self.trunk = trunk
        self.branch = branch
        self.num_features = int(trunk.num_features) + branch.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.trunk(x), self.branch(x)], dim=1)


@BACKBONES.register("ifd_cnn_small_lf")
def ifd_cnn_small_lf(img_size: int = 64) -> WithLowFrequencyBranch:
    return WithLowFrequencyBranch(ifd_cnn_small(img_size), LowFrequencyBranch(out_features=64))

