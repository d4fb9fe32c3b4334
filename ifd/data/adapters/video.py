"""`video` format: video files under `real/` and `fake/` (optionally `fake/<method>/`).

Per video, `cfg.frames_per_video` frames are sampled evenly over its length (decoded with OpenCV); in
each, the largest face found by a boosted cascade of multi-block LBP features (Viola & Jones, CVPR 2001;
Liao et al., ICB 2007) is cropped with `cfg.face_margin` and resized to `cfg.image_size`. The cascade is
the frontal-face model that ships with scikit-image: OpenCV 5 no longer bundles its Haar cascades
(`cv2.CascadeClassifier` is gone from the main package), and this one needs no download.

A frame without a face falls back to a centre crop and is counted in the notes (`no_face_frames`), so
a reviewer sees how much of a batch is not faces. source_id is the video's path under the folder, and
splits are drawn per video, seeded. A symlink under real/ or fake/ refuses the batch before any video is read.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from ifd.data.adapters.base import (
    ADAPTERS,
    AdapterReport,
    ContentWriter,
    draw_splits,
    even_indices,
    finish,
    labelled_files,
)
from ifd.data.ingest_config import IngestConfig
from ifd.errors import BatchRefused

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
DETECT_SIDE = 256  # faces are searched on a copy of the frame at most this large, for speed


@ADAPTERS.register("video")
def convert(src: Path, staging: Path, cfg: IngestConfig) -> AdapterReport:
    """Sample, face-crop and write the frames of every video under `src` into `staging`."""
    import cv2

    files, skipped = labelled_files(src, VIDEO_EXTENSIONS)
    splits = draw_splits({f.rel: f.label for f in files}, cfg.split_fractions, cfg.seed)
    cascade = face_cascade()
    writer, rows, unreadable, no_face = ContentWriter(staging), [], [], 0
    for f in files:
        frames = read_even_frames(f.path, cfg.frames_per_video)
        if not frames:
            unreadable.append(f.rel)
            continue
        stem = PurePosixPath(f.rel).with_suffix("").as_posix()
        for index, frame in frames:
            crop, found = crop_face(frame, cascade, cfg.face_margin, cfg.image_size)
            no_face += not found
            ok, png = cv2.imencode(".png", crop)
            rel = f"frames/{stem}/{index:06d}.png"
            if ok and writer.write(rel, png.tobytes()):
                rows.append(
                    {
                        "path": rel,
                        "label": f.label,
                        "method": f.method,
                        "split": splits[f.rel],
                        "source_id": f.rel,
                    }
                )
    if unreadable:
        raise BatchRefused(
            f"{src}: OpenCV cannot read {len(unreadable)} video(s): {', '.join(unreadable[:10])}"
        )
    notes = {
        "videos": len(files),
        "frames": len(rows),
        "no_face_frames": no_face,
        "duplicate_frames_dropped": writer.duplicates,
        "skipped_files": skipped,
        "videos_per_split": dict(sorted(Counter(splits.values()).items())),
        "seed": cfg.seed,
    }
    return finish(staging, rows, "video", notes)


def read_even_frames(path: Path, k: int) -> list[tuple[int, Any]]:
    """(index, BGR frame) for `k` frames spread evenly over the video; [] when OpenCV cannot read it."""
    import cv2

    n = _frame_count(path)
    wanted = set(even_indices(n, k))
    if not wanted:
        return []
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        for index in range(max(wanted) + 1):
            if not cap.grab():
                break
            if index in wanted:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    frames.append((index, frame))
    finally:
        cap.release()
    return frames


def _frame_count(path: Path) -> int:
    """Frames that can actually be grabbed; the container's count is only trusted when it is positive."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n > 0:
            return n
        while cap.grab():
            n += 1
        return max(n, 0)
    finally:
        cap.release()


def face_cascade() -> Any:
    """scikit-image's bundled LBP frontal-face cascade."""
    from skimage import data, feature

    return feature.Cascade(data.lbp_frontal_face_cascade_filename())


def find_face(frame: Any, cascade: Any) -> tuple[float, float, float] | None:
    """(centre x, centre y, side) of the largest face in a BGR frame, in frame pixels; None without one."""
    import cv2
    import numpy as np

    height, width = frame.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    faces = cascade.detect_multi_scale(
        img=gray.astype(np.float32) / 255.0,
        scale_factor=1.2,
        step_ratio=1,
        min_size=(20, 20),
        max_size=gray.shape,
        min_neighbor_number=4,
    )
    if not faces:
        return None
    box = max(faces, key=lambda f: f["width"] * f["height"])
    side = max(box["width"], box["height"]) / scale
    return (box["c"] + box["width"] / 2) / scale, (box["r"] + box["height"] / 2) / scale, side


def crop_face(frame: Any, cascade: Any, margin: float, size: int) -> tuple[Any, bool]:
    """A `size` x `size` crop around the largest face (box grown by `margin` per side), or of the centre."""
    import cv2

    height, width = frame.shape[:2]
    face = find_face(frame, cascade)
    if face is not None:
        cx, cy, box_side = face
        side = min(int(round(box_side * (1 + 2 * margin))), width, height)
    else:
        side = min(width, height)
        cx, cy = width / 2, height / 2
    x0 = int(min(max(cx - side / 2, 0), width - side))
    y0 = int(min(max(cy - side / 2, 0), height - side))
    crop = frame[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp), face is not None
