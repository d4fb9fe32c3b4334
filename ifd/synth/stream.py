"""Write the synthetic forgery stream: one batch per generator family, in the batch format of CONTRACT.md.

Each task draws new reals, forges one fake per real with its family (the pair shares a source_id, and so
a split), and keeps only images whose content was never written before in the stream. Everything comes
from `cfg.seed`: the same config writes byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ifd.data.manifest import write_manifest
from ifd.errors import IfdError
from ifd.synth.config import SynthConfig

STREAM_FILE = "stream.json"
IMAGES_DIR = "images"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TaskPlan:
    """Task `index` of the stream: `name` (its folder), the family, and which repeat of it (`variant`)."""

    index: int
    name: str
    family: str
    variant: int


def plan_tasks(cfg: SynthConfig) -> list[TaskPlan]:
    """Task names and families in stream order; repeats of a family are numbered (`warp`, `warp2`, ...)."""
    from ifd.synth.families import DEFAULT_ORDER, expand_families

    # set names (`widened`, `lowfreq`) expand in place; unknown names fail here, with the known ones
    order = expand_families(cfg.families) if cfg.families else list(DEFAULT_ORDER)
    seen: dict[str, int] = {}
    plans = []
    for i in range(cfg.tasks):
        family = order[i % len(order)]
        variant = seen.get(family, 0)
        seen[family] = variant + 1
        plans.append(TaskPlan(i, family if variant == 0 else f"{family}{variant + 1}", family, variant))
    return plans


def write_stream(out: Path, cfg: SynthConfig, overwrite: bool = False) -> list[Path]:
    """Write `cfg.tasks` batches under `out` and `out/stream.json`; return the batch folders in order.

    `out` must be empty or absent, unless `overwrite` (then its previous content is removed).
    `stream.json` is written last, so its presence marks a complete stream.
    """
    out = Path(out)
    plans = plan_tasks(cfg)
    _prepare_out(out, overwrite)
    seen: set[str] = set()
    folders, described = [], []
    for plan in plans:
        folder, family_info = _write_task(out, plan, cfg, seen)
        folders.append(folder)
        described.append({"name": plan.name, **family_info})
    meta = {"format": FORMAT_VERSION, "tasks": [p.name for p in plans], "families": described, "config": cfg.model_dump()}
    (out / STREAM_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return folders


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise IfdError(f"{out} exists and is not a folder; give a new folder for the stream")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise IfdError(f"{out} is not empty; give an empty or new folder (or overwrite it on purpose)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _write_task(out: Path, plan: TaskPlan, cfg: SynthConfig, seen: set[str]) -> tuple[Path, dict]:
    from ifd.synth.families import create_family
    from ifd.synth.reals import draw_real

    def rng(purpose: int) -> np.random.Generator:
        return np.random.default_rng([cfg.seed, plan.index, purpose])

    n = cfg.per_class + max(2, cfg.per_class // 20)  # a margin for images dropped as duplicates
    real_rng = rng(0)
    drawn = [draw_real(cfg.size, real_rng) for _ in range(n)]
    reals = _quantise(np.stack([img for img, _ in drawn]))
    family = create_family(plan.family, plan.variant, rng(1))
    fakes = _quantise(family(reals.astype(np.float32) / 255.0, rng(2)))
    keep = _unique_pairs(reals, fakes, seen, cfg.per_class, plan.name)
    folder = out / plan.name
    (folder / IMAGES_DIR).mkdir(parents=True)
    splits = _split_sources(len(keep), cfg, rng(3))
    rows = []
    for j, (i, split) in enumerate(zip(keep, splits, strict=True)):
        source_id = f"{plan.name}-{j:05d}"
        for label, img, method in (("real", reals[i], drawn[i][1]), ("fake", fakes[i], plan.name)):
            rel = f"{IMAGES_DIR}/{label}_{j:06d}.png"
            (folder / rel).write_bytes(_png(img))
            rows.append({"path": rel, "label": label, "method": method, "split": split, "source_id": source_id})
    write_manifest(pd.DataFrame(rows), folder)
    return folder, family.describe()


def _quantise(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def _unique_pairs(reals: np.ndarray, fakes: np.ndarray, seen: set[str], want: int, task: str) -> list[int]:
    """Indices of the first `want` sources whose real and fake are both new content; records their hashes."""
    keep = []
    for i in range(len(reals)):
        hashes = {_digest(reals[i]), _digest(fakes[i])}
        if len(hashes) < 2 or hashes & seen:
            continue
        seen |= hashes
        keep.append(i)
        if len(keep) == want:
            return keep
    raise IfdError(f"task {task!r}: only {len(keep)} of {want} sources gave new content; try another seed")


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(img.tobytes() + repr(img.shape).encode()).hexdigest()


def _split_sources(n: int, cfg: SynthConfig, rng: np.random.Generator) -> list[str]:
    """A split per source: the fractions rounded, at least one val and one test source, shuffled."""
    n_test = max(1, int(round(n * cfg.test_fraction)))
    n_val = max(1, int(round(n * cfg.val_fraction)))
    labels = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
    return [labels[k] for k in rng.permutation(n)]


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
