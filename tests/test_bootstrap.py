"""Uncertainty (issue 12): the 95% bootstrap interval of AA and the paired comparison that decides whether
results.md may say "above" or "below"."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ifd.bench.spec import RunResult


def _scores(rng: np.random.Generator, shift: float, n: int = 40, tasks: int = 3) -> list[dict]:
    out = []
    for _ in range(tasks):
        y = np.r_[np.zeros(n), np.ones(n)].astype(int)
        s = np.r_[rng.normal(0, 1, n), rng.normal(shift, 1, n)].round(1)  # rounded: ties, as real scores have
        out.append({"y": y.tolist(), "score": s.tolist()})
    return out


def test_rank_auc_equals_sklearn_with_ties() -> None:
    from ifd.eval.bootstrap import rank_auc

    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, (7, 30)).astype(float), rng.integers(0, 4, (7, 20)).astype(float)
    expected = [roc_auc_score(np.r_[np.ones(30), np.zeros(20)], np.r_[p, q]) for p, q in zip(pos, neg, strict=True)]
    assert rank_auc(pos, neg) == pytest.approx(expected, abs=1e-12)


def test_interval_holds_the_estimate_and_narrows_with_more_images() -> None:
    from ifd.eval.bootstrap import aa_replicates, interval

    rng = np.random.default_rng(1)
    small = {s: _scores(rng, 1.0, n=20) for s in range(3)}
    large = {s: _scores(rng, 1.0, n=400) for s in range(3)}
    point = np.mean([roc_auc_score(t["y"], t["score"]) for s in small.values() for t in s])
    lo, hi = interval(aa_replicates(small)[0])
    assert lo < point < hi
    lo2, hi2 = interval(aa_replicates(large)[0])
    assert hi2 - lo2 < (hi - lo) / 2
    again = interval(aa_replicates(small)[0])
    assert again == [lo, hi]  # seeded: the same interval every time


def test_paired_comparison_says_above_only_when_the_interval_excludes_zero() -> None:
    from ifd.eval.bootstrap import compare

    rng = np.random.default_rng(2)
    base = {s: _scores(rng, 1.0) for s in range(3)}
    same = compare(base, base)
    assert same["ci95"] == [0.0, 0.0] and same["verdict"] == "within noise"
    better = {s: [{"y": t["y"], "score": (np.asarray(t["score"]) + 2.0 * np.asarray(t["y"])).tolist()} for t in v]
              for s, v in base.items()}
    assert compare(better, base)["verdict"] == "above" and compare(base, better)["verdict"] == "below"
    noisy = {s: _scores(np.random.default_rng(10 + s), 1.0) for s in range(3)}
    assert compare(noisy, base)["verdict"] == "within noise"  # same distribution, other draws


def _run(name: str, seed: int, scores: list[dict]) -> RunResult:
    aucs = [roc_auc_score(t["y"], t["score"]) for t in scores]
    rows = [aucs[: t + 1] for t in range(len(aucs))]
    return RunResult(strategy=name, seed=seed, matrix={"task_names": ["a", "b", "c"], "auc": rows, "acc": rows},
                     time_per_task_s=[1.0] * 3, eval_time_per_task_s=[1.0] * 3, peak_rss_mb=1.0, final_scores=scores)


def test_results_md_shows_intervals_and_words_claims_by_them() -> None:
    from ifd.bench.aggregate import build_results
    from ifd.bench.report_md import results_markdown
    from ifd.bench.schema import validate_results

    rng = np.random.default_rng(3)
    lid = [_scores(rng, 2.5) for _ in range(3)]
    runs = {
        "lid": [_run("lid", s, lid[s]) for s in range(3)],
        "naive": [_run("naive", s, _scores(rng, 0.5)) for s in range(3)],
        "lid-no-dr": [_run("lid-no-dr", s, [{"y": t["y"], "score": (np.asarray(t["score"]) + 1e-3).tolist()}
                                            for t in lid[s]]) for s in range(3)],
    }
    res = build_results("s", [0, 1, 2], runs, {})
    validate_results(res)
    lo, hi = res["strategies"]["lid"]["AA_ci95"]
    assert lo <= res["strategies"]["lid"]["AA"]["mean"] <= hi
    assert res["strategies"]["naive"]["vs_reference"]["verdict"] == "below"
    assert res["strategies"]["lid-no-dr"]["vs_reference"]["verdict"] == "within noise"
    assert res["strategies"]["lid"]["AA_ci_method"] == "images+seeds"
    md = results_markdown(res, {})
    naive_line = next(line for line in md.splitlines() if line.startswith("| naive |"))
    assert "below" in naive_line and "±" in naive_line and "[" in naive_line
    assert "within noise" in next(line for line in md.splitlines() if line.startswith("| lid-no-dr |"))
    assert '"above" / "below" only where the CI excludes 0' in md
