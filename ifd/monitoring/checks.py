"""The monitor's checks, each a pure function of numbers -> (gauge values, alerts).

- score drift: PSI and KS of the window's p(fake) against the reference;
- embedding drift: MMD permutation test of pooled embeddings against the reference;
- unknown generator: share of recent images beyond the unknown threshold, against the calibrated rate;
- forgetting: each task's holdout AUC now against its registered value;
- shadow: champion/challenger agreement and, with labelled feedback, the AUC of both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from ifd.eval.scoring import auc_score
from ifd.monitoring.alerts import Alert
from ifd.monitoring.drift import drift_report
from monitoring.policy import MonitorPolicy

Result = tuple[dict[str, Any], list[Alert]]
INGEST_HINT = "ingest a batch of the new generator (`ifd ingest`) and retrain (`ifd retrain NAME`)"


def check_drift(ref_p: np.ndarray, ref_z: np.ndarray, p: np.ndarray, z: np.ndarray, policy: MonitorPolicy, version: str) -> Result:
    pol = policy.drift
    if len(p) < pol.min_samples:
        return {"drift": f"not judged: {len(p)} < {pol.min_samples} recent images"}, []
    rep = drift_report(ref_p, p, ref_z, z, n_permutations=pol.permutations)
    values = {"ifd_score_psi": rep.psi, "ifd_score_ks_pvalue": rep.ks_pvalue, "ifd_embedding_mmd_pvalue": rep.mmd_pvalue, **rep.to_dict()}
    alerts = []
    if rep.ks_pvalue < pol.ks_pvalue_alert and rep.psi > pol.psi_alert:
        alerts.append(Alert("score_drift", f"p(fake) distribution moved: PSI {rep.psi:.3f}, KS p {rep.ks_pvalue:.2g}",
                            rep.psi, pol.psi_alert, version, "look at the recent inputs; if a new source or generator appears, " + INGEST_HINT,
                            rep.to_dict()))
    if rep.mmd_pvalue < pol.mmd_pvalue_alert:
        alerts.append(Alert("embedding_drift", f"embedding distribution moved: MMD^2 {rep.mmd2:.4f}, p {rep.mmd_pvalue:.2g}",
                            rep.mmd_pvalue, pol.mmd_pvalue_alert, version, "inputs differ from what the model learned; " + INGEST_HINT,
                            rep.to_dict()))
    return values, alerts


def check_unknown(win: Any, ref: Any, policy: MonitorPolicy, version: str) -> Result:
    """Three ways a generator the detector never learned shows in a window (`win`: the prediction log's
    Window; `ref`: the version's Reference), any one raises the alert:
    - within a predicted class, the embeddings differ from the reference's images of that class (MMD
      permutation test per class, Bonferroni over the two): an unseen generator's fakes are mostly scored
      real, so they change what "real" looks like without moving p(fake) much;
    - more images beyond the calibrated unknown threshold than its calibrated rate (binomial test);
    - unknown scores shifted upward as a whole against the reference's (one-sided KS).
    On the synthetic stream single images of an unseen family are hard to tell apart (benchmarks/README.md);
    a window of them much less so."""
    pol = policy.unknown
    n = len(win)
    if n < pol.min_images:
        return {"unknown": f"not judged: {n} < {pol.min_images} recent images"}, []
    k = int(np.sum(win.unknown))
    share = k / n
    p_share = float(stats.binomtest(k, n, max(ref.unknown_rate, 1e-6), alternative="greater").pvalue)
    # alternative="less": the window's CDF lies below the reference's, i.e. its scores are larger
    p_shift = float(stats.ks_2samp(win.unknown_scores, ref.unknown_scores, alternative="less").pvalue)
    per_class = _class_drift(win, ref, policy)
    values: dict[str, Any] = {"ifd_unknown_share": share, "unknown_expected_rate": ref.unknown_rate, "unknown_share_pvalue": p_share,
                              "unknown_shift_pvalue": p_shift, "unknown_n": n}
    values.update({f"unknown_{c}_mmd_pvalue": p for c, p in per_class.items()})
    reasons = []
    moved = {c: p for c, p in per_class.items() if p * len(per_class) < policy.drift.mmd_pvalue_alert}
    if moved:
        reasons.append("images scored " + " and ".join(moved) + " no longer look like the known generators' images of that class "
                       f"(MMD p {', '.join(f'{p:.2g}' for p in moved.values())})")
    if share > pol.max_share and p_share < pol.pvalue_alert:
        reasons.append(f"{share:.0%} of {n} recent images lie beyond every known cluster (expected {ref.unknown_rate:.0%}, p {p_share:.2g})")
    if p_shift < pol.pvalue_alert:
        reasons.append(f"recent images lie further from every known cluster than known images (KS p {p_shift:.2g})")
    if not reasons:
        return values, []
    return values, [Alert("unknown_generator", "; ".join(reasons), share, pol.max_share, version,
                          "a generator the detector never learned may be in the traffic: " + INGEST_HINT, {"per_class_mmd_pvalue": per_class})]


def _class_drift(win: Any, ref: Any, policy: MonitorPolicy) -> dict[str, float]:
    """MMD permutation p-value of each predicted class's embeddings, window vs reference (classes with
    at least `unknown.min_per_class` images on both sides)."""
    from ifd.monitoring.drift import mmd_test

    out = {}
    for name, w_mask, r_mask in (
        ("real", win.p_fake < policy.threshold, ref.p_fake < policy.threshold),
        ("fake", win.p_fake >= policy.threshold, ref.p_fake >= policy.threshold),
    ):
        if w_mask.sum() >= policy.unknown.min_per_class and r_mask.sum() >= policy.unknown.min_per_class:
            out[name] = mmd_test(ref.embeddings[r_mask], win.embeddings[w_mask], n_permutations=policy.drift.permutations)[1]
    return out


def check_forgetting(now: Mapping[str, float], registered: Mapping[str, float], policy: MonitorPolicy, version: str) -> Result:
    drops = {t: registered[t] - now[t] for t in registered if t in now}
    worst = max(drops.values(), default=0.0)
    values = {"ifd_forgetting_max_drop": worst, "holdout_auc": dict(now), "registered_auc": dict(registered)}
    bad = {t: d for t, d in drops.items() if d > policy.forgetting.max_drop}
    alerts = [
        Alert("forgetting", f"task {t!r}: holdout AUC {now[t]:.3f} is {d:.3f} below its registered {registered[t]:.3f}",
              d, policy.forgetting.max_drop, version, "roll back (`ifd rollback`) or retrain with more replay", {"task": t})
        for t, d in sorted(bad.items())
    ]
    return values, alerts


def shadow_report(pairs: Sequence[tuple[float, float, str | None]], threshold: float) -> dict[str, Any]:
    """Agreement of champion and shadow labels; AUC of both where feedback labels exist."""
    if not pairs:
        return {"shadow_pairs": 0}
    c = np.array([a for a, _, _ in pairs])
    s = np.array([b for _, b, _ in pairs])
    out: dict[str, Any] = {"shadow_pairs": len(pairs), "ifd_shadow_agreement": float(np.mean((c >= threshold) == (s >= threshold)))}
    labelled = [(a, b, lab) for a, b, lab in pairs if lab is not None]
    out["feedback_labels"] = len(labelled)
    if labelled:
        y = np.array([lab == "fake" for _, _, lab in labelled], dtype=int)
        out["champion_auc"] = auc_score(y, np.array([a for a, _, _ in labelled]))
        out["challenger_auc"] = auc_score(y, np.array([b for _, b, _ in labelled]))
    return out
