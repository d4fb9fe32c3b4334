"""`manifest` format: a folder with manifest.csv and the images it names (CONTRACT.md), copied as is.

Nothing is judged here: rows keep their values and validation reports what is wrong. Only a file
whose path is unsafe (absolute, with `..`, leading outside the folder) is never copied, so a batch
cannot pull files from elsewhere on disk into the workspace; its row stays for validation to report.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ifd.data.adapters.base import ADAPTERS, AdapterReport
from ifd.data.facts import path_problem
from ifd.data.ingest_config import IngestConfig
from ifd.data.manifest import COLUMNS, MANIFEST_NAME, read_manifest


@ADAPTERS.register("manifest")
def convert(src: Path, staging: Path, cfg: IngestConfig) -> AdapterReport:
    """Copy `src/manifest.csv` (contract columns only) and the files it names into `staging`."""
    folder = src.parent if src.is_file() and src.name == MANIFEST_NAME else src
    frame = read_manifest(folder)
    kept = [c for c in COLUMNS if c in frame.columns]
    dropped = [c for c in frame.columns if c not in COLUMNS]
    copied, not_copied = 0, 0
    if "path" in frame.columns:
        for rel in dict.fromkeys(frame["path"]):
            if path_problem(folder, rel) is not None:
                not_copied += 1
                continue
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, dest)
            copied += 1
    frame.loc[:, kept].to_csv(staging / MANIFEST_NAME, index=False)
    notes = {"files_copied": copied, "paths_not_copied": not_copied, "dropped_columns": dropped}
    return AdapterReport(format="manifest", n_rows=len(frame), notes=notes)
