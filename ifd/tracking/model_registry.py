"""The model registry of a workspace: registered model `ifd-detector`, its versions, tags and aliases.

OSS MLflow has no approval requests, so tags are the state machine (`gate`, `decision`, `reviewer`,
`decided_at`, ...) and aliases the pointers (`champion` serves, `challenger` awaits a reviewer). Every
call goes through `with_retries`. `register_version` is all or nothing: a version whose tags or alias
could not be set is deleted again.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.tracking.retry import with_retries
from ifd.tracking.store import client
from ifd.workspace import Workspace

MODEL_NAME = "ifd-detector"
CHAMPION = "champion"
CHALLENGER = "challenger"
_DESCRIPTION = "Incremental forgery detector (LID + SUR replay); one version per retrain that passed the gate."
_URI = re.compile(rf"^models:/{re.escape(MODEL_NAME)}(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


class RegistryError(IfdError):
    """A registry lookup or change that cannot be done as asked."""

    exit_code = 6


@dataclass
class VersionInfo:
    """One registered version as plain values."""

    version: str
    run_id: str | None
    source: str
    created_ms: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"models:/{MODEL_NAME}/{self.version}"

    @property
    def tasks(self) -> list[str]:
        raw = self.tags.get("tasks", "")
        return [t for t in raw.split(",") if t]


def _info(mv: Any, aliases: list[str] | None = None) -> VersionInfo:
    return VersionInfo(
        version=str(mv.version),
        run_id=mv.run_id,
        source=str(mv.source),
        created_ms=int(mv.creation_timestamp or 0),
        tags=dict(mv.tags or {}),
        aliases=sorted(aliases if aliases is not None else (mv.aliases or [])),
    )


def _missing(exc: BaseException) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _call(what: str, fn: Callable[[], Any], log: Callable[[str], None] | None = None) -> Any:
    return with_retries(fn, what, log=log)


def list_versions(ws: Workspace) -> list[VersionInfo]:
    """Every version of `ifd-detector`, oldest first, with its aliases."""
    c = client(ws)
    found = _call("list model versions", lambda: list(c.search_model_versions(f"name='{MODEL_NAME}'")))
    aliases = _aliases(ws)
    infos = [_info(mv, [a for a, v in aliases.items() if v == str(mv.version)]) for mv in found]
    return sorted(infos, key=lambda i: int(i.version))


def aliases(ws: Workspace) -> dict[str, str]:
    """alias -> version of the registered model ({} before the first version)."""
    return _aliases(ws)


def _aliases(ws: Workspace) -> dict[str, str]:
    """alias -> version of the registered model ({} before the first version)."""
    c = client(ws)

    def get() -> dict[str, str]:
        try:
            return {str(k): str(v) for k, v in (c.get_registered_model(MODEL_NAME).aliases or {}).items()}
        except Exception as exc:
            if _missing(exc):
                return {}
            raise

    return _call("read aliases", get)


def get_version(ws: Workspace, version: str | int) -> VersionInfo:
    c = client(ws)
    version = str(version).removeprefix("v")
    if not version.isdigit():
        raise RegistryError(f"{version!r} is not a version number of {MODEL_NAME}")

    def get() -> Any:
        try:
            return c.get_model_version(MODEL_NAME, version)
        except Exception as exc:
            if _missing(exc):
                raise RegistryError(f"{MODEL_NAME} has no version {version}; see `ifd registry`") from None
            raise

    return _info(_call(f"read version {version}", get))


def version_by_alias(ws: Workspace, alias: str) -> VersionInfo | None:
    """The version `alias` points at, or None."""
    target = _aliases(ws).get(alias)
    return get_version(ws, target) if target is not None else None


def resolve(ws: Workspace, ref: str) -> VersionInfo:
    """A version from `3`, `v3`, `champion`, `models:/ifd-detector/3` or `models:/ifd-detector@champion`."""
    m = _URI.match(ref)
    if m:
        ref = m.group("version") or m.group("alias")
    if ref.removeprefix("v").isdigit():
        return get_version(ws, ref)
    found = version_by_alias(ws, ref)
    if found is None:
        raise RegistryError(f"no version of {MODEL_NAME} has the alias {ref!r}; see `ifd registry`")
    return found


def set_tags(ws: Workspace, version: str, tags: dict[str, str]) -> None:
    c = client(ws)
    for key, value in tags.items():
        _call(f"tag version {version}", lambda k=key, v=value: c.set_model_version_tag(MODEL_NAME, version, k, str(v)))


def delete_tags(ws: Workspace, version: str, keys: list[str]) -> None:
    """Remove tags from a version; a tag that is not there is fine."""
    c = client(ws)

    def delete(key: str) -> None:
        try:
            c.delete_model_version_tag(MODEL_NAME, version, key)
        except Exception as exc:
            if not _missing(exc):
                raise

    for key in keys:
        _call(f"untag version {version}", lambda k=key: delete(k))


def set_alias(ws: Workspace, alias: str, version: str) -> None:
    c = client(ws)
    _call(f"set alias {alias}", lambda: c.set_registered_model_alias(MODEL_NAME, alias, str(version)))


def delete_alias(ws: Workspace, alias: str) -> None:
    c = client(ws)
    _call(f"delete alias {alias}", lambda: c.delete_registered_model_alias(MODEL_NAME, alias))


def _versions_of_run(c: Any, run_id: str) -> list[Any]:
    found = [mv for mv in c.search_model_versions(f"run_id='{run_id}'") if mv.name == MODEL_NAME]
    return sorted(found, key=lambda mv: int(mv.version))


def version_of_run(ws: Workspace, run_id: str) -> VersionInfo | None:
    """The version registered from `run_id`, if any (a retried registration finds its own version)."""
    c = client(ws)
    found = _call("find the run's version", lambda: _versions_of_run(c, run_id))
    return _info(found[0]) if found else None


def register_version(
    ws: Workspace,
    run_id: str,
    model_id: str,
    tags: dict[str, str],
    alias: str = CHALLENGER,
    log: Callable[[str], None] | None = None,
    description: str | None = None,
) -> VersionInfo:
    """Create a version from the logged model with every tag at once, then point `alias` at it.

    Idempotent per run: the run's version is looked up before (and inside every retry of) the create,
    and reused. The version is created with all its tags in one call, so none exists without them. If
    the alias cannot be set, the version is deleted again. Fault point `retrain.version_created`.
    """
    from ifd.faults import maybe_fault

    c = client(ws)
    _ensure_model(ws)

    def find_or_create() -> tuple[str, dict[str, str]]:
        # Looked up inside the retried call: a create whose answer was lost has made the version already.
        found = _versions_of_run(c, run_id)
        if found:
            return str(found[0].version), dict(found[0].tags or {})
        mv = c.create_model_version(
            MODEL_NAME, f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id, description=description
        )
        return str(mv.version), dict(tags)

    version, has = _call("create model version", find_or_create, log)
    set_tags(ws, version, {k: v for k, v in tags.items() if has.get(k) != str(v)})
    maybe_fault("retrain.version_created")
    try:
        set_alias(ws, alias, version)
    except Exception as exc:
        _undo_version(ws, version, alias, log)
        raise RegistryError(f"version {version} could not be given the alias {alias!r} and was removed again: {exc}") from exc
    return get_version(ws, version)


def _undo_version(ws: Workspace, version: str, alias: str, log: Callable[[str], None] | None) -> None:
    c = client(ws)
    try:
        _call(f"delete half-made version {version}", lambda: c.delete_model_version(MODEL_NAME, version), log)
    except Exception as exc:
        raise RegistryError(
            f"version {version} of {MODEL_NAME} has no {alias!r} alias yet and could not be deleted ({exc}); "
            "run the same retrain again to finish it, or delete the version in the MLflow UI"
        ) from exc


def _ensure_model(ws: Workspace) -> None:
    c = client(ws)

    def create() -> None:
        try:
            c.create_registered_model(MODEL_NAME, description=_DESCRIPTION)
        except Exception as exc:
            if getattr(exc, "error_code", "") not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise

    _call("create registered model", create)


def download_state(ws: Workspace, version: str, dest: Path | None = None) -> Path:
    """The version's detector state file, downloaded (once) into `dest/state.pt`; by default the workspace's
    one local copy per version, `.ifd/models/v<N>/`, shared by retrain, evaluate, serving and the monitor."""
    from ifd.tracking.fluent import using_store
    from ifd.tracking.pyfunc_model import STATE_ARTIFACT

    dest = Path(dest) if dest is not None else ws.state_dir / "models" / f"v{version}"
    target = dest / "state.pt"
    if target.is_file():
        return target
    # A private folder per download, then an atomic rename: serving, monitoring and a retrain may fetch
    # the same version at once.
    tmp = dest.with_name(f"{dest.name}.download-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)

    def fetch() -> str:
        import mlflow

        with using_store(ws):
            return mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL_NAME}/{version}", dst_path=str(tmp))

    try:
        local = Path(_call(f"download version {version}", fetch))
        found = sorted(local.rglob(f"{STATE_ARTIFACT}.pt")) or sorted(local.rglob("*.pt"))
        if not found:
            raise RegistryError(f"version {version} of {MODEL_NAME} holds no detector state (looked in {local})")
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(found[0], target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
