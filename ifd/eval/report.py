"""One report from one result matrix: retention metrics, per-task AUC/ACC, a text table and the plots.

Every path that produces a matrix (`ifd train`, the retrain flow, the benchmark's strategies) calls
`retention_summary` and `write_plots`, so their numbers and pictures mean the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ifd.eval.matrix import ResultMatrix
from ifd.eval.plots import forgetting_curves, matrix_heatmap
from ifd.eval.retention import aa_curve, summary


def retention_summary(matrix: ResultMatrix) -> dict[str, Any]:
    """AA, AF (last form; see ifd.eval.retention), AF_chaudhry, BWT on AUC, AA on ACC, the final rows and the AA curve."""
    auc, acc = matrix.rows("auc"), matrix.rows("acc")
    out: dict[str, Any] = {"tasks": list(matrix.task_names), **summary(auc)}
    out["AA_acc"] = summary(acc)["AA"]
    out["AF_acc"] = summary(acc)["AF"]
    out["final_auc"] = dict(zip(matrix.task_names, auc[-1], strict=True))
    out["final_acc"] = dict(zip(matrix.task_names, acc[-1], strict=True))
    out["aa_curve"] = aa_curve(auc)
    out["matrix"] = matrix.to_dict()
    return out


def summary_text(s: dict[str, Any]) -> str:
    """A few lines for a terminal: the headline, then one line per task."""
    lines = [
        f"tasks learned: {len(s['tasks'])}",
        f"AA (AUC, after the last task): {s['AA']:.3f}   AF: {s['AF']:.3f}   AF (Chaudhry): {s['AF_chaudhry']:.3f}   BWT: {s['BWT']:+.3f}",
        "per-task AUC / ACC now (AUC right after learning it):",
    ]
    first = {name: s["matrix"]["auc"][i][i] for i, name in enumerate(s["tasks"])}
    for name in s["tasks"]:
        lines.append(f"  {name:<20} {s['final_auc'][name]:.3f} / {s['final_acc'][name]:.3f}   ({first[name]:.3f})")
    return "\n".join(lines)


def write_plots(matrix: ResultMatrix, out_dir: Path, label: str = "detector") -> dict[str, str]:
    """matrix_auc.png (heatmap) and forgetting.png (per-task curves) in `out_dir`."""
    out_dir = Path(out_dir)
    heat = matrix_heatmap(matrix.rows("auc"), matrix.task_names, out_dir / "matrix_auc.png", title=f"{label}: AUC a[t][i]")
    curve = forgetting_curves({label: matrix.rows("auc")}, matrix.task_names, out_dir / "forgetting.png")
    return {"matrix_auc": str(heat), "forgetting": str(curve)}
