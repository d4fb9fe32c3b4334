"""IngestConfig: how `ifd ingest` converts and validates a batch (the `ingest:` section of params.yaml).

Defaults live here; params.yaml holds the deltas. The config crosses the Prefect flow as a plain dict
(`model_dump()` -> `IngestConfig(**d)`), so every field is JSON-friendly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Label = Literal["real", "fake"]


class SplitFractions(BaseModel):
    """Shares of sources that go to train, val and test when an adapter has to draw splits itself."""

    model_config = ConfigDict(extra="forbid")

    train: float = Field(0.7, gt=0.0, lt=1.0)
    val: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.2, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must sum to 1 (got {total:.3f})")
        return self


class IngestConfig(BaseModel):
    """Conversion and validation settings of the ingest flow.

    `label_dict` maps DeepfakeBench label strings ("FF-real", "FF-DF", "CelebDFv2_fake", ...) to
    `real`/`fake` (0/1 as in DeepfakeBench's own YAML are accepted too). A label string it does not
    name falls back to a rule: a string containing "real" (any case) is real, anything else is fake.
    """

    model_config = ConfigDict(extra="forbid")

    min_size: int = Field(32, ge=1, description="smallest allowed image side in pixels")
    max_size: int = Field(
        8192, ge=1, description="largest allowed image side in pixels (read from the file's header, before decoding)"
    )
    max_file_bytes: int = Field(
        64 * 2**20, ge=1, description="largest allowed image file in bytes (checked before it is copied or read)"
    )
    lock_wait_s: float = Field(
        60.0, ge=0.0, description="how long a commit waits for another ingest's commit before it is refused as busy"
    )
    seed: int = Field(0, ge=0, description="seed of the split drawn by the folders and video adapters")
    split_fractions: SplitFractions = Field(default_factory=SplitFractions)
    frames_per_video: int = Field(8, ge=1, le=10_000, description="frames sampled evenly per video")
    face_margin: float = Field(
        0.3, ge=0.0, le=2.0, description="margin added to each side of a face box, x box side"
    )
    image_size: int = Field(256, ge=16, le=4096, description="side of the square face crops cut from videos")
    compression: str = Field(
        "c23", description="DeepfakeBench compression level to take when a JSON has several"
    )
    frames_root: str | None = Field(
        None,
        description="folder that relative DeepfakeBench frame paths start from (default: the JSON's folder)",
    )
    label_dict: dict[str, Label] = Field(default_factory=dict)
    sample_rows_in_report: int = Field(5, ge=0, le=1000, description="offending rows shown per failed check")

    @field_validator("label_dict", mode="before")
    @classmethod
    def _labels_from_ints(cls, value: object) -> object:
        if isinstance(value, dict):
            names = {0: "real", 1: "fake"}
            return {k: names.get(v, v) if isinstance(v, int) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check_sizes(self) -> IngestConfig:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) is larger than max_size ({self.max_size})")
        return self

    def label_of(self, label_string: str) -> Label:
        """`real` or `fake` for a DeepfakeBench label string: label_dict first, then the 'real' rule."""
        if label_string in self.label_dict:
            return self.label_dict[label_string]
        return "real" if "real" in label_string.lower() else "fake"
