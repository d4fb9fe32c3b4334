"""BatchNorm during an increment: the student's statistics are frozen on purpose from the second task on.

Feature distillation (L_dis) compares the student with a frozen copy of the model taken at the start of
the task. The teacher runs in eval mode (running statistics); a student in train mode normalises with
the statistics of the current batch instead, so with a BatchNorm backbone the two differ at the very
first step (L_dis > 0 before anything was learned) and, step by step, the running statistics move to
the new task's images while the old heads were fitted on the old ones.

Decision: from task 1 on (`bn_stats: freeze_after_first_task`, the default) every BatchNorm layer of
the student runs in eval mode: it normalises with the running statistics it had at the task's start,
exactly as the teacher does, and never updates them; the affine weights are still learned. Task 0 adapts
the statistics (from scratch or from ImageNet's) to forgery data once. `frozen` keeps them from task 0
(a pretrained backbone's ImageNet statistics, useful with small batches); `train` is the common
behaviour, kept for comparison. Backbones without BatchNorm (ifd's GroupNorm CNNs) are unaffected.
The other choice (teacher and student both in train mode) would make L_dis zero at step 0 only when
both see the same batch, and would still let the statistics drift; we did not take it.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def freeze_statistics(bn_stats: str, task_index: int) -> bool:
    """Whether the student's BatchNorm statistics stay fixed while learning task `task_index`."""
    if bn_stats == "train":
        return False
    if bn_stats == "frozen":
        return True
    if bn_stats == "freeze_after_first_task":
        return task_index > 0
    raise ValueError(f"unknown bn_stats {bn_stats!r}")


def hold_statistics(model: nn.Module) -> int:
    """Put every BatchNorm layer of `model` (in train mode otherwise) in eval mode; returns how many."""
    layers = batchnorm_layers(model)
    for layer in layers:
        layer.eval()
    return len(layers)
