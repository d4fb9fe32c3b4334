"""Tiny generated sources for ingest tests: manifest batches, folders, DeepfakeBench JSONs, videos.

Every image is seeded noise, so each name gets its own content and no two batches share an image.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

COLUMNS = ["path", "label", "method", "split", "source_id"]
SPLITS = ("train", "train", "test", "val")


def image_bytes(key: str, size: int | tuple[int, int] = 40, fmt: str = "PNG") -> bytes:
    """A noise image whose content depends on `key` only."""
    width, height = (size, size) if isinstance(size, int) else size
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, key: str, size: int | tuple[int, int] = 40, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(key, size, fmt))
    return path


def make_batch(folder: Path, n_sources: int = 4, size: int = 40, method: str = "gan") -> Path:
    """A valid manifest batch: per source a real and a fake image; sources cycle through train, train,
    test, val, so train and test hold both classes."""
    rows = []
    for i in range(n_sources):
        split, source = SPLITS[i % len(SPLITS)], f"{folder.name}-{i:03d}"
        for label in ("real", "fake"):
            rel = f"images/{label}_{i:03d}.png"
            write_image(folder / rel, f"{folder.resolve()}/{rel}", size)
            rows.append(
                {
                    "path": rel,
                    "label": label,
                    "method": method if label == "fake" else "camera",
                    "split": split,
                    "source_id": source,
                }
            )
    write_rows(folder, rows)
    return folder


def read_rows(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)


def write_rows(folder: Path, rows: list[dict[str, str]] | pd.DataFrame) -> None:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=COLUMNS)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "manifest.csv", index=False)


def make_folders(folder: Path, n_per_class: int = 5) -> Path:
    """real/*.png, fake/<method>/*.png and one fake directly in fake/."""
    for i in range(n_per_class):
        write_image(folder / "real" / f"r{i}.png", f"{folder}/real/{i}")
        method = "gan" if i % 2 else "diffusion"
        write_image(folder / "fake" / method / f"f{i}.png", f"{folder}/fake/{i}")
    write_image(folder / "fake" / "loose.jpg", f"{folder}/fake/loose", fmt="JPEG")
    (folder / "real" / "notes.txt").write_text("not an image")
    return folder


def make_deepfakebench(
    root: Path,
    frames: int = 20,
    videos: dict[str, dict[str, list[str]]] | None = None,
    compression: bool = True,
) -> Path:
    """A DeepfakeBench JSON under root/json/ with Windows-style frame paths relative to it, and the frames.

    `videos` maps split -> label_string -> video names (default: two real and two fake videos in train,
    one of each in test).
    """
    videos = videos or {
        "train": {"FF-real": ["000", "001"], "FF-DF": ["000_003", "001_002"]},
        "test": {"FF-real": ["002"], "FF-DF": ["002_005"]},
    }
    tree: dict = {}
    for split, by_label in videos.items():
        for label_string, names in by_label.items():
            entries = {}
            for name in names:
                rels = [f"frames\\{label_string}\\{name}\\{k:04d}.png" for k in range(frames)]
                for rel in rels:
                    path = root / "json" / rel.replace("\\", "/")
                    if not path.exists():
                        write_image(path, f"{root}/{rel}", 40)
                entries[name] = {"label": label_string, "frames": list(reversed(rels))}
            level = {"c23": entries, "c40": {}} if compression else entries
            tree.setdefault(label_string, {})[split] = level
    target = root / "json" / "FaceForensics++.json"
    target.write_text(json.dumps({"FaceForensics++": tree}))
    return target


def make_videos(folder: Path, n_per_class: int = 2, frames: int = 12, side: int = 128) -> Path:
    """real/ and fake/ MJPG .avi videos: real ones show a face (skimage's astronaut), fake ones noise."""
    import cv2
    from skimage import data

    face = cv2.resize(
        cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (side, side), interpolation=cv2.INTER_AREA
    )
    for label in ("real", "fake"):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for v in range(n_per_class):
            writer = cv2.VideoWriter(
                str(folder / label / f"v{v}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (side, side)
            )
            rng = np.random.default_rng([v, label == "fake"])
            for i in range(frames):
                if label == "real":
                    frame = np.clip(face.astype(int) + rng.integers(-8, 9, face.shape) + v, 0, 255).astype(
                        np.uint8
                    )
                    frame = np.roll(frame, i % 3, axis=1)
                else:
                    frame = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
                writer.write(frame)
            writer.release()
    return folder
