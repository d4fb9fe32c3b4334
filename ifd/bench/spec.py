"""What one benchmark run is given (`RunSpec`) and what it hands back (`RunResult`), both plain JSON.

A run is one (strategy, seed) on one stream. The parent process writes the spec to a file, a fresh
worker process (`python -m ifd.bench.worker SPEC`) runs it and writes the result next to it, so the
peak RSS and the wall time of a run are its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ifd.data.tasks import TaskData

RESULT_FILE = "result.json"
SPEC_FILE = "spec.json"
LOG_FILE = "log.txt"
PRESET_PREFIX = "lid:"
Progress = Callable[[str], None]


class RunSpec(BaseModel):
    """One (strategy, seed) on a stream. `lid` is the shared LIDConfig (as a dict) every strategy reads
    its backbone, image size, epochs, batch size, optimiser and replay budget from."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    seed: int = Field(0, ge=0)
    stream: str
    tasks: int | None = Field(None, ge=1)
    lid: dict[str, Any] = Field(default_factory=dict)
    baseline_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    threads: int | None = Field(None, ge=1)
    peer_metrics: bool = False
    eval_split: Literal["test", "val"] = "test"
    """The split the matrix is measured on: "test" for the report, "val" while tuning a strategy."""
    open_set: bool = False
    """LID runs only: after each task, score the next (unseen) task with every unknown-generator score."""
    work_dir: str

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> RunSpec:
        return cls.model_validate_json(Path(path).read_text())


@dataclass
class RunResult:
    """The outcome of one run: the a[t][i] matrix (ResultMatrix.to_dict()), learn and eval seconds per
    increment, the replay memory it keeps, its peak RSS; `error` is set when it failed."""

    strategy: str
    seed: int
    matrix: dict[str, Any] | None = None
    time_per_task_s: list[float] = field(default_factory=list)
    eval_time_per_task_s: list[float] = field(default_factory=list)
    replay_samples: int = 0
    replay_bytes: int = 0
    replay_pixel_bytes: int = 0
    peak_rss_mb: float = 0.0
    wall_s: float = 0.0
    error: str | None = None
    peer: list[dict[str, Any]] | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    final_scores: list[dict[str, Any]] | None = None
    """Per task of the last row: {"y": labels, "score": raw scores} in manifest order (for bootstrap intervals)."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.matrix is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, default=float) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> RunResult:
        return cls(**json.loads(Path(path).read_text()))


@dataclass
class RunContext:
    """What a strategy's runner gets: the tasks in stream order, the shared config (seed set), a scratch
    folder, the baselines' hyperparameters, and whether to record Avalanche's own metrics too."""

    tasks: list[TaskData]
    base: Any
    seed: int
    work_dir: Path
    baseline_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    peer_metrics: bool = False
    progress: Progress = print
    eval_split: str = "test"
    open_set: bool = False
