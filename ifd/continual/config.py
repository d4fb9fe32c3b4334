"""LIDConfig: every setting of the Latent-space Incremental Detector and its replay (SUR-LID, CVPR 2025).

Defaults follow the paper where it speaks (loss weights, optimiser, replay budget, IDA g = 0.001);
`epochs` is sized for CPU training on the synthetic stream (the paper trains 20 epochs at 256 px on a
GPU). Presets are YAML deltas over these defaults in ifd/continual/presets/<name>.yaml; ablation
variants (`lid-no-ida`, ...) are deltas too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ifd.errors import UnknownNameError
from ifd.typed_yaml import read_mapping, validate

PRESET_DIR = Path(__file__).parent / "presets"


class LIDConfig(BaseModel):
    """Settings of one LID training sequence; see METHOD.md §1-3 for what each part does."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = "ifd_cnn_small"
    backbone_weights: str | None = None
    img_size: int = Field(64, ge=16, le=1024)

    weight_iso: float = Field(1.0, ge=0.0)
    weight_dis: float = Field(1.0, ge=0.0)
    weight_det: float = Field(0.1, ge=0.0)
    temperature: float = Field(0.1, gt=0.0)
    supcon_scale_by_temperature: bool = False
    shared_real_label: bool = False

    use_dr: bool = True
    use_lsda: bool = True
    augmenter: str = "lsda"
    lsda_interp: float = Field(1.0, ge=0.0)
    lsda_extrap: float = Field(1.0, ge=0.0)
    lsda_noise: float = Field(1.0, ge=0.0)
    lsda_mixup: bool = True
    lsda_through_heads: bool = False

    use_ida: bool = True
    ida_partner: Literal["lowest_cos", "paper"] = "paper"
    ida_newest_gamma: float = Field(0.001, ge=0.0, le=1.0)
    ida_previous_gamma: float = Field(0.001, ge=0.0, le=1.0)
    ida_older_gamma: float = Field(0.001, ge=0.0, le=1.0)

    lr: float = Field(2e-4, gt=0.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    step_size: int = Field(10, ge=1)
    gamma_lr: float = Field(0.4, gt=0.0, le=1.0)
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(32, ge=2)

    replay_per_class_per_task: int = Field(3, ge=0)
    replay_per_batch: int = Field(0, ge=0)
    """0: `replay_per_class_per_task` per old (task, class) in every batch (grows with tasks, as the paper);
    > 0: that many replay samples per batch in all, spread over the old groups (flat cost per increment)."""
    selector: str = "sparse_uniform"
    budget_per_task: int = Field(500, ge=0)
    magnitude: Literal["distance", "dot_ema"] = "distance"
    ema_alpha: float = Field(0.1, gt=0.0, le=1.0)
    stability: Literal["cosine", "dot"] = "cosine"
    features_only: bool = False

    seed: int = Field(0, ge=0)

    @field_validator("augmenter")
    @classmethod
    def _known_augmenter(cls, name: str) -> str:
        from ifd.continual.augmenters import AUGMENTERS

        AUGMENTERS.get(name)
        return name

    def augmenter_name(self) -> str:
        """The latent augmenter in use: `augmenter` when LSDA is on, else "none"."""
        return self.augmenter if self.use_lsda else "none"

    def augmenter_kwargs(self) -> dict[str, Any]:
        return {
            "interp": self.lsda_interp,
            "extrap": self.lsda_extrap,
            "noise": self.lsda_noise,
            "mixup": self.lsda_mixup,
        }


VARIANTS: dict[str, dict[str, Any]] = {
    "lid": {},
    "lid-no-ida": {"use_ida": False},
    "lid-no-iso": {"weight_iso": 0.0},
    "lid-no-dr": {"use_dr": False},
    "lid-no-lsda": {"use_lsda": False},
    "lid-random-replay": {"selector": "random"},
}
"""Ablation variants of CONTRACT.md as deltas; `lid:<preset>` applies a preset instead."""


def known_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_deltas(name: str) -> dict[str, Any]:
    """The deltas of preset `name` (ifd/continual/presets/<name>.yaml)."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UnknownNameError("LID preset", name, known_presets())
    return read_mapping(path, "preset")


def _validate(values: dict[str, Any], where: str) -> LIDConfig:
    return validate(LIDConfig, values, where)


def load_lid_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> LIDConfig:
    """Defaults, then the preset's deltas, then `overrides` (a wrong key or value names itself)."""
    values = preset_deltas(preset) if preset else {}
    values.update(overrides or {})
    return _validate(values, f"LID config (preset {preset!r})")


def load_preset(name: str) -> LIDConfig:
    """The LIDConfig of preset `name` with no other overrides."""
    return load_lid_config(name, {})


def variant_config(name: str, base: LIDConfig | None = None) -> LIDConfig:
    """The config of benchmark strategy `name` ("lid", "lid-no-ida", ..., "lid:<preset>") over `base`."""
    base = base if base is not None else LIDConfig()
    if name.startswith("lid:"):
        deltas = preset_deltas(name.split(":", 1)[1])
    elif name in VARIANTS:
        deltas = VARIANTS[name]
    else:
        raise UnknownNameError("LID variant", name, [*VARIANTS, "lid:<preset>"])
    return _validate({**base.model_dump(), **deltas}, f"LID variant {name!r}")


__all__ = [
    "LIDConfig",
    "VARIANTS",
    "known_presets",
    "load_lid_config",
    "load_preset",
    "preset_deltas",
    "variant_config",
]
