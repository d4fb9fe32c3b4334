"""The result matrix a[t][i]: AUC and ACC on task i's test split after training task t (i <= t).

One type for every path (our detector, the Avalanche baselines, joint training), so one function turns
any run into AA / AF / BWT, tables and plots (METHOD.md §4). Rows are appended as tasks are learned.

Beside frame-level AUC the matrix keeps video-level AUC (`auc_video`): frame scores averaged per video,
where the test frames of a task share video ids (`ifd.eval.video`). An entry is None where no two test
frames of that task share a video (e.g. the synthetic stream, one image per source and label): the
frame-level number is then the only one, and nothing is reported twice under two names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ifd.errors import IfdError

METRICS = ("auc", "acc")


@dataclass(frozen=True)
class MatrixRow:
    """One row of a[t][i]: frame-level AUC and ACC per seen task, video-level AUC (None: no shared videos)."""

    auc: list[float]
    acc: list[float]
    auc_video: list[float | None]


@dataclass
class ResultMatrix:
    """Lower-triangular AUC, ACC and video-level AUC matrices; row t has t + 1 entries."""

    task_names: list[str] = field(default_factory=list)
    auc: list[list[float]] = field(default_factory=list)
    acc: list[list[float]] = field(default_factory=list)
    auc_video: list[list[float | None]] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.auc)

    @property
    def has_video(self) -> bool:
        """Whether any entry holds a video-level AUC (some task's test frames share video ids)."""
        return any(a is not None for row in self.auc_video for a in row)

    def add_row(
        self, task_name: str, aucs: list[float], accs: list[float], aucs_video: list[float | None] | None = None
    ) -> None:
        """Append the row of the task just learned; it must cover every task seen so far.

        `aucs_video` None: no video-level AUC in this row (frame level only)."""
        t = len(self.auc)
        video = [None] * (t + 1) if aucs_video is None else list(aucs_video)
        if len(aucs) != t + 1 or len(accs) != t + 1 or len(video) != t + 1:
            raise IfdError(
                f"row {t} ({task_name!r}) needs {t + 1} AUC/ACC/video-AUC values, "
                f"got {len(aucs)}/{len(accs)}/{len(video)}"
            )
        self.task_names.append(task_name)
        self.auc.append([float(a) for a in aucs])
        self.acc.append([float(a) for a in accs])
        self.auc_video.append([None if a is None else float(a) for a in video])

    def add(self, task_name: str, row: MatrixRow) -> None:
        """Append a `MatrixRow` (what `ifd.eval.video.matrix_row` computes from scores)."""
        self.add_row(task_name, row.auc, row.acc, row.auc_video)

    def final_row(self, metric: str = "auc") -> list[float]:
        rows = self._rows(metric)
        if not rows:
            raise IfdError("the result matrix is empty")
        return list(rows[-1])

    def _rows(self, metric: str) -> list[list[float]]:
        if metric not in METRICS:
            raise IfdError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return self.auc if metric == "auc" else self.acc

    def rows(self, metric: str = "auc") -> list[list[float]]:
        """Rows of `auc` or `acc` (or `auc_video`, whose entries may be None)."""
        if metric == "auc_video":
            return self.video_rows()  # type: ignore[return-value]
        return [list(r) for r in self._rows(metric)]

    def video_rows(self) -> list[list[float | None]]:
        """Video-level AUC rows (None entries: that task's frames share no video id)."""
        return [list(r) for r in self.auc_video]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_names": list(self.task_names),
            "auc": self.rows("auc"),
            "acc": self.rows("acc"),
            "auc_video": self.video_rows(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultMatrix:
        """The matrix of `to_dict`; a dict written before video-level AUC existed has no `auc_video`."""
        m = cls()
        video = d.get("auc_video") or [None] * len(d["auc"])
        for name, a, c, v in zip(d["task_names"], d["auc"], d["acc"], video, strict=True):
            m.add_row(str(name), list(a), list(c), None if v is None else list(v))
        return m
