"""Batch adapters: one module per source format, each registered under its file's name.

`convert_batch(fmt, src, staging, cfg)` turns a source into the manifest format of CONTRACT.md inside
`staging`; an unknown format fails with the list of known ones.
"""

from __future__ import annotations

from pathlib import Path

from ifd.data.adapters import deepfakebench, folders, manifest, video  # noqa: F401  (registers the formats)
from ifd.data.adapters.base import ADAPTERS, AdapterReport
from ifd.data.ingest_config import IngestConfig

__all__ = ["ADAPTERS", "AdapterReport", "convert_batch"]


def convert_batch(fmt: str, src: Path, staging: Path, cfg: IngestConfig) -> AdapterReport:
    """Write the batch at `src` (in format `fmt`) into the empty folder `staging` in the manifest format."""
    adapter = ADAPTERS.get(fmt)
    return adapter(Path(src), Path(staging), cfg)
