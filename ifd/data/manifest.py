"""The batch format of CONTRACT.md: a folder with manifest.csv and the images it names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ifd.errors import IfdError

MANIFEST_NAME = "manifest.csv"
COLUMNS: tuple[str, ...] = ("path", "label", "method", "split", "source_id")
LABELS: tuple[str, ...] = ("real", "fake")
SPLITS: tuple[str, ...] = ("train", "val", "test")
LABEL_TO_INT: dict[str, int] = {"real": 0, "fake": 1}


def read_manifest(batch_dir: Path) -> pd.DataFrame:
    """Read `batch_dir/manifest.csv` as strings, without judging its content (validation does that)."""
    path = Path(batch_dir) / MANIFEST_NAME
    if not path.is_file():
        raise IfdError(f"{path}: no {MANIFEST_NAME}; a batch is a folder with {MANIFEST_NAME} and its images")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise IfdError(f"{path}: not a readable CSV ({exc})") from exc
    return df


def write_manifest(df: pd.DataFrame, batch_dir: Path) -> Path:
    """Write the manifest columns of `df` in the contract's order."""
    path = Path(batch_dir) / MANIFEST_NAME
    df.loc[:, list(COLUMNS)].to_csv(path, index=False)
    return path
