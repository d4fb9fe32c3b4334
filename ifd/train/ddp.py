"""Lightning DDP for one increment: `strategy: ddp`, `devices: N` trains a task on N processes (gloo, CPU).

How it runs. Lightning's default DDP launcher re-runs the command line (`sys.argv`) once per extra rank,
which re-runs a whole `pytest`, Prefect flow run or `ifd retrain` in each child. We fork instead
(`ForkDDPStrategy`: `DDPStrategy(start_method="fork")` whose workers skip inherited at-exit hooks):
`Trainer.fit` forks N workers from the calling process, each inheriting the module, the data module, the
warm image cache and the callbacks as they are; the workers train, rank 0's weights come back to the
calling process (Lightning saves them to a temporary file and loads them there), and the workers exit.
`spawn` and `forkserver` pickle the trainer with everything it holds, and fail on the first closure
("Can't pickle local object '_epoch_line.<locals>.report'"); they would also import torch again per worker.

What runs where. Inside fit, on every rank: its shard of every global batch (`shard`), the LID losses,
the gradient all-reduce. IDA, which edits head weights after a step, is computed on rank 0 and broadcast
(`broadcast_`), so the heads stay bit-identical across ranks. After fit, in the calling process only
(the workers are gone by then): replay selection (SUR), centroids, calibration, evaluation (a[t][i]),
the attribution index and the state file. Epoch checkpoints are written by rank 0 (Lightning's rule), so
the resume path (`last.ckpt`, `fit(ckpt_path=...)`) is the same with N processes as with one.

Limit: fork needs a calling process without a CUDA context, so DDP here is for the CPU (gloo); on a GPU
machine train with one device (a torchrun-style launcher is not wired in this release).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import torch
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

from ifd.errors import ConfigError

T = TypeVar("T")
START_METHOD = "fork"


class _ForkLauncher(_MultiProcessingLauncher):
    """Lightning's multiprocessing launcher whose forked workers leave with `os._exit` once rank 0's result
    is handed over. A normal exit runs the at-exit hooks inherited from the calling process, whose threads
    did not survive the fork: Prefect's log and event services then fail an assertion, the worker exits 1."""

    def _wrapping_function(self, *args: Any, **kwargs: Any) -> None:
        super()._wrapping_function(*args, **kwargs)  # an error raises before this: torch reports it as such
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class ForkDDPStrategy(DDPStrategy):
    """DDP whose workers are forked from the calling process (see the module docstring)."""

    def _configure_launcher(self) -> None:
        self._launcher = _ForkLauncher(self, start_method=START_METHOD)


def strategy_settings(cfg: Any) -> tuple[Any, int]:
    """(strategy, devices) for `pl.Trainer`: ("auto", 1), or a fork-launched gloo DDPStrategy and N."""
    strategy = str(getattr(cfg, "strategy", "auto"))
    devices = int(getattr(cfg, "devices", 1))
    if devices < 1:
        raise ConfigError(f"devices: {devices}; use 1 or more")
    if strategy == "auto":
        if devices != 1:
            raise ConfigError(f"devices: {devices} needs strategy: ddp (strategy auto trains on one device)")
        return "auto", 1
    if strategy != "ddp":
        raise ConfigError(f"strategy {strategy!r}: use auto or ddp")
    from ifd.train.trainer import uses_cuda

    if uses_cuda(cfg) or torch.cuda.is_initialized():
        raise ConfigError(
            "strategy ddp forks its workers from this process, which needs the CPU (accelerator: cpu); "
            "on a CUDA machine train with devices: 1"
        )
    # A head gets no gradient in a step whose shard holds none of its task's samples (or with weight_det 0);
    # when every parameter was used after all, torch prints one harmless warning per rank and fit.
    return (
        ForkDDPStrategy(start_method=START_METHOD, process_group_backend="gloo", find_unused_parameters=True),
        devices,
    )


def shard(batch: Sequence[T], rank: int, world: int) -> list[T]:
    """Rank `rank`'s part of one global batch: every `world`-th sample from `rank` on.

    Every rank draws the same global batches (same seed, same epoch), so N processes see exactly the batches
    one process sees, with the global batch size unchanged; striding spreads new and replay samples evenly."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside a world of {world}")
    return list(batch[rank::world])


def world_of(trainer: Any) -> tuple[int, int]:
    """(global rank, world size) of `trainer`; (0, 1) without one."""
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


@torch.no_grad()
def broadcast_(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite `tensors` on every rank with rank `src`'s values; nothing without a process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    for t in tensors:
        dist.broadcast(t.data, src=src)


def forks_workers(cfg: Any) -> bool:
    """Whether fit runs in forked DDP workers (callbacks then run there, not in the calling process)."""
    return str(getattr(cfg, "strategy", "auto")) == "ddp"
