"""Tasks of an incremental stream: one forgery batch (a folder with manifest.csv) is one task.

A task keeps its batch folder and its manifest rows; images are read lazily by the image dataset.
The order of a stream comes from its `stream.json` ({"tasks": [names...]}) when present, else from
the sorted names of its subfolders that hold a manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ifd.data.manifest import COLUMNS, LABEL_TO_INT, MANIFEST_NAME, SPLITS, read_manifest
from ifd.errors import IfdError

STREAM_FILE = "stream.json"


@dataclass(frozen=True)
class TaskData:
    """One task: its name, its batch folder and its manifest rows (plus an integer label column `y`)."""

    name: str
    root: Path
    frame: pd.DataFrame

    @classmethod
    def from_batch(cls, folder: Path, name: str | None = None) -> TaskData:
        """Read `folder/manifest.csv`; the task is named after the folder unless `name` is given."""
        folder = Path(folder).resolve()
        frame = read_manifest(folder)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise IfdError(f"{folder / MANIFEST_NAME}: missing column(s) {', '.join(missing)}")
        bad_labels = sorted(set(frame["label"]) - set(LABEL_TO_INT))
        if bad_labels:
            raise IfdError(f"{folder / MANIFEST_NAME}: unknown label(s) {bad_labels}; expected real or fake")
        bad_splits = sorted(set(frame["split"]) - set(SPLITS))
        if bad_splits:
            raise IfdError(
                f"{folder / MANIFEST_NAME}: unknown split(s) {bad_splits}; expected {', '.join(SPLITS)}"
            )
        frame = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
        frame["y"] = frame["label"].map(LABEL_TO_INT).astype("int64")
        return cls(name=name or folder.name, root=folder, frame=frame)

    def split(self, split: str) -> pd.DataFrame:
        """The rows of one split, re-indexed from 0; an empty split is an error (nothing to train or test on)."""
        if split not in SPLITS:
            raise IfdError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        rows = self.frame[self.frame["split"] == split].reset_index(drop=True)
        if rows.empty:
            raise IfdError(f"task {self.name!r} ({self.root}) has no {split!r} rows")
        return rows

    def has_split(self, split: str) -> bool:
        return bool((self.frame["split"] == split).any())

    def video_ids(self, rows: pd.DataFrame) -> list[str]:
        """Video-level groups: task (dataset), label and source id, never the folder name alone."""
        return [
            f"{self.name}/{label}/{sid}" for label, sid in zip(rows["label"], rows["source_id"], strict=True)
        ]

    def methods(self) -> list[str]:
        """The forgery methods of the task's fake rows."""
        return sorted(set(self.frame.loc[self.frame["label"] == "fake", "method"]))


def tasks_from_dirs(dirs: Sequence[Path]) -> list[TaskData]:
    """One task per batch folder, in the given order; names must be unique."""
    tasks = [TaskData.from_batch(Path(d)) for d in dirs]
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise IfdError(f"two batch folders share the name(s) {dupes}; task names must be unique")
    return tasks


def tasks_from_stream(folder: Path) -> list[TaskData]:
    """The tasks of a stream folder, in the order of its stream.json or, without one, by sorted name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IfdError(f"{folder}: not a folder; a stream is a folder of batch folders")
    order_file = folder / STREAM_FILE
    if order_file.is_file():
        try:
            names = json.loads(order_file.read_text())["tasks"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise IfdError(f"{order_file}: expected a JSON object with a 'tasks' list ({exc})") from exc
        dirs = [folder / str(n) for n in names]
        absent = [d.name for d in dirs if not (d / MANIFEST_NAME).is_file()]
        if absent:
            raise IfdError(f"{order_file} names batch(es) without a {MANIFEST_NAME}: {', '.join(absent)}")
    else:
        dirs = sorted(d for d in folder.iterdir() if (d / MANIFEST_NAME).is_file())
    if not dirs:
        raise IfdError(f"{folder}: no batch folders (subfolders with {MANIFEST_NAME})")
    return tasks_from_dirs(dirs)
