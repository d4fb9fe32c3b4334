"""The workspace: a DVC project directory holding data/, data.dvc, params.yaml and local state in .ifd/.

Commands act on the current directory unless given `--workspace`. Every path the platform writes is
derived here, so nothing reaches for a hidden global. `require()` is where every command enters a
workspace, so it is also where an ingest that was killed mid-commit gets repaired.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ifd.errors import IfdError


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, root: Path | str | None = None) -> Workspace:
        base = Path(root) if root is not None else Path(os.environ.get("IFD_WORKSPACE", "."))
        return cls(base.resolve())

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def batches_dir(self) -> Path:
        return self.data_dir / "batches"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.json"

    @property
    def data_dvc(self) -> Path:
        return self.root / "data.dvc"

    @property
    def params_path(self) -> Path:
        return self.root / "params.yaml"

    @property
    def state_dir(self) -> Path:
        """Local, untracked state: staging, locks, the DVC remote, MLflow's store."""
        return self.root / ".ifd"

    @property
    def staging_dir(self) -> Path:
        return self.state_dir / "staging"

    @property
    def locks_dir(self) -> Path:
        return self.state_dir / "locks"

    @property
    def journal_path(self) -> Path:
        """The write-ahead journal of an ingest's commit (ifd/data/journal.py); present only mid-commit."""
        return self.state_dir / "journal" / "ingest.json"

    @property
    def dvc_remote_dir(self) -> Path:
        return self.state_dir / "dvc-remote"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    def batch_dir(self, name: str) -> Path:
        return self.batches_dir / name

    def is_initialised(self) -> bool:
        return (self.root / ".dvc").is_dir() and self.catalog_path.is_file() and self.data_dvc.is_file()

    def require(self) -> Workspace:
        """Fail unless this is a workspace; first repair what an interrupted ingest left (ifd/data/journal.py)."""
        if (self.root / ".dvc").is_dir():
            from ifd.data.journal import repair_if_needed

            repair_if_needed(self)
        if not self.is_initialised():
            raise IfdError(
                f"{self.root} is not an ifd workspace (needs .dvc/, data/catalog.json and data.dvc); "
                "run `ifd init` there first"
            )
        return self
