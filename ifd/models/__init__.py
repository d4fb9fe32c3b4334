"""Backbones: `create_backbone(name)` builds ifd's own CPU CNNs, named ImageNet backbones or any timm model, never downloading."""

from ifd.models.backbones import create_backbone, known_backbones, load_backbone_weights
from ifd.models.pretrained import PRETRAINED
from ifd.models.registry import BACKBONES

__all__ = ["BACKBONES", "PRETRAINED", "create_backbone", "known_backbones", "load_backbone_weights"]
