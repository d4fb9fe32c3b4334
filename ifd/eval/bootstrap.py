"""95% bootstrap intervals of AA and of AA differences between strategies (issue 12: uncertainty).

A replicate resamples the seeds (with replacement) and, within each seed, every task's test images (with
replacement, positives and negatives separately, so each replicate has both classes), recomputes every
task's AUC on the raw scores of the last row, and averages them: AA. The random draws depend only on
(the seed value, the task index, the class sizes) and the seed list, never on the strategy, so two
strategies scored on the same test images are resampled the same way: their difference is paired, and a
claim that one is "above" or "below" another holds only where the difference's interval excludes 0.
Runs without per-image scores fall back to resampling seeds only (method "seeds").
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

N_BOOT = 1000
LEVEL = 0.95


def rank_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUC of each row of positives (B, n1) against the same row of negatives (B, n0); ties count half."""
    n1, n0 = pos.shape[1], neg.shape[1]
    ranks = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(np.asarray(key, dtype=np.int64).tobytes()))


def task_replicates(y: Sequence[int], score: Sequence[float], seed: int, task: int, n_boot: int = N_BOOT) -> np.ndarray:
    """(n_boot,) AUCs of one task's test images resampled within each class."""
    y, s = np.asarray(y), np.asarray(score, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return np.full(n_boot, np.nan)
    rng = _rng(seed, task, len(pos), len(neg))
    ip = rng.integers(0, len(pos), (n_boot, len(pos)))
    ineg = rng.integers(0, len(neg), (n_boot, len(neg)))
    return rank_auc(pos[ip], neg[ineg])


def aa_replicates(per_seed: Mapping[int, Any], n_boot: int = N_BOOT) -> tuple[np.ndarray, str]:
    """(n_boot,) AA replicates and the method: per_seed maps seed -> final_scores (list per task) or -> AA."""
    seeds = sorted(per_seed)
    with_images = all(isinstance(per_seed[s], list) for s in seeds)
    if with_images:
        aa = np.stack([np.nanmean(np.stack([task_replicates(t["y"], t["score"], s, i, n_boot)
                                            for i, t in enumerate(per_seed[s])]), axis=0) for s in seeds])
    else:
        aa = np.stack([np.full(n_boot, float(per_seed[s] if not isinstance(per_seed[s], list) else np.nan)) for s in seeds])
    pick = _rng(len(seeds), *seeds).integers(0, len(seeds), (n_boot, len(seeds)))
    return aa[pick, np.arange(n_boot)[:, None]].mean(axis=1), ("images+seeds" if with_images else "seeds")


def interval(replicates: np.ndarray, level: float = LEVEL) -> list[float]:
    lo, hi = np.nanpercentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    return [float(lo), float(hi)]


def verdict(diff_interval: Sequence[float]) -> str:
    """'above' / 'below' when the interval of (A - B) excludes 0, else 'within noise'."""
    lo, hi = diff_interval
    return "above" if lo > 0 else "below" if hi < 0 else "within noise"


def compare(a: Mapping[int, Any], b: Mapping[int, Any], n_boot: int = N_BOOT) -> dict[str, Any] | None:
    """Paired AA difference A - B over the seeds both have: mean, 95% interval, verdict; None without common seeds."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    ra, ma = aa_replicates({s: a[s] for s in common}, n_boot)
    rb, mb = aa_replicates({s: b[s] for s in common}, n_boot)
    diff = ra - rb
    ci = interval(diff)
    return {"diff": float(np.nanmean(diff)), "ci95": ci, "verdict": verdict(ci), "seeds": common,
            "method": ma if ma == mb else "seeds"}
