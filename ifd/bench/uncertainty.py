"""Intervals, comparisons and upper-bound checks of a benchmark (issue 12), from the per-seed runs.

For every strategy: a 95% bootstrap interval of AA (`ifd.eval.bootstrap`: seeds and test images
resampled). Against the reference strategy (`lid` when present): the paired AA difference, its interval
and the verdict "above" / "below" / "within noise" — results.md words a claim only as the interval allows.
Upper bounds: a strategy whose paired difference to its own upper bound (LID and its variants:
`joint-lid`; the single-head Avalanche strategies: `joint-ce`) is "above" is listed in `bound_violations`,
a bug to explain rather than a result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ifd.bench.spec import RunResult
from ifd.eval.bootstrap import aa_replicates, compare, interval

REFERENCE = "lid"
SINGLE_HEAD = ("naive", "replay", "ewc", "lwf", "der", "gdumb", "agem")


def upper_bound(name: str) -> str | None:
    """The strategy that bounds `name` from above, if any."""
    if name.startswith("lid") or name == "finetune":
        return "joint-lid"
    if name in SINGLE_HEAD:
        return "joint-ce"
    return None


def boot_input(runs: Sequence[RunResult]) -> dict[int, Any]:
    """seed -> the last row's per-image scores (every seed has them) or -> that seed's AA (fallback)."""
    ok = [r for r in runs if r.ok and r.matrix]
    if ok and all(r.final_scores for r in ok):
        return {r.seed: r.final_scores for r in ok}
    out = {}
    for r in ok:
        last = r.matrix["auc"][-1]  # type: ignore[index]
        out[r.seed] = sum(last) / len(last)
    return out


def add_uncertainty(results: dict[str, Any], runs: Mapping[str, Sequence[RunResult]], reference: str = REFERENCE) -> None:
    """Fill `AA_ci95`, `AA_ci_method`, `vs_reference` per strategy and `bound_violations` in `results`."""
    strategies = results["strategies"]
    inputs = {name: boot_input(runs[name]) for name in strategies}
    ref = reference if reference in strategies else next(iter(strategies), None)
    for name, entry in strategies.items():
        reps, method = aa_replicates(inputs[name])
        entry["AA_ci95"] = interval(reps)
        entry["AA_ci_method"] = method
        if ref is not None and name != ref:
            entry["vs_reference"] = {"reference": ref, **(compare(inputs[name], inputs[ref]) or {})}
    violations = []
    for name in strategies:
        bound = upper_bound(name)
        if bound is None or bound not in strategies:
            continue
        diff = compare(inputs[name], inputs[bound])
        if diff is not None and diff["verdict"] == "above":
            violations.append({"strategy": name, "bound": bound, **diff})
    results["bound_violations"] = violations
    results["reference"] = ref
