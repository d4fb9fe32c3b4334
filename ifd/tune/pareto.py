"""The Pareto front of (AA up, AF down) over finished trials: the rows, a text table and a matplotlib PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def non_dominated(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (AA, AF) points no other point beats on both (higher AA, lower AF), by AF."""
    front = [
        i
        for i, (aa, af) in enumerate(points)
        if not any((a2 >= aa and f2 <= af) and (a2 > aa or f2 < af) for a2, f2 in points)
    ]
    return sorted(front, key=lambda i: points[i][1])


def front_text(rows: Sequence[dict[str, Any]]) -> str:
    """One line per Pareto-optimal trial: number, AA, AF, score, the parameters."""
    lines = ["Pareto front on the val matrix (AA up, AF down):", f"  {'trial':>5}  {'AA':>6}  {'AF':>7}  params"]
    for r in rows:
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(r["params"].items()))
        lines.append(f"  {r['trial']:>5}  {r['AA']:.3f}  {r['AF']:+.3f}  {params}")
    return "\n".join(lines)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def plot_front(points: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]], out: Path, title: str) -> Path:
    """AF (x) against AA (y) for every finished trial; the front highlighted and joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ifd.eval.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.scatter([p["AF"] for p in points], [p["AA"] for p in points], s=18, color="0.6", label="trials")
    ordered = sorted(front, key=lambda p: p["AF"])
    ax.plot([p["AF"] for p in ordered], [p["AA"] for p in ordered], "o-", color="tab:red", ms=5, label="Pareto front")
    for p in ordered:
        ax.annotate(str(p["trial"]), (p["AF"], p["AA"]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel("AF (average forgetting, lower is better)")
    ax.set_ylabel("AA (average AUC, higher is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)
