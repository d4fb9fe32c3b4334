"""LIDConfig: every setting of the Latent-space Incremental Detector and its replay (SUR-LID, CVPR 2025).

Defaults follow the paper where it speaks (loss weights, optimiser, replay budget, IDA g = 0.001);
`epochs` is sized for CPU training on the synthetic stream (the paper trains 20 epochs at 256 px on a
GPU). Presets are YAML deltas over these defaults in ifd/continual/presets/<name>.yaml (a preset may
start from another with `extends: NAME`); ablation variants (`lid-no-ida`, ...) are deltas too. Keys
listed in `fixed` (the command line's own settings) keep their value under any preset or variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ifd.errors import ConfigError, IfdError, UnknownNameError
from ifd.eval.unknown_config import UnknownScoreConfig
from ifd.typed_yaml import read_mapping, validate

PRESET_DIR = Path(__file__).parent / "presets"


class LIDConfig(BaseModel):
    """Settings of one LID training sequence; see METHOD.md §1-3 for what each part does."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = "ifd_cnn_small_lf"
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

    bn_stats: Literal["train", "freeze_after_first_task", "frozen"] = "freeze_after_first_task"
    """BatchNorm running statistics while training: `train` updates them on every task; the default
    freezes them (BN layers in eval mode, affine weights still learned) from the second task on, so the
    student computes exactly the frozen teacher's features at a task's first step and the statistics of
    old tasks do not drift toward the new one; `frozen` keeps them from task 0 (e.g. ImageNet's)."""

    augment: bool = False
    """Augment every new and replayed training image with `augmentations` (never evaluation images)."""
    augmentations: dict[str, dict[str, Any]] = Field(default_factory=lambda: _default_augmentations())
    """Registered image transforms (ifd/data/augment) in the order applied, each with its keyword arguments."""

    num_workers: int = Field(0, ge=0)
    """DataLoader worker processes for the training data (0: load in the training process)."""
    pin_memory: bool = True
    """Pin host memory of training batches when training on CUDA (ignored on the CPU)."""
    persistent_workers: bool = True
    """Keep the workers (and the decoded images they cached) alive between epochs of a task."""
    image_cache_mb: int = Field(2048, ge=0)
    """Decoded images kept in RAM (uint8, per size) for the sequence; 0 decodes every read."""
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "32"
    """Lightning precision of training; `16-mixed` needs CUDA, evaluation always runs in float32."""
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    strategy: Literal["auto", "ddp"] = "auto"
    """`ddp`: each increment trains on `devices` processes, Lightning DDP (gloo, CPU; ifd/train/ddp.py)."""
    devices: int = Field(1, ge=1)
    """Processes one increment trains on; more than 1 needs `strategy: ddp`."""

    fixed: list[str] = Field(default_factory=list)
    """Keys a preset or variant applied on top of this config may not change (the command line's own)."""

    unknown: UnknownScoreConfig = Field(default_factory=UnknownScoreConfig)
    """The unknown-generator score kept with the detector and its threshold (ifd/eval/unknown)."""

    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _devices_need_ddp(self) -> LIDConfig:
        if self.devices > 1 and self.strategy != "ddp":
            raise ValueError(f"devices: {self.devices} needs strategy: ddp")
        return self

    @model_serializer(mode="wrap")
    def _omit_default_placement(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Keys that change no a[t][i] (where training runs, the unknown-generator score) stay out of every
        # dump at their defaults, so configs, state files and benchmark specs written before they existed
        # compare equal (and `ifd bench --out` still reuses those runs, ifd/bench/campaign.py).
        data = handler(self)
        for key, default in _RESULT_NEUTRAL_DEFAULTS.items():
            if data.get(key) == default:
                data.pop(key)
        return data

    @field_validator("augmentations")
    @classmethod
    def _known_augmentations(cls, spec: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from ifd.data.augment import build_augment

        try:
            build_augment(spec)
        except IfdError as exc:  # as a validation error, so the message names the config and the field
            raise ValueError(str(exc)) from None
        return spec

    @field_validator("fixed")
    @classmethod
    def _known_fields(cls, keys: list[str]) -> list[str]:
        unknown = sorted(set(keys) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}")
        return sorted(set(keys))

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


_RESULT_NEUTRAL_DEFAULTS: dict[str, Any] = {"strategy": "auto", "devices": 1, "unknown": UnknownScoreConfig().model_dump()}


def _default_augmentations() -> dict[str, dict[str, Any]]:
    from ifd.data.augment import DEFAULT_AUGMENTATIONS

    return {k: dict(v) for k, v in DEFAULT_AUGMENTATIONS.items()}


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


def preset_deltas(name: str, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The deltas of preset `name` (ifd/continual/presets/<name>.yaml), over those of the preset it `extends`."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UnknownNameError("LID preset", name, known_presets())
    if name in _chain:
        raise ConfigError(f"preset {name!r} extends itself through {' -> '.join(_chain)}")
    deltas = read_mapping(path, "preset")
    parent = deltas.pop("extends", None)
    if parent is None:
        return deltas
    return {**preset_deltas(str(parent), (*_chain, name)), **deltas}


def _validate(values: dict[str, Any], where: str) -> LIDConfig:
    return validate(LIDConfig, values, where)


def load_lid_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> LIDConfig:
    """Defaults, then the preset's deltas, then `overrides` (a wrong key or value names itself)."""
    values = preset_deltas(preset) if preset else {}
    values.update(overrides or {})
    return _validate(values, f"LID config (preset {preset!r})")


def apply_deltas(base: LIDConfig, deltas: dict[str, Any], where: str) -> LIDConfig:
    """`base` with `deltas` on top, except the keys `base.fixed` holds (they keep base's value)."""
    kept = {k: v for k, v in deltas.items() if k not in base.fixed}
    return _validate({**base.model_dump(), **kept}, where)


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
    return apply_deltas(base, deltas, f"LID variant {name!r}")


__all__ = [
    "LIDConfig",
    "VARIANTS",
    "apply_deltas",
    "known_presets",
    "load_lid_config",
    "load_preset",
    "preset_deltas",
    "variant_config",
]
