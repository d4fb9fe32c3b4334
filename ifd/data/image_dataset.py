"""Images of a task as model inputs: decode, resize to a square, keep uint8 in RAM, normalise on read.

Every image is decoded once per size and kept as a uint8 tensor in an `ImageCache` (bounded in bytes,
`image_cache_mb` of the config; past the bound, or with 0, images are decoded on each read). A training
dataset may augment the uint8 pixels after the cache (ifd/data/augment), with a per-sample seed the
batch sampler draws: a sample key is then `(index, seed)` instead of `index`. `to_model_input` is the
one place that turns uint8 pixels into the float input of the backbone (ImageNet mean/std, as the
ImageNet backbones were trained); serving and evaluation must use it too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ifd.errors import IfdError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_CACHE_BYTES = 2 * 1024**3
Augment = Callable[[torch.Tensor, int], torch.Tensor]
SampleKey = int | tuple[int, int]


def split_key(key: SampleKey) -> tuple[int, int | None]:
    """(index, augmentation seed or None) of a dataset key."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return int(key), None


def image_cache(cfg: Any) -> ImageCache:
    """The decoded-image cache a config asks for (`image_cache_mb`, default 2 GiB)."""
    return ImageCache(max_bytes=int(getattr(cfg, "image_cache_mb", DEFAULT_CACHE_BYTES // 2**20)) * 2**20)


def decode_image(source: Path | Image.Image, size: int) -> torch.Tensor:
    """An image file (or PIL image) as a uint8 tensor (3, size, size), RGB, bilinear resize."""
    try:
        img = source if isinstance(source, Image.Image) else Image.open(source)
        img = img.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise IfdError(f"{source}: not a readable image ({exc})") from exc
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def to_model_input(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, S, S) -> float32 normalised with ImageNet mean/std."""
    x = pixels.float().div_(255.0)
    mean = torch.tensor(MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean) / std


class ImageCache:
    """Decoded uint8 images keyed by (absolute path, size), at most `max_bytes` of them.

    Past the bound the least recently used images are evicted, so the images read every epoch of the
    current task stay cached while those of earlier tasks make room (a cache that stopped growing once
    full would decode every image of every later task on each read). `max_bytes` 0 caches nothing.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], torch.Tensor] = OrderedDict()
        self._nbytes = 0

    def get(self, path: Path, size: int) -> torch.Tensor:
        key = (str(path), size)
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        pixels = decode_image(path, size)
        n = pixels.numel() * pixels.element_size()
        if n <= self.max_bytes:
            self._items[key] = pixels
            self._nbytes += n
            self.shrink(self.max_bytes)
        return pixels

    def shrink(self, max_bytes: int) -> None:
        """Evict least recently used images until at most `max_bytes` are held; the bound becomes `max_bytes`."""
        self.max_bytes = max_bytes
        while self._nbytes > max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._nbytes -= old.numel() * old.element_size()

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict[str, Any]:
        """A pickled cache travels empty, with its bound: a DataLoader worker (fork server) fills its own,
        and pickling hundreds of cached tensors would pass one file descriptor each ("too many fds")."""
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(int(state["max_bytes"]))  # type: ignore[misc]


class TaskImageDataset(Dataset):
    """Rows of one task's manifest -> dict(x, y, task, is_replay, idx); idx is the row's position in `rows`."""

    def __init__(
        self,
        root: Path,
        rows: pd.DataFrame,
        img_size: int,
        task: int,
        is_replay: bool = False,
        cache: ImageCache | None = None,
        augment: Augment | None = None,
    ) -> None:
        self.root = Path(root)
        self.paths = [self.root / p for p in rows["path"]]
        labels = rows["y"] if "y" in rows.columns else rows["label"].map({"real": 0, "fake": 1})
        self.labels = torch.tensor(np.asarray(labels, dtype=np.int64))
        self.img_size = img_size
        self.task = task
        self.is_replay = is_replay
        self.cache = cache if cache is not None else ImageCache()
        self.augment = augment

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, i: int) -> torch.Tensor:
        return self.cache.get(self.paths[i], self.img_size)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        pixels = self.pixels(i)
        if self.augment is not None and seed is not None:
            pixels = self.augment(pixels, seed)
        return {
            "x": to_model_input(pixels),
            "y": self.labels[i],
            "task": torch.tensor(self.task, dtype=torch.long),
            "is_replay": torch.tensor(self.is_replay),
            "idx": torch.tensor(i, dtype=torch.long),
        }
