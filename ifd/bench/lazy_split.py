"""One task split as a lazy torch Dataset: (x, y) read from its file when asked, never the split in RAM.

The Avalanche baselines used to decode every split up front into float32 tensors (at 256 px a frame is
768 KiB as float32; FF++ frames by the thousand do not fit). A `LazySplit` holds the paths and labels
only; `__getitem__` decodes the file, resizes it and normalises it with `to_model_input` (the input our
detector sees). Decoded uint8 pixels may be kept in a bounded `ImageCache` (4x smaller than float32,
shared by the splits of a run, least recently used images evicted past its bound); without a cache
every read decodes the file, and `reads` counts those decodes, so a caller (or a test) sees that
reading happens on demand.
With DataLoader workers (`num_workers`), each worker process holds its own copy of the cache and of
`reads`: the cache bound then applies per worker.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ifd.data.image_dataset import ImageCache, decode_image, to_model_input
from ifd.data.tasks import TaskData


class LazySplit(Dataset):
    """Rows of one split of `task`, in manifest order: item i = (x float32 (3, S, S), y int)."""

    def __init__(self, task: TaskData, split: str, img_size: int, cache: ImageCache | None = None) -> None:
        rows = task.split(split)
        self.task_name = task.name
        self.split = split
        self.paths: list[Path] = [task.root / p for p in rows["path"]]
        self.targets: list[int] = [int(v) for v in rows["y"]]
        self.video_ids: list[str] = task.video_ids(rows)
        self.img_size = int(img_size)
        self.cache = cache
        self.reads = 0

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, i: int) -> torch.Tensor:
        """uint8 (3, S, S) of row i: through the cache when there is one, else decoded from the file."""
        if self.cache is not None:
            return self.cache.get(self.paths[i], self.img_size)
        self.reads += 1
        return decode_image(self.paths[i], self.img_size)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return to_model_input(self.pixels(int(i))), self.targets[int(i)]
