"""`GatePolicy`: the thresholds of the retention gate, read from YAML (defaults in code = CONTRACT.md).

Which file: an explicit path, else `<workspace>/registry/gate.yaml` when the workspace has one, else the
`gate.yaml` shipped next to this module. A wrong key or value names itself in the error.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ifd.errors import ConfigError
from ifd.typed_yaml import read_mapping, validate

DEFAULT_POLICY_FILE = Path(__file__).with_name("gate.yaml")
WORKSPACE_POLICY = Path("registry") / "gate.yaml"


class GatePolicy(BaseModel):
    """Thresholds of the three gate rules; AUC values as fractions in [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_old_task_auc_drop: float = Field(0.02, ge=0.0, le=1.0, description="largest allowed AUC drop of any old task vs the champion")
    min_new_task_auc: float = Field(0.90, ge=0.0, le=1.0, description="smallest allowed AUC of the task just learned")
    max_aa_drop: float = Field(0.01, ge=0.0, le=1.0, description="largest allowed drop of AA below the champion's AA")


def policy_path(workspace_root: Path | None = None, path: Path | None = None) -> Path:
    """The policy file in force: `path`, else the workspace's copy, else the packaged default."""
    if path is not None:
        return Path(path)
    if workspace_root is not None and (Path(workspace_root) / WORKSPACE_POLICY).is_file():
        return Path(workspace_root) / WORKSPACE_POLICY
    return DEFAULT_POLICY_FILE


def load_policy(workspace_root: Path | None = None, path: Path | None = None) -> GatePolicy:
    """Read the gate policy (see `policy_path`); an empty file means the defaults."""
    where = policy_path(workspace_root, path)
    if not where.is_file():
        raise ConfigError(f"{where}: no gate policy file there")
    return validate(GatePolicy, read_mapping(where, "gate policy"), str(where))
