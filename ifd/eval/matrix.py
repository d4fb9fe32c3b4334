"""The result matrix a[t][i]: AUC and ACC on task i's test split after training task t (i <= t).

One type for every path (our detector, the Avalanche baselines, joint training), so one function turns
any run into AA / AF / BWT, tables and plots (METHOD.md §4). Rows are appended as tasks are learned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ifd.errors import IfdError


@dataclass
class ResultMatrix:
    """Lower-triangular AUC and ACC matrices; row t has t + 1 entries."""

    task_names: list[str] = field(default_factory=list)
    auc: list[list[float]] = field(default_factory=list)
    acc: list[list[float]] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.auc)

    def add_row(self, task_name: str, aucs: list[float], accs: list[float]) -> None:
        """Append the row of the task just learned; it must cover every task seen so far."""
        t = len(self.auc)
        if len(aucs) != t + 1 or len(accs) != t + 1:
            raise IfdError(f"row {t} ({task_name!r}) needs {t + 1} AUC/ACC values, got {len(aucs)}/{len(accs)}")
        self.task_names.append(task_name)
        self.auc.append([float(a) for a in aucs])
        self.acc.append([float(a) for a in accs])

    def final_row(self, metric: str = "auc") -> list[float]:
        rows = self._rows(metric)
        if not rows:
            raise IfdError("the result matrix is empty")
        return list(rows[-1])

    def _rows(self, metric: str) -> list[list[float]]:
        if metric not in ("auc", "acc"):
            raise IfdError(f"unknown metric {metric!r}; known: auc, acc")
        return self.auc if metric == "auc" else self.acc

    def rows(self, metric: str = "auc") -> list[list[float]]:
        return [list(r) for r in self._rows(metric)]

    def to_dict(self) -> dict[str, Any]:
        return {"task_names": list(self.task_names), "auc": self.rows("auc"), "acc": self.rows("acc")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultMatrix:
        m = cls()
        for name, a, c in zip(d["task_names"], d["auc"], d["acc"], strict=True):
            m.add_row(str(name), list(a), list(c))
        return m
