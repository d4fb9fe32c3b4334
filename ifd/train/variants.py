"""Config-only training variants of the LID loop.

`naive`: plain fine-tuning, the lower bound every continual method is compared with (METHOD.md §5:
"fine-tune 0.726" on Protocol 1). Same backbone, one head per task, same optimiser and epochs, but no
replay, no isolation or distillation loss, no DR/LSDA and no IDA: only the detection loss on the new task.
"""

from __future__ import annotations

from typing import Any

NAIVE_DELTAS: dict[str, Any] = {
    "budget_per_task": 0,
    "replay_per_class_per_task": 0,
    "weight_iso": 0.0,
    "weight_dis": 0.0,
    "weight_det": 1.0,
    "use_ida": False,
    "use_dr": False,
    "use_lsda": False,
}


def naive_config(base: Any) -> Any:
    """`base` (a LIDConfig) turned into the fine-tuning baseline; everything else kept."""
    return type(base).model_validate({**base.model_dump(), **NAIVE_DELTAS})
