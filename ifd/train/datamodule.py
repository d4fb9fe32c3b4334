"""The data of one increment: the new task's train split plus replay from every old task (SUR-LID, CVPR 2025).

Each batch holds `batch_size` new samples and, for every old task, `replay_per_class_per_task` real and as
many fake replay samples (the official code uses 3 + 3). With `replay_per_batch` > 0 the batch instead
holds that fixed number of replay samples, spread evenly over the old (task, class) groups (the remainder
going to groups drawn at random), so the cost of an increment stays flat as tasks accumulate. Replay images are re-read from the (batch, path)
references of the replay store. In features-only mode the store keeps no image references worth reading:
replay samples then enter the batch as stored features (`replay_features`, `replay_y`, `replay_task`).

The order of every epoch depends only on (seed, epoch), so a run resumed from an epoch checkpoint sees
the same batches as an uninterrupted one. With `augment` on, new and replayed images are augmented
(ifd/data/augment) with a seed the sampler draws per sample from a second generator seeded by
(seed, epoch): resumed runs augment identically, and the batches are the same with augmentation on or
off. Loading: `num_workers` worker processes (persistent across the task's epochs with
`persistent_workers`, each keeping its own warm decoded-image cache with 1/num_workers of the budget),
pinned memory when the batches go to a CUDA device.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ifd.data.image_dataset import Augment, ImageCache, SampleKey, TaskImageDataset, split_key, to_model_input
from ifd.data.tasks import TaskData
from ifd.train.ddp import shard, world_of


class ReplayDataset(Dataset):
    """Replay entries as samples: re-read images, or (features-only) the stored features."""

    def __init__(
        self,
        entries: list[Any],
        roots: Mapping[str, Path],
        img_size: int,
        features_only: bool,
        cache: ImageCache,
        augment: Augment | None = None,
    ) -> None:
        self.entries = entries
        self.roots = dict(roots)
        self.img_size = img_size
        self.features_only = features_only
        self.cache = cache
        self.augment = augment

    def __len__(self) -> int:
        return len(self.entries)

    def image_path(self, entry: Any) -> Path:
        root = self.roots.get(entry.task_name, Path(entry.batch))
        return Path(root) / entry.path

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        e = self.entries[i]
        item = {
            "y": torch.tensor(int(e.label), dtype=torch.long),
            "task": torch.tensor(int(e.task), dtype=torch.long),
        }
        if self.features_only:
            item["feature"] = e.feature.detach().float()
        else:
            pixels = self.cache.get(self.image_path(e), self.img_size)
            if self.augment is not None and seed is not None:
                pixels = self.augment(pixels, seed)
            item["x"] = to_model_input(pixels)
            item["is_replay"] = torch.tensor(True)
            item["idx"] = torch.tensor(-1, dtype=torch.long)
        return item


class IncrementDataset(Dataset):
    """New-task samples at [0, n_new), replay samples after them."""

    def __init__(self, new: TaskImageDataset, replay: ReplayDataset | None) -> None:
        self.new = new
        self.replay = replay

    def __len__(self) -> int:
        return len(self.new) + (len(self.replay) if self.replay is not None else 0)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        i, seed = split_key(key)
        if i < len(self.new):
            return self.new[i if seed is None else (i, seed)]
        assert self.replay is not None
        j = i - len(self.new)
        return self.replay[j if seed is None else (j, seed)]


class _EpochClock:
    """Holds the epoch; Lightning calls `set_epoch` on `batch_sampler.sampler` before each epoch."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


class ReplayBatchSampler(Sampler[list[SampleKey]]):
    """Shuffled new-sample batches, each topped up with `per_group` samples of every replay group, or
    with `total` replay samples spread evenly over the groups when `total` > 0. With `augment_seeds`,
    every index comes as `(index, seed)`: the seed of that sample's augmentation.

    A group is one (old task, class); its indices are offsets into `IncrementDataset`. Batches with
    fewer than 2 images are dropped (batch norm and contrastive losses need pairs).
    """

    def __init__(
        self,
        n_new: int,
        groups: list[torch.Tensor],
        batch_size: int,
        per_group: int,
        seed: int,
        replay_has_images: bool = True,
        total: int = 0,
        augment_seeds: bool = False,
    ) -> None:
        self.n_new = n_new
        self.augment_seeds = augment_seeds
        self.total = total
        self.replay_has_images = replay_has_images
        self.groups = [g for g in groups if len(g) > 0]
        self.batch_size = batch_size
        self.per_group = per_group
        self.seed = seed
        self.sampler = _EpochClock()
        self.rank, self.world = 0, 1

    def shard_for(self, rank: int, world: int) -> None:
        """Yield only rank `rank`'s share of every batch of `world` DDP ranks (ifd/train/ddp.py); every rank
        draws the same global batches, and every global batch has at least 2 samples per rank."""
        self.rank, self.world = rank, world

    def _chunks(self) -> list[int]:
        sizes = [min(self.batch_size, self.n_new - s) for s in range(0, self.n_new, self.batch_size)]
        if not self.replay_has_images or not self.groups:
            n_replay = 0
        elif self.total > 0:
            n_replay = min(self.total, sum(len(g) for g in self.groups))
        else:
            n_replay = sum(min(self.per_group, len(g)) for g in self.groups)
        return [s for s in sizes if s + n_replay >= 2 * self.world]

    def __len__(self) -> int:
        return len(self._chunks())

    def __iter__(self) -> Iterator[list[SampleKey]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.sampler.epoch)
        # augmentation seeds from a generator of their own: the batches are the same with augmentation off or on
        aug_gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.sampler.epoch + 7_919)
        order = torch.randperm(self.n_new, generator=gen).tolist()
        start = 0
        for size in self._chunks():
            batch = order[start : start + size]
            start += self.batch_size
            for g, k in zip(self.groups, self._per_group_counts(gen), strict=True):
                pick = torch.randperm(len(g), generator=gen)[: min(k, len(g))]
                batch.extend(g[pick].tolist())
            keys: list[SampleKey] = list(batch)
            if self.augment_seeds:
                seeds = torch.randint(0, 2**31 - 1, (len(batch),), generator=aug_gen).tolist()
                keys = list(zip(batch, seeds, strict=True))
            yield keys if self.world == 1 else shard(keys, self.rank, self.world)

    def _per_group_counts(self, gen: torch.Generator) -> list[int]:
        if self.total <= 0 or not self.groups:
            return [self.per_group] * len(self.groups)
        base, extra = divmod(self.total, len(self.groups))
        counts = [base] * len(self.groups)
        for i in torch.randperm(len(self.groups), generator=gen)[:extra].tolist():
            counts[i] += 1
        return counts


