"""PNG plots of a result matrix: the a[t][i] heatmap and the forgetting curves (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: object, out: Path, dpi: int = 110) -> Path:
    """Lay out, write `fig` as PNG to `out` (parents created) and close it."""
    plt = _plt()
    fig.tight_layout()  # type: ignore[attr-defined]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)  # type: ignore[attr-defined]
    plt.close(fig)
    return out


def matrix_heatmap(rows: Sequence[Sequence[float]], names: Sequence[str], out: Path, title: str = "AUC a[t][i]") -> Path:
    """Heatmap of the lower-triangular matrix, one annotated cell per (trained up to t, tested on i)."""
    plt = _plt()
    n = len(rows)
    grid = np.full((n, n), np.nan)
    for t, row in enumerate(rows):
        grid[t, : len(row)] = row
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 0.9 * n + 1.8))
    im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis")
    for t in range(n):
        for i in range(len(rows[t])):
            ax.text(i, t, f"{grid[t, i]:.2f}", ha="center", va="center", color="white" if grid[t, i] < 0.8 else "black", fontsize=8)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), [f"after {nm}" for nm in names])
    ax.set_xlabel("tested on task i")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return save_figure(fig, out)


def forgetting_curves(
    curves: Mapping[str, Sequence[Sequence[float]]], names: Sequence[str], out: Path, title: str = "AUC of each task as later tasks are learned"
) -> Path:
    """One panel per strategy (or one for a single run): a[t][i] against t for every task i, plus AA_t."""
    plt = _plt()
    k = len(curves)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k + 1, 3.6), squeeze=False, sharey=True)
    for ax, (label, rows) in zip(axes[0], curves.items(), strict=True):
        n = len(rows)
        for i in range(n):
            ax.plot(range(i, n), [rows[t][i] for t in range(i, n)], marker="o", ms=3, lw=1, label=names[i])
        ax.plot(range(n), [float(np.mean(rows[t][: t + 1])) for t in range(n)], color="black", lw=2, ls="--", label="AA")
        ax.set_title(label)
        ax.set_xticks(range(n), [str(t) for t in range(n)])
        ax.set_xlabel("after task t")
        ax.set_ylim(0.4, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("AUC")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    return save_figure(fig, out)
