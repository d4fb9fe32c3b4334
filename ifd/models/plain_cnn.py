"""A plain BatchNorm CNN: five conv-BN-ReLU layers, no fixed filters, no residual stem.

The reference that exposed a blind spot of the default backbone: on a held-out stream of families that
`ifd synth` did not make, a plain 5-layer BatchNorm CNN trained jointly reached AA 0.957 while every
ifd strategy on `ifd_cnn_small` stayed at 0.87-0.89, because one family with a weak, low-frequency
trace stayed near AUC 0.6. `ifd_cnn_small` feeds fixed high-pass residuals next to RGB and normalises
with GroupNorm; this network sees RGB only, learns every filter, and uses BatchNorm. On the weak
low-frequency families of `ifd synth --families lowfreq` (benchmarks/backbone_probe.py, one family at a
time, 8 epochs, 2 seeds) it reached AUC 0.73-0.81 where `ifd_cnn_small` stayed at 0.55-0.57; its
BatchNorm variant reached 0.57-0.64 and its variant without the residuals 0.61-0.70: both the fixed
high-pass input and the per-image GroupNorm cost, neither alone explains the gap. It is registered
beside the default so that the benchmarks compare both on the widened stream (`--families widened`); the
default since has a low-frequency branch (ifd/models/lowfreq_branch.py).

Layout (VGG-like, Simonyan & Zisserman 2015): 3x3 conv -> BatchNorm -> ReLU, a 2x2 max-pool after each
of the first four layers, global average pooling after the fifth; ~0.76 M parameters, 256-d at any
input size. BatchNorm keeps running statistics, so under LID the frozen teacher and the student must
agree on the BN mode (the BN handling of the training step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ifd.models.registry import BACKBONES

WIDTHS = (32, 64, 128, 192, 256)


class PlainCNN(nn.Module):
    """len(widths) conv-BN-ReLU layers, max-pool 2x2 between them, global average pool -> (B, widths[-1])."""

    def __init__(self, widths: Sequence[int] = WIDTHS, in_channels: int = 3) -> None:
        super().__init__()
        if not widths:
            raise ValueError("a plain CNN needs at least one layer width")
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(widths):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = int(cin)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@BACKBONES.register("plain_cnn")
def plain_cnn(img_size: int = 64) -> PlainCNN:
    return PlainCNN(WIDTHS)