def collate_increment(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack image samples into x/y/task/is_replay/idx; feature-only replay into replay_features/_y/_task."""
    images = [it for it in items if "x" in it]
    feats = [it for it in items if "feature" in it]
    batch = {k: torch.stack([it[k] for it in images]) for k in ("x", "y", "task", "is_replay", "idx")}
    if feats:
        batch["replay_features"] = torch.stack([it["feature"] for it in feats])
        batch["replay_y"] = torch.stack([it["y"] for it in feats])
        batch["replay_task"] = torch.stack([it["task"] for it in feats])
    return batch


class TaskIncrementDataModule(pl.LightningDataModule):
    """Train data of increment `task_index`: `task`'s train split plus replay from `store`."""

    def __init__(
        self,
        task: TaskData,
        task_index: int,
        cfg: Any,
        store: Any | None = None,
        roots: Mapping[str, Path] | None = None,
        cache: ImageCache | None = None,
        seed: int = 0,
        num_workers: int | None = None,
    ) -> None:
        super().__init__()
        self.task = task
        self.task_index = task_index
        self.cfg = cfg
        self.store = store
        self.roots = dict(roots or {})
        self.cache = cache if cache is not None else ImageCache()
        self.seed = seed
        self.num_workers = int(getattr(cfg, "num_workers", 0)) if num_workers is None else num_workers
        self.augment = _augment(cfg)
        self.dataset: IncrementDataset | None = None
        self.batch_sampler: ReplayBatchSampler | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        new = TaskImageDataset(
            self.task.root,
            self.task.split("train"),
            self.cfg.img_size,
            self.task_index,
            cache=self.cache,
            augment=self.augment,
        )
        entries, groups = self._replay_groups(offset=len(new))
        replay = None
        if entries:
            replay = ReplayDataset(
                entries, self.roots, self.cfg.img_size, bool(self.cfg.features_only), self.cache, self.augment
            )
        self.dataset = IncrementDataset(new, replay)
        self.batch_sampler = ReplayBatchSampler(
            len(new),
            groups,
            int(self.cfg.batch_size),
            int(self.cfg.replay_per_class_per_task),
            self.seed,
            replay_has_images=not bool(self.cfg.features_only),
            total=int(getattr(self.cfg, "replay_per_batch", 0)),
            augment_seeds=self.augment is not None,
        )

    def _replay_groups(self, offset: int) -> tuple[list[Any], list[torch.Tensor]]:
        """All replay entries of old tasks, and their indices grouped by (task, class)."""
        entries: list[Any] = []
        groups: list[torch.Tensor] = []
        if self.store is None or int(self.cfg.replay_per_class_per_task) <= 0:
            return entries, groups
        for old in sorted(self.store.tasks()):
            if old >= self.task_index:
                continue
            for label in (0, 1):
                chosen = list(self.store.entries_for(task=old, label=label))
                start = offset + len(entries)
                groups.append(torch.arange(start, start + len(chosen)))
                entries.extend(chosen)
        return entries, groups

    def train_dataloader(self) -> DataLoader:
        from ifd.train.trainer import uses_cuda

        self.setup("fit")
        assert self.batch_sampler is not None
        self.batch_sampler.shard_for(*world_of(self.trainer))
        workers = self.num_workers
        return DataLoader(
            self.dataset,
            batch_sampler=self.batch_sampler,
            collate_fn=collate_increment,
            num_workers=workers,
            pin_memory=bool(getattr(self.cfg, "pin_memory", True)) and uses_cuda(self.cfg),
            persistent_workers=workers > 0 and bool(getattr(self.cfg, "persistent_workers", True)),
            worker_init_fn=_share_cache_budget if workers > 0 else None,
            # forked workers inherit the threads of whatever runs the training (a Prefect flow run's log and
            # event workers, a server's loop) and die with them; a fork server starts them from a clean process
            multiprocessing_context="forkserver" if workers > 0 else None,
        )

    def n_replay(self) -> int:
        self.setup("fit")
        assert self.dataset is not None
        return len(self.dataset) - len(self.dataset.new)


def _share_cache_budget(worker_id: int) -> None:
    """In a worker: its copy of the image cache gets 1/num_workers of the budget (the workers together
    then hold at most `image_cache_mb`, however the shuffled batches spread the images over them)."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    if info is None:
        return
    cache = info.dataset.new.cache
    cache.shrink(cache.max_bytes // max(1, info.num_workers))


def _augment(cfg: Any) -> Augment | None:
    """The training augmentation of `cfg` (None when `augment` is off)."""
    if not getattr(cfg, "augment", False):
        return None
    from ifd.data.augment import build_augment

    return build_augment(cfg.augmentations)
