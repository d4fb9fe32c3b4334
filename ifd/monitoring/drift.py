"""Drift statistics, written on numpy/scipy so they are tested here (Evidently fails to import on
pandas 3 and alibi-detect pins numpy < 2; see STACK.md).

- PSI (population stability index) of p(fake) over fixed bins on [0, 1]:
  sum_b (q_b - r_b) * ln(q_b / r_b); by a common rule of thumb < 0.1 stable, 0.1-0.2 moderate, > 0.2 shifted.
  It is biased upward on small samples, so the monitor pairs it with the KS test's p-value.
- Two-sample Kolmogorov-Smirnov test on p(fake) (scipy).
- MMD^2 between pooled embeddings with an RBF kernel (Gretton et al., JMLR 2012), bandwidth by the median
  heuristic on the pooled sample, and a permutation p-value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

EPS = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of `current` against `reference`, both scores in [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    r = np.histogram(np.clip(reference, 0, 1), edges)[0].astype(np.float64)
    q = np.histogram(np.clip(current, 0, 1), edges)[0].astype(np.float64)
    r = np.clip(r / max(r.sum(), 1.0), EPS, None)
    q = np.clip(q / max(q.sum(), 1.0), EPS, None)
    return float(np.sum((q - r) * np.log(q / r)))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """(KS statistic, p-value)."""
    res = stats.ks_2samp(reference, current)
    return float(res.statistic), float(res.pvalue)


def _sq_dists(x: np.ndarray) -> np.ndarray:
    n2 = np.sum(x * x, axis=1)
    return np.maximum(n2[:, None] + n2[None, :] - 2.0 * x @ x.T, 0.0)


def _mmd2_from_kernel(k: np.ndarray, n: int) -> float:
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    m = k.shape[0] - n
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2.0 * kxy.mean()
    )


def mmd_test(
    reference: np.ndarray, current: np.ndarray, n_permutations: int = 200, max_samples: int = 400, seed: int = 0
) -> tuple[float, float]:
    """(unbiased MMD^2, permutation p-value) between two sets of embedding rows."""
    rng = np.random.default_rng(seed)
    x = _subsample(np.asarray(reference, dtype=np.float64), max_samples, rng)
    y = _subsample(np.asarray(current, dtype=np.float64), max_samples, rng)
    if len(x) < 2 or len(y) < 2:
        return 0.0, 1.0
    z = np.concatenate([x, y])
    d = _sq_dists(z)
    bandwidth = np.median(d[np.triu_indices_from(d, k=1)]) or 1.0
    k = np.exp(-d / bandwidth)
    n = len(x)
    observed = _mmd2_from_kernel(k, n)
    exceed = 0
    for _ in range(n_permutations):
        p = rng.permutation(len(z))
        exceed += _mmd2_from_kernel(k[np.ix_(p, p)], n) >= observed
    return observed, float((exceed + 1) / (n_permutations + 1))


def _subsample(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return a if len(a) <= k else a[rng.choice(len(a), k, replace=False)]


@dataclass
class DriftReport:
    n_reference: int
    n_current: int
    psi: float
    ks_statistic: float
    ks_pvalue: float
    mmd2: float
    mmd_pvalue: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def drift_report(
    ref_scores: np.ndarray, cur_scores: np.ndarray, ref_emb: np.ndarray, cur_emb: np.ndarray, n_permutations: int = 200, seed: int = 0
) -> DriftReport:
    """All drift statistics of one window against the reference."""
    ks_stat, ks_p = ks(ref_scores, cur_scores)
    mmd2, mmd_p = mmd_test(ref_emb, cur_emb, n_permutations=n_permutations, seed=seed)
    return DriftReport(len(ref_scores), len(cur_scores), psi(ref_scores, cur_scores), ks_stat, ks_p, mmd2, mmd_p)
