"""Decode the image inputs a scorer accepts into uint8 pixel tensors, with limits that name the problem.

Accepted: a path (str or Path), raw bytes (any format PIL reads), a PIL image, or an array (H, W, 3)
uint8 / float in [0, 1]. Refused with `BadImage`: undecodable or truncated data, an image larger than
`max_pixels` (decompression bombs) or smaller than `min_side`, an array of the wrong shape.
Encoded images are judged on their header first (`read_header`: format from the magic bytes, then the
size) and decoded only when it passes, so a 50000x50000 PNG of a few kilobytes costs microseconds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

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


def sniff_format(prefix: bytes) -> str | None:
    """The PIL format whose magic bytes start `prefix` (16 bytes are enough), without parsing anything."""
    Image.init()
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        if accept is None:
            continue  # a plugin without magic bytes (it would claim anything)
        try:
            result = accept(prefix)
        except Exception:  # noqa: BLE001  (a plugin's magic check on a short or odd prefix)
            continue
        if result and not isinstance(result, str):  # a str is PIL's "recognised, but not supported here"
            return fmt
    return None


def read_header(data: bytes, where: str, limits: DecodeLimits) -> Image.Image:
    """The image opened from its header only (format and size known, no pixel decoded), every limit checked.

    The format is told from the magic bytes first, and only that format's (accepted) plugin parses the
    header, so a refused format is never parsed and an oversized image is never decoded.
    """
    fmt = sniff_format(data[:16])
    if limits.formats is not None and fmt not in limits.formats:
        if fmt is None:
            raise BadImage(f"{where}: not a decodable image (no known image format starts with {data[:8]!r})")
        raise UnsupportedImage(f"{where}: format {fmt} is not accepted; send one of {', '.join(limits.formats)}")
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt] if fmt else None)
        w, h = img.size
    except Image.DecompressionBombError as exc:
        raise BadImage(f"{where}: image too large ({exc})") from exc
    except Exception as exc:  # noqa: BLE001  (PIL's plugins raise many types on malformed headers)
        raise BadImage(f"{where}: not a decodable image ({type(exc).__name__}: {exc})") from exc
    if w * h > limits.max_pixels:
        raise BadImage(f"{where}: {w}x{h} pixels is more than the limit of {limits.max_pixels}")
    if min(w, h) < limits.min_side:
        raise BadImage(f"{where}: {w}x{h} is smaller than {limits.min_side} px on a side")
    return img


def _open(data: bytes, where: str, limits: DecodeLimits) -> Image.Image:
    """The image decoded to RGB after its header passed every limit; BadImage for anything PIL cannot do."""
    img = read_header(data, where, limits)
    try:
        img.load()
        return img.convert("RGB")
    except Image.DecompressionBombError as exc:
        raise BadImage(f"{where}: image too large ({exc})") from exc
    except Exception as exc:  # noqa: BLE001  (truncated or corrupt data fails in format-specific ways)
        raise BadImage(f"{where}: not a decodable image ({type(exc).__name__}: {exc})") from exc


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
