"""Backbones by name: ifd's own CPU CNNs (ifd/models/ifd_cnn.py) or any timm model.

Every backbone maps images (B, 3, S, S) to pooled features (B, D) and exposes `num_features` = D.
Nothing is ever downloaded: timm models are built with `pretrained=False`, and weights come only
from a local file (`.safetensors`, or a PyTorch state dict read with `weights_only=True`; files in the
efficientnet_pytorch layout are renamed onto timm's EfficientNets). Named ImageNet backbones
(`efficientnet_lite0.imagenet`, ...; ifd/models/pretrained.py) find their file themselves.
A new backbone is a timm name (zero files) or one file that registers a factory in `BACKBONES`.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ifd.errors import IfdError, UnknownNameError
from ifd.models import (
    ifd_cnn,  # noqa: F401  (registers ifd's own backbones)
    lowfreq_branch,  # noqa: F401  (registers ifd_cnn_small_lf: the CNN with a low-frequency branch)
    plain_cnn,  # noqa: F401  (registers the plain BatchNorm CNN)
)
from ifd.models.efficientnet_weights import efficientnet_pytorch_to_timm, is_efficientnet_pytorch_layout
from ifd.models.pretrained import PRETRAINED
from ifd.models.registry import BACKBONES

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def create_backbone(
    name: str, weights: Path | None = None, img_size: int = 64, pretrained: bool = True
) -> nn.Module:
    """Build backbone `name` (ifd registry, named ImageNet backbones, then timm) and load local `weights`.

    A named ImageNet backbone loads its own file unless `weights` names another; with `pretrained`
    off it loads nothing (the caller is about to load a saved detector's weights over it).
    """
    if name in PRETRAINED:
        spec = PRETRAINED.get(name)
        inner = _create_timm(spec.timm_name, img_size)
        if pretrained:
            load_backbone_weights(inner, Path(weights) if weights is not None else spec.locate(), name)
        return TimmBackbone(inner, img_size)
    if name in BACKBONES:
        model = BACKBONES.get(name)(img_size)
        if weights is not None:
            load_backbone_weights(model, Path(weights), name)
        return model
    inner = _create_timm(name, img_size)
    if weights is not None:
        load_backbone_weights(inner, Path(weights), name)
    return TimmBackbone(inner, img_size)


class TimmBackbone(nn.Module):
    """A timm model without classifier; `num_features` is the width of what forward returns.

    timm's own `num_features` is the width before any post-pooling head (e.g. MobileNetV3's
    1x1 `conv_head`), so the output width is measured once with a dummy image.
    """

    def __init__(self, model: nn.Module, img_size: int) -> None:
        super().__init__()
        self.model = model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, img_size, img_size))
        model.train(was_training)
        self.num_features = int(out.flatten(1).shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)


def known_backbones() -> list[str]:
    """ifd's own and the named ImageNet backbones (any name from `timm.list_models()` works too)."""
    return sorted([*BACKBONES.names(), *PRETRAINED.names()])


def _create_timm(name: str, img_size: int) -> nn.Module:
    import timm

    if not timm.is_model(name):
        known = [*known_backbones(), "<any name from timm.list_models()>"]
        raise UnknownNameError("backbone", name, known)
    try:
        return timm.create_model(name, pretrained=False, num_classes=0, img_size=img_size)
    except TypeError:
        return timm.create_model(name, pretrained=False, num_classes=0)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A tensor dict from a local `.safetensors` file or a `torch.save`d state dict (weights only)."""
    if not path.is_file():
        raise IfdError(f"backbone weights {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except (SafetensorError, OSError) as exc:
            raise IfdError(f"backbone weights {path}: not a readable safetensors file ({exc})") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as exc:
        raise IfdError(
            f"backbone weights {path}: not a state dict loadable with weights_only=True ({exc})"
        ) from exc
    while isinstance(obj, Mapping) and len(obj) == 1 and next(iter(obj)) in _WRAPPER_KEYS:
        obj = next(iter(obj.values()))
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise IfdError(f"backbone weights {path}: expected a mapping of parameter names to tensors")
    return {str(k).removeprefix("module."): v for k, v in obj.items()}


def load_backbone_weights(model: nn.Module, path: Path, name: str = "backbone") -> None:
    """Load `path` into `model`; classifier weights of the source are ignored, anything else must match."""
    state = read_state_dict(path)
    if is_efficientnet_pytorch_layout(state) and hasattr(model, "conv_stem"):
        state = efficientnet_pytorch_to_timm(state, model)
    own = model.state_dict()
    if state and not any(k in own for k in state) and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    classifier = _classifier_prefixes(model)
    unexpected = [k for k in state if k not in own and not k.startswith(classifier)]
    missing = [k for k in own if k not in state]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} with another shape (e.g. {'; '.join(wrong[:3])})")
    if problems:
        raise IfdError(f"backbone weights {path} do not fit {name!r}: keys " + "; ".join(problems))
    model.load_state_dict({k: state[k] for k in own}, strict=True)


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Prefixes of the classifier keys a pretrained checkpoint may carry (timm's `pretrained_cfg`)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") or ()
    if isinstance(names, str):
        names = (names,)
    return tuple(f"{n}." for n in names) or ("\0",)
