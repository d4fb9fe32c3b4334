"""The registered model's own tags (not a version's): where ifd keeps its record of champion moves
(`ifd.champion*`, ifd/lifecycle/champion.py). Every call goes through the one retry layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ifd.tracking.model_registry import MODEL_NAME
from ifd.tracking.retry import with_retries
from ifd.tracking.store import client
from ifd.workspace import Workspace


def _missing(exc: BaseException) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _call(what: str, fn: Callable[[], Any]) -> Any:
    return with_retries(fn, what)


def model_tags(ws: Workspace) -> dict[str, str]:
    """The registered model's own tags ({} before the first version); `ifd.champion*` is ifd's record of champion moves."""
    c = client(ws)

    def get() -> dict[str, str]:
        try:
            return {str(k): str(v) for k, v in (c.get_registered_model(MODEL_NAME).tags or {}).items()}
        except Exception as exc:
            if _missing(exc):
                return {}
            raise

    return _call("read the registered model's tags", get)


def set_model_tags(ws: Workspace, tags: dict[str, str]) -> None:
    c = client(ws)
    for key, value in tags.items():
        _call("tag the registered model", lambda k=key, v=value: c.set_registered_model_tag(MODEL_NAME, k, str(v)))


def delete_model_tags(ws: Workspace, keys: list[str]) -> None:
    c = client(ws)

    def delete(key: str) -> None:
        try:
            c.delete_registered_model_tag(MODEL_NAME, key)
        except Exception as exc:
            if not _missing(exc):
                raise

    for key in keys:
        _call("untag the registered model", lambda k=key: delete(k))
