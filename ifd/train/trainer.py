"""A fresh Lightning Trainer for one task: epoch checkpoints into one folder, no logger, quiet.

"Our loop over tasks, Lightning inside one task": every increment gets a new Trainer (and with it a new
optimizer and scheduler). The trainer writes nothing into the working directory. Accelerator and
precision come from the config (`accelerator`, `precision`: 32 / 16-mixed / bf16-mixed), and so do the
strategy and the number of processes (`strategy: ddp`, `devices: N`; ifd/train/ddp.py).
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from ifd.errors import ConfigError
from ifd.train.ddp import strategy_settings

LAST_CKPT = "last.ckpt"
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*The number of training batches .* is smaller than the logging interval.*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


def make_trainer(
    cfg: Any, ckpt_dir: Path, root_dir: Path, callbacks: Sequence[pl.Callback] = ()
) -> pl.Trainer:
    """Trainer(max_epochs=cfg.epochs) saving `ckpt_dir/last.ckpt` at the end of every epoch."""
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename=LAST_CKPT.removesuffix(".ckpt"),
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    # Bit-exact determinism on CUDA fails for some backward ops; warn there instead of raising.
    deterministic: bool | str = True if not torch.cuda.is_available() else "warn"
    accelerator, precision = device_settings(cfg)
    strategy, devices = strategy_settings(cfg)
    return pl.Trainer(
        max_epochs=int(cfg.epochs),
        accelerator=accelerator,
        precision=precision,  # type: ignore[arg-type]
        strategy=strategy,
        devices=devices,
        # under DDP the batch sampler shards every global batch itself (ifd/train/ddp.py)
        use_distributed_sampler=False,
        logger=False,
        callbacks=[checkpoint, *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=deterministic,
        default_root_dir=root_dir,
    )


def uses_cuda(cfg: Any) -> bool:
    """Whether training with `cfg.accelerator` runs on a CUDA device here."""
    return torch.cuda.is_available() and str(getattr(cfg, "accelerator", "auto")) in ("auto", "gpu", "cuda")


def device_settings(cfg: Any) -> tuple[str, str]:
    """(accelerator, precision) for Lightning; fp16 autocast on a CPU is refused with what to use instead."""
    accelerator = str(getattr(cfg, "accelerator", "auto"))
    precision = str(getattr(cfg, "precision", "32"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"accelerator {accelerator!r}: no CUDA device here; use accelerator: auto or cpu")
    if precision == "16-mixed" and not uses_cuda(cfg):
        raise ConfigError("precision 16-mixed needs a CUDA device; on the CPU use 32 or bf16-mixed")
    return accelerator, precision


def usable_checkpoint(ckpt_dir: Path) -> Path | None:
    """`ckpt_dir/last.ckpt` if it exists and is a complete archive (an interrupted write is not)."""
    path = Path(ckpt_dir) / LAST_CKPT
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return path if archive.testzip() is None else None
    except (zipfile.BadZipFile, OSError):
        return None


@contextmanager
def fit_context() -> Iterator[None]:
    """Silence Lightning's info banners and hints that do not apply to this loop, and give back the
    process-wide determinism flags that `Trainer(deterministic=...)` sets."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
