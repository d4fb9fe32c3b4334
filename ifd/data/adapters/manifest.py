"""`manifest` format: a folder with manifest.csv and the images it names (CONTRACT.md), copied as is.

Nothing is judged here: rows keep their values and validation reports what is wrong. Only a file
whose path is unsafe (absolute, with `..`, leading outside the folder) is never copied, so a batch
cannot pull files from elsewhere on disk into the workspace; its row stays for validation to report.
A symlink (manifest.csv itself, a named file, or a folder on its way) or a file over
`ingest.max_file_bytes` refuses the batch before anything is copied (ifd/data/source_guard.py).
"""

from __future__ import annotations

from pathlib import Path

from ifd.data.adapters.base import ADAPTERS, AdapterReport
from ifd.data.facts import SYMLINK_PROBLEM, path_problem
from ifd.data.ingest_config import IngestConfig
from ifd.data.manifest import COLUMNS, MANIFEST_NAME, read_manifest
from ifd.data.source_guard import SourceGuard, copy_regular


@ADAPTERS.register("manifest")
def convert(src: Path, staging: Path, cfg: IngestConfig) -> AdapterReport:
    """Copy `src/manifest.csv` (contract columns only) and the files it names into `staging`."""
    folder = src.parent if src.is_file() and src.name == MANIFEST_NAME else src
    guard = SourceGuard(folder, cfg.max_file_bytes)
    if not guard.admit(folder / MANIFEST_NAME):
        guard.refuse_if_any()
    frame = read_manifest(folder)
    kept = [c for c in COLUMNS if c in frame.columns]
    dropped = [c for c in frame.columns if c not in COLUMNS]
    to_copy, not_copied = [], 0
    if "path" in frame.columns:
        for rel in dict.fromkeys(frame["path"]):
            problem = path_problem(folder, rel)
            if problem is not None and not problem.startswith(SYMLINK_PROBLEM):
                not_copied += 1
            elif guard.admit(folder / rel):
                to_copy.append(rel)
    guard.refuse_if_any()
    for rel in to_copy:
        copy_regular(folder / rel, staging / rel, cfg.max_file_bytes)
    frame.loc[:, kept].to_csv(staging / MANIFEST_NAME, index=False)
    notes = {"files_copied": len(to_copy), "paths_not_copied": not_copied, "dropped_columns": dropped}
    return AdapterReport(format="manifest", n_rows=len(frame), notes=notes)
