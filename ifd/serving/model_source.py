"""Where the scoring API gets its models: the registry's `champion` (answers) and `challenger` (shadow).

The aliases are looked up at most every `poll_s` seconds; when one moves, the new version's state is
downloaded once (cached under `.ifd/models/v<N>`) and swapped in under a lock, so an `ifd approve` is picked
up without a restart and a request always sees one consistent model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ifd.errors import IfdError
from ifd.workspace import Workspace


class NoChampion(IfdError):
    exit_code = 5


@dataclass
class Loaded:
    version: str
    scorer: Any


class ModelSource:
    def __init__(self, ws: Workspace, threshold: float = 0.5, poll_s: float = 5.0) -> None:
        self.ws = ws
        self.threshold = threshold
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._models: dict[str, Loaded | None] = {"champion": None, "challenger": None}
        self._cache: dict[str, Any] = {}

    def _load(self, version: str) -> Any:
        if version not in self._cache:
            from ifd.inference.scorer import DetectorScorer
            from ifd.tracking import model_registry as reg
            from ifd.train.state import IncrementalState

            path = reg.download_state(self.ws, version)
            self._cache = {version: DetectorScorer(IncrementalState.load(path), threshold=self.threshold), **self._cache}
            for old in list(self._cache)[3:]:  # keep the last few versions (a rollback is then instant)
                self._cache.pop(old)
        return self._cache[version]

    def refresh(self, force: bool = False) -> None:
        """Look the aliases up again if `poll_s` has passed (or `force`), loading what moved."""
        from ifd.tracking import model_registry as reg

        with self._lock:
            if not force and time.monotonic() - self._checked < self.poll_s:
                return
            for alias in ("champion", "challenger"):
                info = reg.version_by_alias(self.ws, alias)
                current = self._models[alias]
                if info is None:
                    self._models[alias] = None
                elif current is None or current.version != info.version:
                    self._models[alias] = Loaded(info.version, self._load(info.version))
            self._checked = time.monotonic()

    def champion(self) -> Loaded:
        self.refresh()
        found = self._models["champion"]
        if found is None:
            raise NoChampion("no version has the alias 'champion' yet: approve one with `ifd approve VERSION`")
        return found

    def challenger(self) -> Loaded | None:
        self.refresh()
        found = self._models["challenger"]
        champ = self._models["champion"]
        return found if found is not None and (champ is None or found.version != champ.version) else None
