"""Training an incremental sequence: our loop over tasks, Lightning inside one task.

Names are imported on first use, so `import ifd.train.state` (e.g. to load a model for serving) does not
pay for Lightning's import.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "IncrementalState": "ifd.train.state",
    "build_detector": "ifd.train.state",
    "train_sequence": "ifd.train.loop",
    "learn_task": "ifd.train.loop",
    "new_state": "ifd.train.loop",
    "naive_config": "ifd.train.variants",
    "predict_task": "ifd.train.evaluate",
    "evaluate_row": "ifd.train.evaluate",
    "LIDModule": "ifd.train.module",
    "TaskIncrementDataModule": "ifd.train.datamodule",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ifd.train' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
