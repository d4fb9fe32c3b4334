"""Images of a task as model inputs: decode, resize to a square, keep uint8 in RAM, normalise on read.

Every image is decoded once per size and kept as a uint8 tensor in an `ImageCache` (bounded in bytes;
past the bound images are decoded on each read). `to_model_input` is the one place that turns uint8
pixels into the float input of the backbone (ImageNet mean/std, so local timm weights fit); serving
and evaluation must use it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ifd.errors import IfdError

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEFAULT_CACHE_BYTES = 2 * 1024**3


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
    """Decoded uint8 images keyed by (absolute path, size); stops growing at `max_bytes`."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: dict[tuple[str, int], torch.Tensor] = {}
        self._nbytes = 0

    def get(self, path: Path, size: int) -> torch.Tensor:
        key = (str(path), size)
        hit = self._items.get(key)
        if hit is not None:
            return hit
        pixels = decode_image(path, size)
        n = pixels.numel() * pixels.element_size()
        if self._nbytes + n <= self.max_bytes:
            self._items[key] = pixels
            self._nbytes += n
        return pixels

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._items)


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
    ) -> None:
        self.root = Path(root)
        self.paths = [self.root / p for p in rows["path"]]
        labels = rows["y"] if "y" in rows.columns else rows["label"].map({"real": 0, "fake": 1})
        self.labels = torch.tensor(np.asarray(labels, dtype=np.int64))
        self.img_size = img_size
        self.task = task
        self.is_replay = is_replay
        self.cache = cache if cache is not None else ImageCache()

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, i: int) -> torch.Tensor:
        return self.cache.get(self.paths[i], self.img_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "x": to_model_input(self.pixels(i)),
            "y": self.labels[i],
            "task": torch.tensor(self.task, dtype=torch.long),
            "is_replay": torch.tensor(self.is_replay),
            "idx": torch.tensor(i, dtype=torch.long),
        }
