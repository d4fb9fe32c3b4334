"""Typed YAML: read a mapping from a file and validate it with a pydantic model, with errors that name
the file and the field (every config and policy file of the platform goes through here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ifd.errors import ConfigError, IfdError

M = TypeVar("M", bound=BaseModel)


def read_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    """The YAML mapping in `path` (an empty file is an empty mapping)."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a {what} is a mapping of names to values")
    return raw


def validate(model: type[M], raw: Any, where: str, error: type[IfdError] = ConfigError) -> M:
    """`model.model_validate(raw)`; the first violation becomes `error("<where>: <field>: <message>")`."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "value"
        raise error(f"{where}: {field}: {first['msg']}") from exc


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` laid on top, nested mappings merged key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
