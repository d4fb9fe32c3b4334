"""The registry of ifd's own backbones (any timm model name works without an entry here)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ifd.registry_utils import Registry

BackboneFactory = Callable[[int], nn.Module]
"""A factory takes the input image size (pixels) and returns a module mapping (B,3,S,S) -> (B,D)."""

BACKBONES: Registry[BackboneFactory] = Registry("backbone")
