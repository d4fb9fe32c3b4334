"""Write tuned settings into params.yaml's `train.overrides` (only on `ifd tune --write-params`).

Round-trips the file with ruamel.yaml (installed with DVC) so comments and key order survive; the
result is validated as an IfdConfig before the file is replaced, atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ifd.errors import ConfigError


def _round(v: Any) -> Any:
    return float(f"{v:.6g}") if isinstance(v, float) else v


def merged_params_text(path: Path, overrides: dict[str, Any]) -> str:
    """params.yaml's text with `overrides` merged into train.overrides."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(path.read_text()) if path.is_file() else None
    data = data if data is not None else CommentedMap()
    train = data.get("train")
    if train is None:
        train = data["train"] = CommentedMap()
    merged = CommentedMap()
    for k, v in dict(train.get("overrides") or {}).items():
        merged[k] = v
    for k, v in overrides.items():
        merged[k] = _round(v)
    train["overrides"] = merged
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def write_overrides(path: Path, overrides: dict[str, Any]) -> Path:
    """Merge `overrides` into `path`'s train.overrides; refuse (ConfigError) if the result is not a valid config."""
    import yaml as pyyaml
    from pydantic import ValidationError

    from ifd.config import IfdConfig

    path = Path(path)
    text = merged_params_text(path, overrides)
    try:
        cfg = IfdConfig.model_validate(pyyaml.safe_load(text) or {})
        cfg.lid()
    except ValidationError as exc:
        raise ConfigError(f"{path}: the tuned settings do not make a valid config ({exc})") from exc
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
