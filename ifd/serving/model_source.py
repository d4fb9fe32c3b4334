"""Where the scoring API gets its models: the registry's `champion` (answers) and `challenger` (shadow).

The registry is polled off the request path: a background thread (`start()`) looks the aliases up every
`poll_s` seconds and, when one moved, loads the new version completely (state downloaded once into
`.ifd/models/v<N>`, detector rebuilt, one smoke batch scored to finite numbers) before swapping it in with
one assignment. A request only reads the current reference, so it never waits for the registry and
always sees one whole model.

When the tracking server is unreachable the API keeps answering with the last good champion; `health()`
(and so `/healthz`) says the registry has not answered for N seconds and calls the model stale after
`stale_after_s`, and `metrics_text()` exports the same on `/metrics`. A version that fails to load (a
corrupt or incompatible state, a model that scores NaN) is skipped: an alert (`model_load_failed`) goes
out through `ifd.monitoring.alerts` (JSON log line, the policy's webhook when set), the previous model
keeps serving, and that version is not tried again by this process. The last champion that loaded is
remembered in `.ifd/serving/champion.json`, so a server (re)started while the tracking server is down
serves it from the local copy.

`poll_s == 0` checks the registry on every call instead (tests; a failed check still keeps the last model).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace

LOG = logging.getLogger("ifd.serving")
ALIASES = ("champion", "challenger")


class NoChampion(IfdError):
    exit_code = 5


@dataclass
class Loaded:
    version: str
    scorer: Any


class ModelSource:
    def __init__(
        self,
        ws: Workspace,
        threshold: float = 0.5,
        poll_s: float = 5.0,
        stale_after_s: float | None = None,
        webhook_url: str | None = None,
        webhook_timeout_s: float = 5.0,
        runtime: str = "auto",
    ) -> None:
        self.ws = ws
        self.runtime = runtime  # onnx | eager | auto (ifd/inference/onnx_runtime.py: attach_runtime)
        self.threshold = threshold
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s if stale_after_s is not None else max(3 * poll_s, 15.0)
        self.webhook_url = webhook_url
        self.webhook_timeout_s = webhook_timeout_s
        self._lock = threading.Lock()  # one registry check at a time; requests never take it in poll mode
        self._checked = float("-inf")
        self._last_ok: float | None = None
        self._error: str | None = None
        self._models: dict[str, Loaded | None] = {alias: None for alias in ALIASES}
        self._targets: dict[str, str | None] = {alias: None for alias in ALIASES}
        self._cache: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}
        self.from_local_copy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.metrics = _SourceMetrics(self)

    # ---- loading -------------------------------------------------------------------------------
    def _load(self, version: str) -> Any:
        """A scorer for `version`, complete and checked, or an exception; never a half-made one."""
        if version not in self._cache:
            import numpy as np
            import torch

            from ifd.inference.onnx_runtime import attach_runtime
            from ifd.inference.scorer import DetectorScorer
            from ifd.tracking import model_registry as reg
            from ifd.tracking.runtime_artifact import fetch_onnx
            from ifd.train.state import IncrementalState

            path = reg.download_state(self.ws, version)
            scorer = DetectorScorer(IncrementalState.load(path), threshold=self.threshold)
            if self.runtime != "eager":  # the version's ONNX graph if it passes parity, else eager (logged)
                attach_runtime(scorer, fetch_onnx(self.ws, version, path.parent), self.runtime, version)
            probe = scorer.score_pixels(torch.full((2, 3, scorer.img_size, scorer.img_size), 127, dtype=torch.uint8))
            if not np.isfinite(probe.p_fake).all():
                raise IfdError(f"version {version} scores a plain grey image as {probe.p_fake.tolist()}: not a usable model")
            self._cache = {version: scorer, **self._cache}
            for old in list(self._cache)[3:]:  # keep the last few versions (a rollback is then instant)
                self._cache.pop(old)
        return self._cache[version]

    def _follow(self, alias: str, version: str | None) -> None:
        """Serve `version` for `alias` if it loads; keep what served before if it does not."""
        from ifd.tracking.retry import TrackingUnavailable

        self._targets[alias] = version
        current = self._models[alias]
        if version is None:
            self._models[alias] = None
            return
        if (current is not None and current.version == version) or version in self.skipped:
            return
        try:
            loaded = Loaded(version, self._load(version))
        except TrackingUnavailable:
            raise  # the registry went away mid-check: try again next time, nothing is wrong with the version
        except Exception as exc:  # noqa: BLE001  (any failure to load means: do not serve it)
            self._skip(alias, version, exc, current)
            return
        self._models[alias] = loaded  # one assignment: a request sees the old model or the new one
        if alias == "champion":
            self._remember(version)
            self.from_local_copy = False

    def _skip(self, alias: str, version: str, exc: BaseException, current: Loaded | None) -> None:
        from ifd.monitoring.alerts import Alert, log_alert, post_webhook

        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
        self.skipped[version] = reason
        self.metrics.load_failures.labels(version=version).inc()
        serving = current.version if current else "nothing"
        alert = Alert(
            kind="model_load_failed",
            message=f"version {version} ({alias}) failed to load and is skipped ({reason}); still serving {serving}",
            value=1.0, threshold=0.0, version=version,
            action=f"inspect version {version}; `ifd rollback` or point {alias} at a version that loads, then restart `ifd serve` to retry it",
        )
        log_alert(alert)
        if self.webhook_url:
            post_webhook(self.webhook_url, [alert], self.webhook_timeout_s)

    # ---- the last champion that loaded, for a restart while the registry is down ----------------
    def _memory(self) -> Any:
        return self.ws.state_dir / "serving" / "champion.json"

    def _remember(self, version: str) -> None:
        path = self._memory()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": version, "at": time.time()}))
        os.replace(tmp, path)

    def _from_memory(self) -> None:
        """With no champion loaded and no registry: the remembered version, if its local copy loads."""
        try:
            version = str(json.loads(self._memory().read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if not (self.ws.state_dir / "models" / f"v{version}" / "state.pt").is_file():
            return
        try:
            self._models["champion"] = Loaded(version, self._load(version))
        except Exception as exc:  # noqa: BLE001
            LOG.error("the remembered champion, version %s, did not load from its local copy: %s", version, exc)
            return
        self.from_local_copy = True
        LOG.warning("registry unreachable: serving the last champion, version %s, from its local copy", version)

    # ---- checking the registry -----------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Look the aliases up now (if `poll_s` passed, or `force`) and follow them; False when the
        registry could not be read (what served before keeps serving)."""
        from ifd.tracking import model_registry as reg

        with self._lock:
            if not force and time.monotonic() - self._checked < self.poll_s:
                return self._error is None
            self._checked = time.monotonic()
            try:
                targets = {alias: reg.version_by_alias(self.ws, alias) for alias in ALIASES}
                for alias, info in targets.items():
                    self._follow(alias, info.version if info is not None else None)
            except Exception as exc:  # noqa: BLE001  (TrackingUnavailable, or whatever the client raised)
                self._error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
                self.metrics.check_failures.inc()
                LOG.warning("registry check failed, serving what was loaded before: %s", self._error)
                if self._models["champion"] is None:
                    self._from_memory()
                return False
            self._last_ok, self._error = time.monotonic(), None
            champ = self._models["champion"]
            if champ is not None and self._targets["champion"] == champ.version:
                self.from_local_copy = False  # the registry confirms what the local copy served
            return True

    def start(self) -> None:
        """Check the registry every `poll_s` seconds in a daemon thread (no-op for poll_s == 0 or when running)."""
        if self.poll_s <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="ifd-registry-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.refresh(force=True)
            except Exception:  # noqa: BLE001  (the thread must outlive any one bad check)
                LOG.exception("registry check crashed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- what requests see ---------------------------------------------------------------------
    def _current(self) -> dict[str, Loaded | None]:
        if self.poll_s <= 0:
            self.refresh()
        elif self._thread is None:
            self.start()
        return self._models

    def champion(self) -> Loaded:
        found = self._current()["champion"]
        if found is None:
            raise NoChampion("no version has the alias 'champion' yet: approve one with `ifd approve VERSION`")
        return found

    def challenger(self) -> Loaded | None:
        models = self._current()
        found, champ = models["challenger"], models["champion"]
        return found if found is not None and (champ is None or found.version != champ.version) else None

    def seconds_since_ok(self) -> float | None:
        return None if self._last_ok is None else time.monotonic() - self._last_ok

    def stale(self) -> bool:
        age = self.seconds_since_ok()
        return age is None or age > self.stale_after_s

    def health(self) -> dict[str, Any]:
        """The registry's state as the API sees it (for /healthz)."""
        age = self.seconds_since_ok()
        champ, chall = self._models["champion"], self._models["challenger"]
        return {
            "status": "stale" if self.stale() else "ok",
            "champion": champ.version if champ else None,
            "challenger": chall.version if chall and (champ is None or chall.version != champ.version) else None,
            "registry": {
                "reachable": self._error is None and self._last_ok is not None,
                "seconds_since_ok": None if age is None else round(age, 1),
                "stale_after_s": self.stale_after_s,
                "error": self._error,
                "aliases": dict(self._targets),
            },
            "champion_from_local_copy": self.from_local_copy,
            "skipped_versions": dict(self.skipped),
        }

    def metrics_text(self) -> bytes:
        return self.metrics.render()


class _SourceMetrics:
    """Prometheus series of the model source, in a registry of its own."""

    def __init__(self, source: ModelSource) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        Gauge("ifd_registry_up", "1 when the last registry check succeeded", registry=self.registry).set_function(
            lambda: float(source._error is None and source._last_ok is not None))
        Gauge("ifd_registry_seconds_since_ok", "seconds since the registry last answered (-1: never)",
              registry=self.registry).set_function(lambda: -1.0 if source._last_ok is None else source.seconds_since_ok())
        Gauge("ifd_model_stale", "1 when the served models may be stale (registry silent for more than stale_after_s)",
              registry=self.registry).set_function(lambda: float(source.stale()))
        served = Gauge("ifd_model_version", "version served per alias (0: none)", ["alias"], registry=self.registry)
        for alias in ALIASES:
            served.labels(alias=alias).set_function(lambda a=alias: float(source._models[a].version) if source._models[a] else 0.0)
        self.check_failures = Counter("ifd_registry_check_failures", "registry checks that failed", registry=self.registry)
        self.load_failures = Counter("ifd_model_load_failures", "versions that failed to load and were skipped",
                                     ["version"], registry=self.registry)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
