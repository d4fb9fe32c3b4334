"""`folders` format: images under `real/` and `fake/` (optionally `fake/<method>/`), split by source, seeded.

Each image is its own source (source_id = its path under the folder, without extension); splits are
drawn per class from `cfg.split_fractions` with `cfg.seed`, so the same folder and config always give
the same batch. A symlink under real/ or fake/, or an image over `ingest.max_file_bytes`, refuses the
batch before anything is copied.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from ifd.data.adapters.base import (
    ADAPTERS,
    IMAGE_EXTENSIONS,
    AdapterReport,
    draw_splits,
    finish,
    labelled_files,
)
from ifd.data.ingest_config import IngestConfig
from ifd.data.source_guard import copy_regular


@ADAPTERS.register("folders")
def convert(src: Path, staging: Path, cfg: IngestConfig) -> AdapterReport:
    """Copy the images of `src/real` and `src/fake` into `staging` with a manifest and drawn splits."""
    files, skipped = labelled_files(src, IMAGE_EXTENSIONS, cfg.max_file_bytes)
    source_of = {f.rel: str(PurePosixPath(f.rel).with_suffix("")) for f in files}
    splits = draw_splits({source_of[f.rel]: f.label for f in files}, cfg.split_fractions, cfg.seed)
    rows = []
    for f in files:
        copy_regular(f.path, staging / f.rel, cfg.max_file_bytes)
        source = source_of[f.rel]
        rows.append(
            {
                "path": f.rel,
                "label": f.label,
                "method": f.method,
                "split": splits[source],
                "source_id": source,
            }
        )
    per_split = Counter(f"{r['split']}/{r['label']}" for r in rows)
    notes = {"skipped_files": skipped, "rows_per_split": dict(sorted(per_split.items())), "seed": cfg.seed}
    return finish(staging, rows, "folders", notes)
