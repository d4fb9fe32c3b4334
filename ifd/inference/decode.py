"""Decode the image inputs a scorer accepts into uint8 pixel tensors, with limits that name the problem.

Accepted: a path (str or Path), raw bytes (any format PIL reads), a PIL image, or an array (H, W, 3)
uint8 / float in [0, 1]. Refused with `BadImage`: undecodable or truncated data, an image larger than
`max_pixels` (decompression bombs) or smaller than `min_side`, an array of the wrong shape.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ifd.data.image_dataset import decode_image
from ifd.errors import IfdError


class BadImage(IfdError):
    """An input that is not a usable image; the message says which and why."""

    exit_code = 2


class UnsupportedImage(BadImage):
    """An image in a format the caller does not accept."""


@dataclass(frozen=True)
class DecodeLimits:
    max_pixels: int = 4096 * 4096
    min_side: int = 16
    formats: tuple[str, ...] | None = None
    """PIL format names accepted for encoded images (None: any PIL can read)."""


def _open(data: bytes, where: str, limits: DecodeLimits) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        if limits.formats is not None and img.format not in limits.formats:
            raise UnsupportedImage(f"{where}: format {img.format} is not accepted; send one of {', '.join(limits.formats)}")
        w, h = img.size
        if w * h > limits.max_pixels:
            raise BadImage(f"{where}: {w}x{h} pixels is more than the limit of {limits.max_pixels}")
        img.load()
    except BadImage:
        raise
    except Image.DecompressionBombError as exc:
        raise BadImage(f"{where}: image too large ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"{where}: not a decodable image ({exc})") from exc
    if min(img.size) < limits.min_side:
        raise BadImage(f"{where}: {img.size[0]}x{img.size[1]} is smaller than {limits.min_side} px on a side")
    return img


def to_pixels(item: Any, size: int, where: str = "image", limits: DecodeLimits | None = None) -> torch.Tensor:
    """One input as a uint8 tensor (3, size, size)."""
    limits = limits or DecodeLimits()
    if isinstance(item, str | Path):
        path = Path(item)
        if not path.is_file():
            raise BadImage(f"{where}: no file at {path}")
        return decode_image(_open(path.read_bytes(), where, limits), size)
    if isinstance(item, bytes | bytearray | memoryview):
        return decode_image(_open(bytes(item), where, limits), size)
    if isinstance(item, Image.Image):
        return decode_image(item, size)
    arr = np.asarray(item)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise BadImage(f"{where}: an array must be (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    return decode_image(Image.fromarray(arr), size)
