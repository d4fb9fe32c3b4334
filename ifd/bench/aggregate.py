"""Per-seed runs -> one entry per strategy of results.json (CONTRACT.md), through one report function.

Every run's matrix goes through `ifd.eval.report.retention_summary`, the function `ifd train` and the
retrain flow use, so a number means the same thing whichever strategy produced it. Means and sample
standard deviations (ddof = 1; 0 with one seed) are over seeds; `matrix_auc` is the element-wise mean.
AUC, AA, AF and BWT are fractions. AF is the "last" form, mean_{i<T} (a[i][i] - a[T][i]); the Chaudhry
form (max over earlier rows instead of the diagonal) is reported as `AF_chaudhry`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ifd.bench.spec import RunResult

AF_DEFINITION = (
    "AF = mean over tasks i < T of (a[i][i] - a[T][i]) on AUC (the 'last' form, as the papers comparing "
    "to SUR-LID; it equals Avalanche's StreamForgetting when computed on accuracy); AF_chaudhry = mean over "
    "i < T of (max_{l in [i, T)} a[l][i] - a[T][i]) (Chaudhry et al., ECCV 2018); BWT = -AF."
)


def stat(values: Sequence[float]) -> dict[str, float]:
    """{"mean", "std"} over seeds; std is the sample standard deviation (0 for a single seed)."""
    arr = np.asarray(values, dtype=float)
    std = float(np.std(arr, ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(np.mean(arr)), "std": std}


def mean_rows(rows_per_seed: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """Element-wise mean of lower-triangular matrices of the same shape (row t has t + 1 entries)."""
    return [np.mean([m[t] for m in rows_per_seed], axis=0).tolist() for t in range(len(rows_per_seed[0]))]


def mean_lists(lists: Sequence[Sequence[float]]) -> list[float]:
    return [round(float(v), 3) for v in np.mean(np.asarray(lists, dtype=float), axis=0)]


def _per_seed(r: RunResult, s: Mapping[str, Any]) -> dict[str, Any]:
    assert r.matrix is not None
    return {
        "seed": r.seed,
        **{k: s[k] for k in ("AA", "AF", "AF_chaudhry", "BWT", "AA_acc", "AF_acc")},
        "matrix_auc": r.matrix["auc"],
        "matrix_auc_video": r.matrix.get("auc_video"),
        "matrix_acc": r.matrix["acc"],
        "time_per_task_s": r.time_per_task_s,
        "eval_time_per_task_s": r.eval_time_per_task_s,
        "peak_rss_mb": r.peak_rss_mb,
        "replay_samples": r.replay_samples,
        "replay_bytes": r.replay_bytes,
        "wall_s": r.wall_s,
    }


def _aa_video(ok: Sequence[RunResult]) -> dict[str, float] | None:
    """AA on video-level AUC over seeds (`ifd.eval.video.video_summary`); None where no task has videos."""
    from ifd.eval.matrix import ResultMatrix
    from ifd.eval.video import video_summary

    values = [video_summary(ResultMatrix.from_dict(r.matrix or {}))["AA_video"] for r in ok]
    return None if any(v is None for v in values) else stat(values)


def aggregate_strategy(runs: Sequence[RunResult]) -> dict[str, Any] | None:
    """The results.json entry of one strategy from its runs (None when every seed failed)."""
    from ifd.eval.matrix import ResultMatrix
    from ifd.eval.report import retention_summary
    from ifd.eval.video import mean_video_rows

    ok = [r for r in runs if r.ok]
    if not ok:
        return None
    summaries = [retention_summary(ResultMatrix.from_dict(r.matrix or {})) for r in ok]
    names = summaries[0]["tasks"]
    final = {n: stat([s["final_auc"][n] for s in summaries]) for n in names}
    entry: dict[str, Any] = {key: stat([s[key] for s in summaries]) for key in ("AA", "AF", "BWT")}
    entry.update(
        {
            "matrix_auc": mean_rows([r.matrix["auc"] for r in ok if r.matrix]),
            "matrix_auc_video": mean_video_rows([r.matrix for r in ok if r.matrix]),
            "AA_video": _aa_video(ok),
            "time_per_task_s": mean_lists([r.time_per_task_s for r in ok]),
            "peak_rss_mb": max(r.peak_rss_mb for r in ok),
            "rss_after_imports_mb": max(float(r.notes.get("rss_after_imports_mb", 0.0)) for r in ok),
            "replay_bytes": max(r.replay_bytes for r in ok),
            "AF_chaudhry": stat([s["AF_chaudhry"] for s in summaries]),
            "AA_acc": stat([s["AA_acc"] for s in summaries]),
            "AF_acc": stat([s["AF_acc"] for s in summaries]),
            "matrix_acc": mean_rows([r.matrix["acc"] for r in ok if r.matrix]),
            "tasks": list(names),
            "final_auc": {n: final[n]["mean"] for n in names},
            "final_auc_std": {n: final[n]["std"] for n in names},
            "eval_time_per_task_s": mean_lists([r.eval_time_per_task_s for r in ok]),
            "replay_samples": max(r.replay_samples for r in ok),
            "replay_pixel_bytes": max(r.replay_pixel_bytes for r in ok),
            "wall_s": stat([r.wall_s for r in ok]),
            "seeds": [r.seed for r in ok],
            "per_seed": [_per_seed(r, s) for r, s in zip(ok, summaries, strict=True)],
            "notes": {k: v for k, v in ok[0].notes.items() if k != "open_set"},
        }
    )
    from ifd.bench.unknown_summary import unknown_summary

    unknown = unknown_summary(ok)
    if unknown is not None:
        entry["unknown"] = unknown
    failed = [r for r in runs if not r.ok]
    if failed:
        entry["errors"] = [{"seed": r.seed, "error": (r.error or "no result").splitlines()[0]} for r in failed]
    return entry


def build_results(
    stream: str, seeds: Sequence[int], runs: Mapping[str, Sequence[RunResult]], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """results.json: CONTRACT.md's keys (stream, seeds, strategies) plus the settings, the AF definition,
    the strategies that failed on every seed (`failed`, with their reasons), the 95% bootstrap intervals,
    the paired comparisons with the reference and the upper-bound violations (`ifd.bench.uncertainty`)."""
    strategies: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name, name_runs in runs.items():
        entry = aggregate_strategy(name_runs)
        if entry is None:
            failed[name] = next((r.error for r in name_runs if r.error), "no result") or "no result"
        else:
            strategies[name] = entry
    out = {
        "stream": stream,
        "seeds": list(seeds),
        "strategies": strategies,
        "failed": failed,
        "af_definition": AF_DEFINITION,
        "settings": dict(settings),
    }
    from ifd.bench.uncertainty import add_uncertainty

    add_uncertainty(out, runs)
    return finite(out)


def finite(obj: Any) -> Any:
    """NaN / inf -> None, so results.json is strict JSON (an AUC over one class only is undefined)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj
