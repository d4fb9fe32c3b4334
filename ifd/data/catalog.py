"""The catalogue of ingested batches (data/catalog.json), in ingestion order; later flows read it.

It lives inside data/, so DVC versions it together with the batches it describes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ifd.errors import IfdError

CATALOG_VERSION = 1


@dataclass
class BatchRecord:
    """One ingested batch; `methods` are its forgery methods (fake rows), `hashes` its content sha256s."""

    name: str
    methods: list[str]
    counts: dict[str, dict[str, int]]
    n_rows: int
    digest: str
    ingested_at: str
    format: str
    source: str
    hashes: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Catalog:
    batches: list[BatchRecord] = field(default_factory=list)

    def names(self) -> list[str]:
        return [b.name for b in self.batches]

    def get(self, name: str) -> BatchRecord:
        for record in self.batches:
            if record.name == name:
                return record
        raise IfdError(f"no batch named {name!r} in the catalogue; known: {', '.join(self.names()) or 'none'}")

    def known_hashes(self, exclude: str | None = None) -> dict[str, str]:
        """sha256 -> name of the batch that holds it."""
        return {h: b.name for b in self.batches if b.name != exclude for h in b.hashes}

    def with_batch(self, record: BatchRecord) -> Catalog:
        """A new catalogue with `record` appended, or put in place of a batch of the same name."""
        kept = [b for b in self.batches if b.name != record.name]
        if len(kept) == len(self.batches):
            return Catalog([*kept, record])
        return Catalog([record if b.name == record.name else b for b in self.batches])

    def to_dict(self) -> dict[str, Any]:
        return {"version": CATALOG_VERSION, "batches": [asdict(b) for b in self.batches]}


def load_catalog(path: Path) -> Catalog:
    if not path.is_file():
        raise IfdError(f"{path} does not exist; run `ifd init` to create a workspace")
    raw = json.loads(path.read_text())
    return Catalog([BatchRecord(**b) for b in raw.get("batches", [])])


def save_catalog(catalog: Catalog, path: Path) -> None:
    """Write atomically: a reader sees the old or the new catalogue, never half of one."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(catalog.to_dict(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def batch_digest(frame: pd.DataFrame) -> str:
    """A content digest of a batch: sha256 over its sorted (path, label, method, split, source_id, sha256) rows."""
    cols = ["path", "label", "method", "split", "source_id", "sha256"]
    rows = sorted("\t".join(str(v) for v in row) for row in frame[cols].itertuples(index=False))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def batch_counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for (split, label), n in frame.groupby(["split", "label"]).size().items():
        counts.setdefault(str(split), {})[str(label)] = int(n)
    return counts
