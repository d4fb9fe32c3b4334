"""The results.json schema of CONTRACT.md as pydantic models; `validate_results` checks a file or a dict.

Required (scripts depend on these): `stream`, `seeds`, `strategies.<name>.{AA, AF, BWT}` as
{"mean", "std"}, `matrix_auc` (lower-triangular, mean over seeds), `time_per_task_s`, `peak_rss_mb`,
`replay_bytes`; optional: `matrix_auc_video` (video-level AUC, same shape). AUC and AA are fractions
in [0, 1], AF and BWT in [-1, 1]. Extra keys are allowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ifd.errors import IfdError
from ifd.typed_yaml import validate


class Stat(BaseModel):
    mean: float
    std: float = Field(ge=0.0)


class StrategyEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    AA: Stat
    AF: Stat
    BWT: Stat
    matrix_auc: list[list[float | None]]
    matrix_auc_video: list[list[float | None]] | None = None
    """Video-level AUC a[t][i] (mean over seeds; None entries: that task's test frames share no video id)."""
    time_per_task_s: list[float]
    peak_rss_mb: float = Field(ge=0.0)
    replay_bytes: int = Field(ge=0)

    @field_validator("AA")
    @classmethod
    def _fraction(cls, v: Stat) -> Stat:
        if not 0.0 <= v.mean <= 1.0:
            raise ValueError(f"AA must be a fraction in [0, 1], got {v.mean}")
        return v

    @field_validator("AF", "BWT")
    @classmethod
    def _signed_fraction(cls, v: Stat) -> Stat:
        if not -1.0 <= v.mean <= 1.0:
            raise ValueError(f"must be a fraction in [-1, 1], got {v.mean}")
        return v

    @model_validator(mode="after")
    def _triangular(self) -> StrategyEntry:
        for key in ("matrix_auc", "matrix_auc_video"):
            for t, row in enumerate(getattr(self, key) or []):
                if len(row) != t + 1:
                    raise ValueError(f"{key} row {t} has {len(row)} entries, expected {t + 1}")
                if any(a is not None and not 0.0 <= a <= 1.0 for a in row):
                    raise ValueError(f"{key} row {t} holds a value outside [0, 1]: {row}")
        if self.matrix_auc_video is not None and len(self.matrix_auc_video) != len(self.matrix_auc):
            raise ValueError("matrix_auc_video needs one row per task, as matrix_auc")
        if len(self.time_per_task_s) != len(self.matrix_auc):
            raise ValueError("time_per_task_s needs one value per task")
        return self


class Results(BaseModel):
    model_config = ConfigDict(extra="allow")

    stream: str
    seeds: list[int]
    strategies: dict[str, StrategyEntry]


def validate_results(data: dict[str, Any] | Path) -> Results:
    """Parse results.json (a path or the loaded dict); a violation raises IfdError naming the field."""
    if isinstance(data, Path):
        try:
            data = json.loads(data.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise IfdError(f"{data}: not a readable results.json ({exc})") from exc
    return validate(Results, data, "results.json does not follow CONTRACT.md", error=IfdError)
