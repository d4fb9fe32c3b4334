"""Where a workspace's prediction log lives: one SQLAlchemy URL, chosen in this order:

1. `IFD_PREDICTION_LOG_URL` in the environment (what each `ifd serve` replica and `ifd monitor` get
   from their deployment, so a password need not sit in params.yaml);
2. `monitoring.prediction_log_url` in the workspace's params.yaml;
3. the embedded default, the SQLite file `.ifd/monitoring/predictions.db`.

A server URL is `postgresql://user:pass@host:port/predictions` (psycopg 3 is the driver; `make postgres`
starts one, `python -m ifd.servers.postgres url predictions` prints its URL).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from ifd.errors import ConfigError
from ifd.workspace import Workspace

ENV_VAR = "IFD_PREDICTION_LOG_URL"
SUPPORTED = ("sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")


class MonitoringSection(BaseModel):
    """The `monitoring:` section of params.yaml (the monitor's thresholds are in monitoring/policy.yaml)."""

    model_config = ConfigDict(extra="forbid")
    prediction_log_url: str | None = None

    @field_validator("prediction_log_url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(SUPPORTED):
            raise ValueError(f"a prediction log URL starts with one of {', '.join(SUPPORTED)}")
        return url


def default_path(ws: Workspace) -> Path:
    return ws.state_dir / "monitoring" / "predictions.db"


def prediction_log_target(ws: Workspace) -> Path | str:
    """The URL to open (environment, then params.yaml), else the default SQLite file's path."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        if not env.startswith(SUPPORTED):
            raise ConfigError(f"{ENV_VAR}: a prediction log URL starts with one of {', '.join(SUPPORTED)}")
        return env
    from ifd.config import load_config

    configured = load_config(ws.params_path).monitoring.prediction_log_url
    return configured if configured else default_path(ws)
