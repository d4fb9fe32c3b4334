"""Split a task's replay budget over its classes and let the selector rank each class (METHOD.md §1)."""

from __future__ import annotations

import torch

from ifd.continual.selectors.base import ReplaySelector

K = 2


def class_budgets(budget_per_task: int, classes: int = K) -> list[int]:
    """Per-class share of the task budget (the first classes take the remainder of an odd budget)."""
    base, extra = divmod(max(0, budget_per_task), classes)
    return [base + (1 if k < extra else 0) for k in range(classes)]


def select_replay(
    features: torch.Tensor,
    stability: torch.Tensor,
    labels: torch.Tensor,
    budget_per_task: int,
    selector: ReplaySelector,
    generator: torch.Generator | None = None,
) -> dict[int, torch.Tensor]:
    """{class: row indices into `features`} chosen by `selector`, at most the class's share each."""
    out: dict[int, torch.Tensor] = {}
    for k, share in enumerate(class_budgets(budget_per_task)):
        rows = (labels == k).nonzero().squeeze(1)
        if rows.numel() == 0 or share == 0:
            out[k] = torch.zeros(0, dtype=torch.long)
            continue
        local = selector.select(features[rows], stability[rows], share, generator)
        out[k] = rows[local]
    return out
