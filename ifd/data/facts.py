"""Per-image facts for validation: is the path safe, does the file decode, how large is it, what is its hash.

This is the only place that opens images while a batch is validated; validation then asserts the
facts with great-expectations. Truncated files must fail to decode, whatever a caller set in PIL's
global `ImageFile.LOAD_TRUNCATED_IMAGES`. Bounded before any work: a file over `max_bytes` is not
read at all (only its size is known), and an image whose header states a side over `max_side` is not
decoded (PIL's `open` reads the header only; `load` decodes), so the max_size check reports the
header's dimensions.
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

from ifd.data.source_guard import first_symlink

FACT_COLUMNS: tuple[str, ...] = ("path_problem", "decode_error", "width", "height", "n_bytes", "sha256")
SYMLINK_PROBLEM = "symlink in path"
_DRIVE = re.compile(r"^[A-Za-z]:")


def path_problem(batch_dir: Path, rel: object) -> str | None:
    """Why `rel` is not a usable manifest path (None when it is): POSIX, relative, no `..`, no symlink on
    the way, an existing regular file inside `batch_dir`."""
    if not isinstance(rel, str) or not rel.strip():
        return "empty path"
    if "\\" in rel:
        return "backslash in path (use '/')"
    if "\x00" in rel:
        return "NUL character in path"
    pure = PurePosixPath(rel)
    if pure.is_absolute() or _DRIVE.match(rel):
        return "absolute path"
    if ".." in pure.parts:
        return "'..' in path"
    try:
        root = Path(batch_dir).resolve()
        link = first_symlink(root, root / pure)
        if link is not None:
            return f"{SYMLINK_PROBLEM} ({link.relative_to(root).as_posix()})"
        target = (root / pure).resolve()
        if not target.is_relative_to(root):
            return "leads outside the batch folder"
        if not target.is_file():
            return "no such file"
    except OSError as exc:  # a name too long for the file system, a loop, no permission
        return f"unusable path ({exc.strerror or exc})"
    return None


def compute_facts(
    batch_dir: Path,
    paths: Iterable[object],
    workers: int | None = None,
    max_side: int | None = None,
    max_bytes: int | None = None,
) -> pd.DataFrame:
    """One row per path, in order: `path`, `path_problem`, `decode_error` (None when it decodes or was
    not read because its path is bad, it is over `max_bytes`, or its header is over `max_side`),
    `width`, `height` (from the header), `n_bytes`, `sha256` of the file bytes (None when not read)."""
    batch_dir = Path(batch_dir)
    paths = list(paths)
    n_workers = workers or min(8, os.cpu_count() or 1)

    def one(rel: object) -> dict[str, Any]:
        return _facts_of(batch_dir, rel, max_side, max_bytes)

    with _strict_truncation():
        if n_workers > 1 and len(paths) > 16:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                rows = list(pool.map(one, paths))
        else:
            rows = [one(p) for p in paths]
    frame = pd.DataFrame(rows, columns=["path", *FACT_COLUMNS])
    for column in ("width", "height", "n_bytes"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame


def _facts_of(batch_dir: Path, rel: object, max_side: int | None, max_bytes: int | None) -> dict[str, Any]:
    facts: dict[str, Any] = {"path": rel, "path_problem": path_problem(batch_dir, rel)}
    if facts["path_problem"] is not None:
        return facts
    path = batch_dir / str(rel)
    try:
        facts["n_bytes"] = path.stat().st_size
        if max_bytes is not None and facts["n_bytes"] > max_bytes:
            return facts
        data = path.read_bytes()
    except OSError as exc:
        facts["decode_error"] = f"cannot read the file: {exc.strerror or exc}"
        return facts
    facts["sha256"] = hashlib.sha256(data).hexdigest()
    size, error = _decode(data, max_side)
    facts["decode_error"] = error
    if size is not None:
        facts["width"], facts["height"] = size
    return facts


def _decode(data: bytes, max_side: int | None = None) -> tuple[tuple[int, int] | None, str | None]:
    """(width, height) and None when the image decodes; the header's size and None, undecoded, when a
    side is over `max_side`; (None, why) when it does not open or decode."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return None, "empty file"
    try:
        with Image.open(io.BytesIO(data)) as image:
            if max_side is not None and max(image.size) > max_side:
                return image.size, None
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
