"""Published incremental protocols as data: which DeepfakeBench JSON and which datasets make each task.

A protocol (ifd/data/protocols/<name>.yaml, or any YAML file of the same shape) lists its tasks in order;
each task takes one DeepfakeBench dataset JSON (METHOD.md §6), optionally only some of its top-level
datasets and label strings. `build_protocol` turns the definition into a stream folder that `ifd bench`,
`ifd train --stream` and `ifd tune --stream` read: for every task the JSON is cut to what the task
names, converted by the deepfakebench adapter (frames sampled evenly, Windows paths normalised, val
copies of test dropped, split leaks refused), validated by the ingest suite (ifd/data/validation.py,
including no content shared with an earlier task), and moved into `OUT/<task>` in one rename;
`OUT/stream.json` gives the order and `OUT/protocol.json` what was built from where.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ifd.data.ingest_config import IngestConfig, Label
from ifd.errors import BatchRefused, IfdError
from ifd.typed_yaml import read_mapping, validate

PROTOCOL_DIR = Path(__file__).parent / "protocols"
PROTOCOL_FILE = "protocol.json"


class ProtocolTask(BaseModel):
    """One task: a DeepfakeBench JSON (relative to the JSON folder) and what of it to take."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    json_file: str = Field(alias="json")
    datasets: list[str] = Field(default_factory=list, description="top-level datasets to take (empty: all)")
    label_strings: list[str] = Field(default_factory=list, description="label strings to take (empty: all)")


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    frames_per_video: int = Field(8, ge=1, le=10_000)
    compression: str = "c23"
    label_dict: dict[str, Label] = Field(default_factory=dict)
    tasks: list[ProtocolTask] = Field(min_length=1)

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[ProtocolTask]) -> list[ProtocolTask]:
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        return tasks


def known_protocols() -> list[str]:
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


def load_protocol(name_or_file: str) -> Protocol:
    """A shipped protocol by name (`protocol1`, `protocol2`) or a YAML file of the same shape."""
    path = Path(name_or_file)
    if not path.suffix:
        path = PROTOCOL_DIR / f"{name_or_file}.yaml"
        if not path.is_file():
            raise IfdError(f"unknown protocol {name_or_file!r}; known: {', '.join(known_protocols())} (or a YAML file)")
    elif not path.is_file():
        raise IfdError(f"{path}: no such protocol file")
    return validate(Protocol, read_mapping(path, "protocol"), str(path))


def default_dirs(dfb_root: Path) -> tuple[Path, Path]:
    """(JSON folder, frames root) of a DeepfakeBench checkout: preprocessing/dataset_json and datasets/rgb
    when they exist, else the root itself."""
    json_dir, frames = dfb_root / "preprocessing" / "dataset_json", dfb_root / "datasets" / "rgb"
    return (json_dir if json_dir.is_dir() else dfb_root), (frames if frames.is_dir() else dfb_root)


def task_json(task: ProtocolTask, json_dir: Path) -> dict[str, Any]:
    """The task's JSON cut to its datasets and label strings; a missing file or name says what exists."""
    src = json_dir / task.json_file
    if not src.is_file():
        raise IfdError(f"protocol task {task.name!r}: {src} does not exist (set --json-dir, or `json:` in the protocol)")
    try:
        data = json.loads(src.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IfdError(f"{src}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IfdError(f"{src}: expected {{dataset: {{label_string: ...}}}}")
    absent = [d for d in task.datasets if d not in data]
    if absent:
        raise IfdError(f"{src}: no dataset {', '.join(absent)}; it holds {', '.join(sorted(data))}")
    cut = {d: v for d, v in data.items() if not task.datasets or d in task.datasets}
    if task.label_strings:
        cut = {d: {ls: v for ls, v in by_label.items() if ls in task.label_strings} for d, by_label in cut.items()}
        found = {ls for by_label in cut.values() for ls in by_label}
        missing = sorted(set(task.label_strings) - found)
        if missing:
            raise IfdError(f"{src}: no label string {', '.join(missing)} in {', '.join(cut)}")
    return cut


def build_protocol(
    protocol: Protocol,
    out: Path,
    json_dir: Path,
    frames_root: Path,
    base: IngestConfig | None = None,
    frames_per_video: int | None = None,
    replace: bool = False,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write the stream folder `out` for `protocol`; returns what protocol.json records."""
    from ifd.data.adapters import convert_batch
    from ifd.data.validation import check_batch

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not replace:
            raise IfdError(f"{out} is not empty; give another folder or --replace")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    base = base or IngestConfig()
    cfg = base.model_copy(update={
        "frames_per_video": frames_per_video or protocol.frames_per_video,
        "compression": protocol.compression,
        "frames_root": str(Path(frames_root).resolve()),
        "label_dict": {**protocol.label_dict, **base.label_dict},
    })
    staging = out / ".staging"
    known: dict[str, str] = {}
    record: dict[str, Any] = {"protocol": protocol.model_dump(by_alias=True), "json_dir": str(json_dir),
                              "frames_root": cfg.frames_root, "frames_per_video": cfg.frames_per_video, "tasks": {}}
    done: list[Path] = []
    try:
        for t, task in enumerate(protocol.tasks):
            progress(f"[protocol] task {t} {task.name!r} from {task.json_file} ...")
            shutil.rmtree(staging, ignore_errors=True)
            (staging / "batch").mkdir(parents=True)
            cut = staging / task.json_file
            cut.write_text(json.dumps(task_json(task, Path(json_dir))))
            report = convert_batch("deepfakebench", cut, staging / "batch", cfg)
            rows, checks = check_batch(staging / "batch", known, cfg)
            if not checks.success:
                raise BatchRefused(f"protocol task {task.name!r} refused:\n{checks.to_text()}", checks)
            known.update({str(h): task.name for h in rows["sha256"]})
            (staging / "batch").rename(out / task.name)
            done.append(out / task.name)
            record["tasks"][task.name] = {"rows": report.n_rows, **report.notes}
            progress(f"[protocol] task {t} {task.name!r}: {report.n_rows} frames of {report.notes.get('videos')} videos")
    except BaseException:
        for folder in done:  # all or nothing: no half-built stream is left to train on
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (out / "stream.json").write_text(json.dumps({"tasks": [t.name for t in protocol.tasks]}, indent=1) + "\n")
    (out / PROTOCOL_FILE).write_text(json.dumps(record, indent=1, default=str) + "\n")
    return record
