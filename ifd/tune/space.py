"""The search space as data: LIDConfig field -> distribution (ifd/tune/space.yaml, or a file of the user's).

`suggest(trial, space)` asks the trial for every field and returns the overrides for LIDConfig;
`same_as` ties one field to another's suggested value (IDA's older heads follow the previous gamma).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ifd.errors import ConfigError

DEFAULT_SPACE = Path(__file__).with_name("space.yaml")
_KINDS = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}


def load_space(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Read and check a search space; fields must be LIDConfig fields, every entry a known type."""
    from ifd.continual.config import LIDConfig

    path = Path(path) if path is not None else DEFAULT_SPACE
    try:
        space = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable search space ({exc})") from exc
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{path}: a search space is a non-empty mapping of LIDConfig fields to distributions")
    fields = set(LIDConfig.model_fields)
    for name, dist in space.items():
        if name not in fields:
            raise ConfigError(f"{path}: {name!r} is not a LIDConfig field; known: {', '.join(sorted(fields))}")
        if not isinstance(dist, dict):
            raise ConfigError(f"{path}: {name}: expected a mapping, got {dist!r}")
        if "same_as" in dist:
            if dist["same_as"] not in space or "same_as" in space[dist["same_as"]]:
                raise ConfigError(f"{path}: {name}: same_as must name another searched field")
            continue
        kind = dist.get("type")
        if kind not in _KINDS or any(k not in dist for k in _KINDS[kind]):
            raise ConfigError(f"{path}: {name}: type must be one of {', '.join(_KINDS)} with {_KINDS.get(kind, ('low', 'high'))}")
    return space


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The LIDConfig overrides of this trial (tied fields after the ones they follow)."""
    values: dict[str, Any] = {}
    for name, d in space.items():
        if "same_as" in d:
            continue
        if d["type"] == "float":
            values[name] = trial.suggest_float(name, float(d["low"]), float(d["high"]), log=bool(d.get("log", False)))
        elif d["type"] == "int":
            values[name] = trial.suggest_int(name, int(d["low"]), int(d["high"]), step=int(d.get("step", 1)), log=bool(d.get("log", False)))
        else:
            values[name] = trial.suggest_categorical(name, list(d["choices"]))
    for name, d in space.items():
        if "same_as" in d:
            values[name] = values[d["same_as"]]
    return values


def overrides_from_params(params: dict[str, Any], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A finished trial's params back to LIDConfig overrides (tied fields filled in)."""
    values = dict(params)
    for name, d in space.items():
        if "same_as" in d and d["same_as"] in values:
            values[name] = values[d["same_as"]]
    return values
