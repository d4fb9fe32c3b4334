"""Typed configuration: defaults live in code, params.yaml holds the deltas.

Each section is a pydantic model owned by the module that uses it; this file only composes them and
reads params.yaml. Nothing here runs at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ifd.data.ingest_config import IngestConfig
from ifd.monitoring.log_location import MonitoringSection
from ifd.synth.config import SynthConfig
from ifd.typed_yaml import read_mapping, validate


class TrainSection(BaseModel):
    """Which LID preset to start from and the deltas over it (see ifd/continual/presets)."""

    model_config = ConfigDict(extra="forbid")
    preset: str = "cpu"
    overrides: dict[str, Any] = Field(default_factory=dict)


class IfdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Which workspace an `ifd.batch.landed` event is about (the retrain trigger matches it); `ifd init`
    # writes one (ifd/workspace_id.py), so clones of a workspace share it and paths never enter an event.
    workspace_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    synth: SynthConfig = Field(default_factory=SynthConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    monitoring: MonitoringSection = Field(default_factory=MonitoringSection)

    def lid(self) -> Any:
        """The detector's LIDConfig: preset + overrides."""
        from ifd.continual.config import load_lid_config

        return load_lid_config(self.train.preset, self.train.overrides)


def load_config(path: Path | None) -> IfdConfig:
    """Read params.yaml (missing file -> all defaults); a wrong key or value names itself in the error."""
    if path is None or not Path(path).is_file():
        return IfdConfig()
    return validate(IfdConfig, read_mapping(Path(path), "params file"), str(path))
