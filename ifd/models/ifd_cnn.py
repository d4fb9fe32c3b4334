"""Compact residual CNNs for CPU training on small face crops (64 px).

A ResNet-style design (He et al., CVPR 2016): fixed high-pass residuals next to the RGB input
(ifd/models/highpass.py), a full-resolution 3x3 stem that keeps the high-frequency traces forgeries
leave, then stages of one down-sampling basic block each, and global average pooling to a
`num_features`-d vector. `ifd_cnn_small` (~0.9 M parameters, 192-d) is the trunk of the CPU default
(`ifd_cnn_small_lf`, ifd/models/lowfreq_branch.py, which adds a low-frequency branch); `ifd_cnn_tiny`
exists for fast tests. Both use GroupNorm: it keeps no running statistics, so they
cannot drift toward the newest task, and a frozen teacher (eval mode) computes exactly the
student's (train mode) features at the start of a task. `ifd_cnn_small_bn` is the BatchNorm
variant; `ifd_cnn_small_rgb` has no high-pass residuals (for the ablation in benchmarks/).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ifd.models.highpass import HighPassResiduals
from ifd.models.registry import BACKBONES


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual shortcut (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = _norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, cout)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), _norm(norm, cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class IfdCNN(nn.Module):
    """Stem + one stride-2 basic block per stage + global average pooling -> (B, num_features)."""

    def __init__(self, stem: int, widths: Sequence[int], norm: str = "bn", highpass: bool = True) -> None:
        super().__init__()
        if norm not in ("bn", "gn"):
            raise ValueError(f"norm must be 'bn' or 'gn', got {norm!r}")
        self.residuals: nn.Module = HighPassResiduals(3) if highpass else nn.Identity()
        cin0 = self.residuals.out_channels if highpass else 3
        self.stem = nn.Sequential(
            nn.Conv2d(cin0, stem, 3, padding=1, bias=False), _norm(norm, stem), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        cin = stem
        for cout in widths:
            blocks.append(BasicBlock(cin, cout, stride=2, norm=norm))
            cin = cout
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = cin
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.norm2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(self.residuals(x)))).flatten(1)


@BACKBONES.register("ifd_cnn_small")
def ifd_cnn_small(img_size: int = 64) -> IfdCNN:
    return IfdCNN(stem=16, widths=(32, 64, 128, 192), norm="gn")


@BACKBONES.register("ifd_cnn_small_bn")
def ifd_cnn_small_bn(img_size: int = 64) -> IfdCNN:
    return IfdCNN(stem=16, widths=(32, 64, 128, 192), norm="bn")


@BACKBONES.register("ifd_cnn_small_rgb")
def ifd_cnn_small_rgb(img_size: int = 64) -> IfdCNN:
    return IfdCNN(stem=16, widths=(32, 64, 128, 192), norm="gn", highpass=False)


@BACKBONES.register("ifd_cnn_tiny")
def ifd_cnn_tiny(img_size: int = 64) -> IfdCNN:
    return IfdCNN(stem=8, widths=(16, 32), norm="gn")
