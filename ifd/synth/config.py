"""SynthConfig: what `ifd synth` writes (the `synth:` section of params.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SynthConfig(BaseModel):
    """A stream of `tasks` batches; `per_class` reals and as many fakes per batch, `size` px squares.

    `families` names the generator families in stream order; `None` takes the registered default
    order; a set name stands for its families (`default`: the six of the default order, `lowfreq`:
    the weak low-frequency three, `widened`: the six then the three; `ifd.synth.families.FAMILY_SETS`).
    Task i uses family i mod len(families): a list shorter than `tasks` is cycled, each repeat
    getting other parameters and a numbered name (`checkerboard2`); a longer one is cut after `tasks`.
    Splits are drawn by source_id with the three fractions.
    """

    model_config = ConfigDict(extra="forbid")

    tasks: int = Field(6, ge=1, le=100)
    per_class: int = Field(240, ge=3, le=100_000)
    size: int = Field(64, ge=32, le=512)
    seed: int = Field(0, ge=0)
    families: list[str] | None = None
    train_fraction: float = Field(0.7, gt=0.0, lt=1.0)
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> SynthConfig:
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8 (got {self.size})")
        total = self.train_fraction + self.val_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must sum to 1 (got {total:.3f})")
        if self.families is not None and not self.families:
            raise ValueError("families: give at least one name, or leave it out for the default order")
        return self
