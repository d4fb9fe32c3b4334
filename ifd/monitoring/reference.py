"""The monitoring reference of a model version: its p(fake) scores and pooled embeddings on the validation
splits of every task it learned, plus the calibrated rate at which it flags known images as unknown.

Built when a version is registered (and cached next to the prediction log, keyed by version), so the
drift tests compare live traffic with what the model saw on known generators.

Always val, never test (test is read for reports only): a batch without val rows uses the seeded hold-out
of its train sources that training used as its val split (ifd/train/val_split.py `with_val`), so the
reference is made of images the model was not trained on. A batch whose train split has too few sources
to hold one out is refused by `with_val` with an error naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ifd.data.tasks import TaskData


@dataclass
class Reference:
    version: str
    p_fake: np.ndarray
    embeddings: np.ndarray
    unknown_rate: float
    unknown_scores: np.ndarray

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, version=np.array(self.version), p_fake=self.p_fake, embeddings=self.embeddings.astype(np.float16),
                            unknown_rate=np.array(self.unknown_rate), unknown_scores=self.unknown_scores)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> Reference:
        with np.load(path) as d:
            return cls(str(d["version"]), d["p_fake"].astype(np.float64), d["embeddings"].astype(np.float32),
                       float(d["unknown_rate"]), d["unknown_scores"].astype(np.float64))


def build_reference(scorer: object, tasks: Sequence[TaskData], version: str, per_task: int = 200) -> Reference:
    """Score up to `per_task` rows of every task's val split (its seeded hold-out when it has no val rows)
    with `scorer` (an `ifd.inference.scorer.DetectorScorer`)."""
    from ifd.train.val_split import with_val

    ps, zs, flags, us = [], [], [], []
    for task in tasks:
        rows = with_val(task).split("val").head(per_task)
        scores = scorer.score([task.root / p for p in rows["path"]])  # type: ignore[attr-defined]
        ps.append(scores.p_fake)
        zs.append(scores.embeddings)
        flags.append(scores.unknown)
        us.append(scores.unknown_score)
    flagged = np.concatenate(flags)
    return Reference(version, np.concatenate(ps), np.concatenate(zs), float(flagged.mean()) if len(flagged) else 0.0,
                     np.concatenate(us))
