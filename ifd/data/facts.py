"""Per-image facts for validation: is the path safe, does the file decode, how large is it, what is its hash.

This is the only place that opens images while a batch is validated; validation then asserts the
facts with great-expectations. Truncated files must fail to decode, whatever a caller set in PIL's
global `ImageFile.LOAD_TRUNCATED_IMAGES`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

FACT_COLUMNS: tuple[str, ...] = ("path_problem", "decode_error", "width", "height", "sha256")
_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(batch_dir: Path, rel: object) -> str | None:
    """Why `rel` is not a usable manifest path (None when it is): POSIX, relative, no `..`, an existing
    file inside `batch_dir` (after following symlinks)."""
    if not isinstance(rel, str) or not rel.strip():
        return "empty path"
    if "\\" in rel:
        return "backslash in path (use '/')"
    pure = PurePosixPath(rel)
    if pure.is_absolute() or _DRIVE.match(rel):
        return "absolute path"
    if ".." in pure.parts:
        return "'..' in path"
    root = Path(batch_dir).resolve()
    target = (root / pure).resolve()
    if not target.is_relative_to(root):
        return "leads outside the batch folder"
    if not target.is_file():
        return "no such file"
    return None


def compute_facts(batch_dir: Path, paths: Iterable[object], workers: int | None = None) -> pd.DataFrame:
    """One row per path, in order: `path`, `path_problem`, `decode_error` (None when it decodes or was
    not read because its path is bad), `width`, `height`, `sha256` of the file bytes."""
    batch_dir = Path(batch_dir)
    paths = list(paths)
    n_workers = workers or min(8, os.cpu_count() or 1)
    with _strict_truncation():
        if n_workers > 1 and len(paths) > 16:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                rows = list(pool.map(lambda p: _facts_of(batch_dir, p), paths))
        else:
            rows = [_facts_of(batch_dir, p) for p in paths]
    frame = pd.DataFrame(rows, columns=["path", *FACT_COLUMNS])
    for column in ("width", "height"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame


def _facts_of(batch_dir: Path, rel: object) -> dict[str, Any]:
    facts: dict[str, Any] = {"path": rel, "path_problem": path_problem(batch_dir, rel)}
    if facts["path_problem"] is not None:
        return facts
    try:
        data = (batch_dir / str(rel)).read_bytes()
    except OSError as exc:
        facts["decode_error"] = f"cannot read the file: {exc.strerror or exc}"
        return facts
    facts["sha256"] = hashlib.sha256(data).hexdigest()
    size, error = _decode(data)
    facts["decode_error"] = error
    if size is not None:
        facts["width"], facts["height"] = size
    return facts


def _decode(data: bytes) -> tuple[tuple[int, int] | None, str | None]:
    from PIL import Image, UnidentifiedImageError

    if not data:
        return None, "empty file"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.size, None
    except UnidentifiedImageError:
        return None, "not an image PIL can read"
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


@contextmanager
def _strict_truncation() -> Iterator[None]:
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
