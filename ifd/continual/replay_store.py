"""The replay store of Sparse Uniform Replay (SUR-LID, CVPR 2025, arXiv 2411.11396, §SUR).

The official code keeps augmented image tensors of every selected sample in RAM (about 0.8 GB per task).
This store keeps, per selected sample, a reference (batch folder, relative path), its label, its pooled
feature and its stability score; images are re-read from the batch when replayed. In `features_only`
mode the references are dropped on insertion, so a deployment keeps no image (nor a path to one) of an
old task: replay then works on the stored features alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from ifd.errors import IfdError


@dataclass(frozen=True)
class ReplayEntry:
    """One stored sample of old task `task` (index) named `task_name`; label 0 = real, 1 = fake."""

    task: int
    task_name: str
    batch: str
    path: str
    label: int
    feature: torch.Tensor
    stability: float


class ReplayStore:
    """Replay entries per task, in the order the selector ranked them; state_dict-able."""

    def __init__(self, features_only: bool = False) -> None:
        self.features_only = features_only
        self._tasks: dict[int, tuple[str, list[ReplayEntry]]] = {}

    def add_task(self, task: int, task_name: str, entries: list[ReplayEntry]) -> None:
        """Store the entries of task `task` (replacing any earlier ones of that index)."""
        wrong = [e for e in entries if e.task != task or e.task_name != task_name]
        if wrong:
            raise IfdError(f"replay entries of task {wrong[0].task}/{wrong[0].task_name!r} given for task {task}/{task_name!r}")
        if self.features_only:
            entries = [replace(e, batch="", path="") for e in entries]
        self._tasks[int(task)] = (task_name, list(entries))

    def tasks(self) -> list[int]:
        return sorted(self._tasks)

    def task_name(self, task: int) -> str:
        return self._tasks[task][0]

    def entries_for(self, task: int | None = None, label: int | None = None) -> list[ReplayEntry]:
        """Entries of one task (or all, in task order), optionally of one label."""
        tasks = [task] if task is not None else self.tasks()
        out: list[ReplayEntry] = []
        for t in tasks:
            if t in self._tasks:
                out.extend(e for e in self._tasks[t][1] if label is None or e.label == label)
        return out

    def __len__(self) -> int:
        return sum(len(v[1]) for v in self._tasks.values())

    def nbytes(self) -> int:
        """Memory the store holds: features, scores, labels and the reference strings."""
        total = 0
        for e in self.entries_for():
            total += e.feature.numel() * e.feature.element_size() + 8 + 8
            total += len(e.batch.encode()) + len(e.path.encode())
        return total

    def manifest(self) -> list[dict[str, Any]]:
        """One plain row per entry (what a reviewer reads; no features)."""
        return [
            {"task": e.task, "task_name": e.task_name, "batch": e.batch, "path": e.path, "label": e.label,
             "stability": round(e.stability, 6)}
            for e in self.entries_for()
        ]

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loadable with `torch.load(weights_only=True)`)."""
        tasks = {}
        for t, (name, entries) in self._tasks.items():
            tasks[int(t)] = {
                "name": name,
                "batch": [e.batch for e in entries],
                "path": [e.path for e in entries],
                "label": torch.tensor([e.label for e in entries], dtype=torch.long),
                "stability": torch.tensor([e.stability for e in entries], dtype=torch.float64),
                "features": torch.stack([e.feature.detach().cpu() for e in entries]) if entries else torch.zeros(0),
            }
        return {"features_only": self.features_only, "tasks": tasks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.features_only = bool(state["features_only"])
        self._tasks = {}
        for t, d in state["tasks"].items():
            n = len(d["path"])
            entries = [
                ReplayEntry(
                    task=int(t), task_name=str(d["name"]), batch=str(d["batch"][i]), path=str(d["path"][i]),
                    label=int(d["label"][i]), feature=d["features"][i].clone(), stability=float(d["stability"][i]),
                )
                for i in range(n)
            ]
            self._tasks[int(t)] = (str(d["name"]), entries)
