"""Symlinks are refused by every adapter before anything is copied, with the path in the report.

The finding: a `--format folders` batch whose real/ held a symlink to an image outside the batch was
ingested, the outside file copied into data/batches/... and pushed to the DVC remote.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from batchgen import make_batch, make_deepfakebench, make_folders, make_videos, write_image
from ingest_faults import consistent, fingerprint

from ifd.data.ingest import ingest_batch
from ifd.data.ingest_config import IngestConfig
from ifd.errors import BatchRefused
from ifd.workspace import Workspace

CFG = IngestConfig()
Setup = Callable[[Path, Path], tuple[Path, str, str]]  # (tmp, secret) -> (source, format, path reported)


def _relink(path: Path, target: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.symlink_to(target)


def folders_file(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_folders(tmp / "src")
    _relink(src / "real" / "r0.png", secret)
    return src, "folders", "real/r0.png"


def folders_dir(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_folders(tmp / "src")
    _relink(src / "fake" / "gan", secret.parent)
    return src, "folders", "fake/gan"


def manifest_file(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_batch(tmp / "src")
    _relink(src / "images" / "real_000.png", secret)
    return src, "manifest", "images/real_000.png"


def manifest_inside(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    """Even a link that stays inside the batch: the rule is simple, regular files only."""
    src = make_batch(tmp / "src")
    (src / "images" / "spare.png").write_bytes((src / "images" / "real_000.png").read_bytes())
    _relink(src / "images" / "real_000.png", src / "images" / "spare.png")
    return src, "manifest", "images/real_000.png"


def manifest_folder(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_batch(tmp / "src")
    shutil.move(src / "images", tmp / "images-elsewhere")
    (src / "images").symlink_to(tmp / "images-elsewhere")
    return src, "manifest", "images"


def manifest_csv(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_batch(tmp / "src")
    shutil.move(src / "manifest.csv", tmp / "manifest-elsewhere.csv")
    (src / "manifest.csv").symlink_to(tmp / "manifest-elsewhere.csv")
    return src, "manifest", "manifest.csv"


def dfb_frame(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_deepfakebench(tmp / "dfb")
    _relink(src.parent / "frames" / "FF-real" / "000" / "0000.png", secret)
    return src, "deepfakebench", "frames/FF-real/000/0000.png"


def dfb_folder(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_deepfakebench(tmp / "dfb")
    shutil.move(src.parent / "frames" / "FF-DF", tmp / "elsewhere-FF-DF")
    (src.parent / "frames" / "FF-DF").symlink_to(tmp / "elsewhere-FF-DF")
    return src, "deepfakebench", "frames/FF-DF"


def video_file(tmp: Path, secret: Path) -> tuple[Path, str, str]:
    src = make_videos(tmp / "vids", n_per_class=2, frames=4, side=64)
    shutil.move(src / "real" / "v0.avi", tmp / "v0.avi")
    (src / "real" / "v0.avi").symlink_to(tmp / "v0.avi")
    return src, "video", "real/v0.avi"


CASES: dict[str, Setup] = {
    f.__name__: f
    for f in (folders_file, folders_dir, manifest_file, manifest_inside, manifest_folder, manifest_csv,
              dfb_frame, dfb_folder, video_file)
}


@pytest.mark.parametrize("case", list(CASES))
def test_symlink_is_refused_before_anything_is_copied(workspace: Workspace, tmp_path: Path, case: str) -> None:
    secret = write_image(tmp_path / "outside" / "secret.png", "outside the batch", 40)
    src, fmt, reported = CASES[case](tmp_path, secret)
    before = fingerprint(workspace)
    with pytest.raises(BatchRefused, match="failed checks: no_symlinks") as info:
        ingest_batch(src, "linked", workspace, CFG, fmt=fmt)
    rows = info.value.report.failures()[0].sample_rows
    assert reported in {r["symlink"] for r in rows}, rows
    assert f'"symlink": "{reported}"' in str(info.value)
    assert fingerprint(workspace) == before
    assert consistent(workspace) == []
    stored = [p.read_bytes() for root in (workspace.data_dir, workspace.dvc_remote_dir) for p in root.rglob("*")
              if p.is_file()]
    assert secret.read_bytes() not in stored


def test_a_linked_frames_root_is_allowed(workspace: Workspace, tmp_path: Path) -> None:
    """Datasets often live on a linked disk: the frames root itself may be a symlink, what lies below may not."""
    src = make_deepfakebench(tmp_path / "dfb")
    (tmp_path / "frames-link").symlink_to(src.parent)
    cfg = IngestConfig(frames_root=str(tmp_path / "frames-link"))
    result = ingest_batch(src, "dfb", workspace, cfg, fmt="deepfakebench")
    assert result.n_rows > 0 and consistent(workspace) == ["dfb"]
