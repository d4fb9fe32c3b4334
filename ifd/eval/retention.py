"""Retention metrics over a result matrix, as pure functions (METHOD.md §4).

With a[t][i] the score on task i after training task t (i <= t) and T the last task:
- AA_t  = mean_{i <= t} a[t][i]; the headline is AA_T;
- AF_T  = mean_{i < T} (a[i][i] - a[T][i])  ("last" form, used by the papers that compare to SUR-LID);
- AF_T (Chaudhry et al., ECCV 2018) = mean_{i < T} max_{l in [i, T)} (a[l][i] - a[T][i]);
- BWT_T = mean_{i < T} (a[T][i] - a[i][i]) = -AF_T (last form).
With a single task, AF and BWT are 0 (nothing to forget).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Rows = Sequence[Sequence[float]]


def average_accuracy(rows: Rows, t: int | None = None) -> float:
    t = len(rows) - 1 if t is None else t
    return float(np.mean(rows[t][: t + 1]))


def average_forgetting(rows: Rows) -> float:
    t = len(rows) - 1
    if t < 1:
        return 0.0
    return float(np.mean([rows[i][i] - rows[t][i] for i in range(t)]))


def chaudhry_forgetting(rows: Rows) -> float:
    t = len(rows) - 1
    if t < 1:
        return 0.0
    return float(np.mean([max(rows[k][i] for k in range(i, t)) - rows[t][i] for i in range(t)]))


def backward_transfer(rows: Rows) -> float:
    return -average_forgetting(rows)


def aa_curve(rows: Rows) -> list[float]:
    """AA after each task."""
    return [average_accuracy(rows, t) for t in range(len(rows))]


def summary(rows: Rows) -> dict[str, float]:
    """AA, AF (last form), AF_chaudhry and BWT of one matrix."""
    return {
        "AA": average_accuracy(rows),
        "AF": average_forgetting(rows),
        "AF_chaudhry": chaudhry_forgetting(rows),
        "BWT": backward_transfer(rows),
    }
