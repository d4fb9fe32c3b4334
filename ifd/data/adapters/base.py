"""What every batch adapter shares: the registry, the report, the split draw and the folder walk.

An adapter turns one source (a manifest folder, real/ + fake/ folders, a DeepfakeBench JSON, videos)
into a batch in the manifest format inside a staging folder. Adapters convert; they do not judge
content: validation does that on the staged batch.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifd.data.ingest_config import IngestConfig, SplitFractions
from ifd.data.manifest import COLUMNS, LABELS, write_manifest
from ifd.data.source_guard import SourceGuard, walk_tree
from ifd.errors import IfdError
from ifd.registry_utils import Registry

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass
class AdapterReport:
    """What an adapter did; `notes` is JSON-serialisable and ends up in the catalogue record."""

    format: str
    n_rows: int
    notes: dict[str, Any] = field(default_factory=dict)


Adapter = Callable[[Path, Path, IngestConfig], AdapterReport]
ADAPTERS: Registry[Adapter] = Registry("batch format")


@dataclass(frozen=True)
class LabelledFile:
    """A file under `real/` or `fake/`: `rel` is its POSIX path relative to the source folder."""

    path: Path
    rel: str
    label: str
    method: str


def labelled_files(
    src: Path, extensions: frozenset[str], max_bytes: int | None = None
) -> tuple[list[LabelledFile], int]:
    """Files under src/real and src/fake with one of `extensions`, sorted; also the count skipped.

    The method is the first subfolder under the label folder (fake/<method>/x.png); a file directly
    in fake/ takes the source folder's name, one directly in real/ the method `real`. A symlink
    anywhere under real/ or fake/, or a file over `max_bytes`, refuses the batch (ifd/data/source_guard.py).
    """
    if not src.is_dir():
        raise IfdError(f"{src} is not a folder; this format needs a folder with real/ and fake/ subfolders")
    missing = [label for label in LABELS if not (src / label).is_dir()]
    if missing:
        raise IfdError(
            f"{src}: no {' or '.join(m + '/' for m in missing)} subfolder; this format needs real/ and fake/"
        )
    found, skipped = [], 0
    guard = SourceGuard(src, max_bytes)
    for label in LABELS:
        for path in walk_tree(src / label, guard):
            if path.suffix.lower() not in extensions or path.name.startswith("."):
                skipped += 1
                continue
            if not guard.admit(path):
                continue
            inner = path.relative_to(src / label).parts
            default = src.name if label == "fake" else "real"
            method = inner[0] if len(inner) > 1 else default
            found.append(LabelledFile(path, path.relative_to(src).as_posix(), label, method))
    guard.refuse_if_any()
    return found, skipped


def draw_splits(source_labels: dict[str, str], fractions: SplitFractions, seed: int) -> dict[str, str]:
    """A split per source, drawn per class with a seeded shuffle of the sorted source ids.

    Each class with two or more sources gets at least one test source and keeps at least one train
    source; a class with a single source puts it in train.
    """
    splits: dict[str, str] = {}
    for k, label in enumerate(LABELS):
        sources = sorted(s for s, lab in source_labels.items() if lab == label)
        order = np.random.default_rng([seed, k]).permutation(len(sources))
        counts = _split_counts(len(sources), fractions)
        names = ["test"] * counts["test"] + ["val"] * counts["val"] + ["train"] * counts["train"]
        for i, name in zip(order, names, strict=True):
            splits[sources[i]] = name
    return splits


def _split_counts(n: int, fractions: SplitFractions) -> dict[str, int]:
    if n < 2:
        return {"train": n, "val": 0, "test": 0}
    n_test = max(1, round(n * fractions.test))
    n_val = round(n * fractions.val)
    while n - n_test - n_val < 1:
        if n_val > 0:
            n_val -= 1
        else:
            n_test -= 1
    return {"train": n - n_test - n_val, "val": n_val, "test": n_test}


def even_indices(n: int, k: int) -> list[int]:
    """`k` indices spread evenly over range(n), first and last included; all of them when n <= k."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


def natural_key(text: str) -> list[Any]:
    """Sort key that puts frame2 before frame10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def safe_component(name: str) -> str:
    """A file-name-safe version of a label string or video name (letters, digits, '.', '_', '-')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"
    return cleaned[:100]


class ContentWriter:
    """Writes files into the staging folder, dropping exact duplicates of content already written."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.seen: set[str] = set()
        self.duplicates = 0

    def write(self, rel: str, data: bytes) -> bool:
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(digest)
        dest = self.staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return True


def finish(staging: Path, rows: Sequence[dict[str, str]], fmt: str, notes: dict[str, Any]) -> AdapterReport:
    """Write the staged manifest and return the report."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    write_manifest(frame, staging)
    return AdapterReport(format=fmt, n_rows=len(frame), notes=notes)
