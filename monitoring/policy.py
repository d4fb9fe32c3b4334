"""`MonitorPolicy`: the typed monitoring policy, read from monitoring/policy.yaml with a workspace override."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ifd.errors import ConfigError
from ifd.typed_yaml import deep_merge, read_mapping, validate

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftPolicy(_Strict):
    min_samples: int = Field(50, ge=2)
    psi_alert: float = Field(0.1, gt=0)
    ks_pvalue_alert: float = Field(0.001, gt=0, lt=1)
    mmd_pvalue_alert: float = Field(0.01, gt=0, lt=1)
    permutations: int = Field(500, ge=10)

    @model_validator(mode="after")
    def _reachable(self) -> DriftPolicy:
        floor = 1.0 / (self.permutations + 1)
        if self.mmd_pvalue_alert <= floor:
            raise ValueError(
                f"mmd_pvalue_alert {self.mmd_pvalue_alert} can never fire: {self.permutations} permutations "
                f"give p-values of at least {floor:.4f}; raise permutations"
            )
        return self


class ForgettingPolicy(_Strict):
    max_drop: float = Field(0.02, ge=0)


class UnknownPolicy(_Strict):
    min_images: int = Field(50, ge=1)
    min_per_class: int = Field(20, ge=2)
    max_share: float = Field(0.15, gt=0, le=1)
    pvalue_alert: float = Field(0.001, gt=0, lt=1)


class WindowPolicy(_Strict):
    max_predictions: int = Field(2000, ge=10)


class AlertPolicy(_Strict):
    webhook_url: str | None = None
    webhook_timeout_s: float = Field(5, gt=0)


class MonitorPolicy(_Strict):
    threshold: float = Field(0.5, gt=0, lt=1)
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    forgetting: ForgettingPolicy = Field(default_factory=ForgettingPolicy)
    unknown: UnknownPolicy = Field(default_factory=UnknownPolicy)
    window: WindowPolicy = Field(default_factory=WindowPolicy)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)


def load_policy(workspace_root: Path | None = None, path: Path | None = None) -> MonitorPolicy:
    """The packaged policy, then `<workspace>/monitoring/policy.yaml`, then `path` (each overriding key by key)."""
    raw = read_mapping(DEFAULT_POLICY, "monitoring policy")
    if workspace_root is not None and (Path(workspace_root) / "monitoring" / "policy.yaml").is_file():
        raw = deep_merge(raw, read_mapping(Path(workspace_root) / "monitoring" / "policy.yaml", "monitoring policy"))
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such policy file")
        raw = deep_merge(raw, read_mapping(Path(path), "monitoring policy"))
    return validate(MonitorPolicy, raw, "monitoring policy")
