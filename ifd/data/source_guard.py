"""What an adapter checks before it copies a source file: no symlink on the way, no file over the size cap.

An adapter copies bytes from where the user points. A symlink there (`real/x.png -> /home/alice/id.png`,
or a linked folder) would copy whatever it points to into data/ and push it to the DVC remote. So every
adapter refuses a batch that holds a symlink, naming each path and where it points, before anything is
copied; and a file over `ingest.max_file_bytes` is refused the same way before it is read. Rules:

- manifest: `manifest.csv` and every file a row names, with every folder between the batch folder
  and the file;
- folders, video: everything under `real/` and `fake/` (linked files and linked folders alike);
- deepfakebench: every sampled frame file, and for a path relative to the frames root every folder
  below that root (a dataset kept on a linked disk is fine: the root itself may be a link).

The copy itself opens the file with O_NOFOLLOW and checks that it is a regular file of allowed size,
so a link swapped in after the check is refused too.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ifd.errors import BatchRefused

SHOWN = 5


@dataclass
class SourceGuard:
    """Collects the symlinks and oversized files of one source; `refuse_if_any()` raises with the report."""

    root: Path
    max_bytes: int | None = None
    symlinks: list[dict[str, Any]] = field(default_factory=list)
    oversized: list[dict[str, Any]] = field(default_factory=list)

    def admit(self, path: Path) -> bool:
        """True when `path` may be copied; otherwise it is recorded under the rule it breaks."""
        link = first_symlink(self.root, path)
        if link is not None:
            self.symlinks.append({"path": self._rel(path), "symlink": self._rel(link), "target": _target(link)})
            return False
        if self.max_bytes is not None:
            try:
                size = path.lstat().st_size
            except OSError:
                return True  # a missing file is validation's to report
            if size > self.max_bytes:
                self.oversized.append({"path": self._rel(path), "bytes": size})
                return False
        return True

    def refuse_if_any(self) -> None:
        from ifd.data.validation import CheckResult, ValidationReport

        checks = []
        if self.symlinks:
            checks.append(
                CheckResult("no_symlinks", False, len(self.symlinks), self.symlinks[:SHOWN],
                            "the batch must hold regular files, not symlinks")
            )
        if self.oversized:
            checks.append(
                CheckResult("max_file_bytes", False, len(self.oversized), self.oversized[:SHOWN],
                            f"an image file may hold at most {self.max_bytes} bytes")
            )
        if checks:
            report = ValidationReport(batch=self.root.name, n_rows=0, checks=checks)
            names = ", ".join(c.name for c in checks)
            raise BatchRefused(f"source {self.root} refused: failed checks: {names}\n{report.to_text()}", report)

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def first_symlink(root: Path, path: Path) -> Path | None:
    """The first symlink on the way from `root` (exclusive) to `path` (inclusive); for a path outside
    `root`, only `path` itself is looked at."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path if path.is_symlink() else None
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def is_file_at(path: Path) -> bool:
    """`path.is_file()`, False (not an exception) for a name the OS cannot take: NUL, too long, a loop."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def walk_tree(top: Path, guard: SourceGuard) -> list[Path]:
    """Regular files under `top`, sorted; every symlink met (file or folder, `top` included) goes to `guard`."""
    if top.is_symlink():
        guard.admit(top)
        return []
    files = []
    for folder, dirs, names in os.walk(top, followlinks=False):
        base = Path(folder)
        for name in [*dirs, *names]:
            if (base / name).is_symlink():
                guard.admit(base / name)
        files += [base / n for n in names if (base / n).is_file() and not (base / n).is_symlink()]
    return sorted(files)


def read_regular(path: Path, max_bytes: int | None) -> bytes:
    """The bytes of `path`, refusing a symlink or non-regular file (O_NOFOLLOW) and a file over `max_bytes`."""
    with _open_regular(path, max_bytes) as handle:
        data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise BatchRefused(f"{path}: grew past {max_bytes} bytes while it was read; refused")
    return data


def copy_regular(path: Path, dest: Path, max_bytes: int | None) -> None:
    """Copy `path` to `dest` with the checks of `read_regular`, streaming."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _open_regular(path, max_bytes) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)


def _open_regular(path: Path, max_bytes: int | None) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise BatchRefused(f"{path}: cannot open it as a regular file ({exc.strerror or exc})") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (max_bytes is not None and info.st_size > max_bytes):
        os.close(fd)
        raise BatchRefused(f"{path}: not a regular file of at most {max_bytes} bytes; refused")
    return os.fdopen(fd, "rb")


def _target(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"
