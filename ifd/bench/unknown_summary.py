"""Unknown-generator AUC over seeds, from the open-set reports LID runs keep with `ifd bench --open-set`.

After each task t but the last, the run scored task t+1 (not yet learned) as an unseen generator with every
registered unknown score (ifd/eval/unknown), on val (where a score is chosen) and on test (the report). This
module turns the per-seed reports into mean ± std per (step, score) for results.json and one Markdown table
per strategy: rows are the unseen families, columns the scores, cells the test AUC of all the unseen task's
images (its reals included, drawn like every known task's) and, in brackets, of its fakes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ifd.bench.aggregate import stat
from ifd.bench.spec import RunResult

KEYS = {"auc": "unknown_auc_by_method", "auc_val": "unknown_auc_val_by_method",
        "fake_auc": "unknown_fake_auc_by_method", "fake_auc_val": "unknown_fake_auc_val_by_method"}


def unknown_summary(runs: Sequence[RunResult]) -> dict[str, Any] | None:
    """{"steps": [{"after", "unseen", "auc": {score: stat}, "auc_val": ..., "fake_auc": ..., "fake_auc_val": ...}],
    "mean": {key: {score: stat of the per-seed mean over steps}}}; None when no run holds open-set reports."""
    reports = [[step for step in r.notes.get("open_set") or [] if step.get("unseen")] for r in runs if r.ok]
    reports = [rep for rep in reports if rep]  # the last task's report has no unseen task
    if not reports:
        return None
    n_steps = min(len(rep) for rep in reports)
    steps: list[dict[str, Any]] = []
    for t in range(n_steps):
        first = reports[0][t]
        step: dict[str, Any] = {"after": first.get("after"), "unseen": first.get("unseen")}
        for key, field in KEYS.items():
            labels = sorted(set.intersection(*(set(rep[t].get(field) or {}) for rep in reports)))
            step[key] = {lab: stat([float(rep[t][field][lab]) for rep in reports]) for lab in labels}
        steps.append(step)
    mean: dict[str, dict[str, dict[str, float]]] = {}
    for key, field in KEYS.items():
        labels = sorted(set.intersection(*(set(s[key]) for s in steps))) if steps else []
        mean[key] = {
            lab: stat([sum(float(rep[t][field][lab]) for t in range(n_steps)) / n_steps for rep in reports])
            for lab in labels
        }
    return {"steps": steps, "mean": mean, "seeds": len(reports)}


def unknown_markdown(strategies: Mapping[str, Any]) -> list[str]:
    """One table per strategy with an `unknown` entry; [] when none has one."""
    lines: list[str] = []
    for name, entry in strategies.items():
        summary = entry.get("unknown")
        if not summary:
            continue
        labels = list(summary["mean"]["auc"])
        if not lines:
            lines += ["", "## Unknown-generator AUC (`--open-set`)", "",
                      "After each task, the next, not yet learned family is the unseen generator; every score is fitted "
                      "on what the memory budget holds. Test AUC (all its images; fakes only in brackets), mean ± std "
                      "over seeds; the last row is each seed's mean over steps. Val numbers are in results.json."]
        lines += ["", f"### {name} ({summary['seeds']} seed(s))", "",
                  "| unseen family | " + " | ".join(f"`{lab}`" for lab in labels) + " |",
                  "|---|" + "---:|" * len(labels)]
        rows = [(", ".join(s.get("unseen") or []), s) for s in summary["steps"]] + [("mean", summary["mean"])]
        for label, cells in rows:
            lines.append(f"| {label} | " + " | ".join(_cell(cells["auc"].get(lab), cells["fake_auc"].get(lab))
                                                     for lab in labels) + " |")
    return lines


def _cell(all_images: Mapping[str, float] | None, fakes: Mapping[str, float] | None) -> str:
    if not all_images:
        return "-"
    text = f"{all_images['mean']:.3f} ± {all_images['std']:.3f}"
    return text + (f" ({fakes['mean']:.3f})" if fakes else "")
