"""Cost growth: learn time per increment against the task index, from a benchmark's results.

LID's increment learns the new task's data plus a replay count per batch; with `replay_per_batch` > 0
that count is fixed (the paper's per-old-task replay, `replay_per_batch: 0`, grows with the number of
tasks), so its time per increment should stay flat. Joint retraining learns every task seen so far at
each step, so its time grows linearly with the task index. The table gives both per task, and the
ratio of the last increment to the second (the issue's check: LID at task 10 within 1.3x of task 2).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FLAT_REPLAY_NOTE = (
    "LID runs with replay_per_batch = {n}: a fixed number of replay samples per batch, spread over the old "
    "(task, class) groups, so an increment's cost does not grow with the number of tasks (replay_per_batch: 0, "
    "the paper's 3 + 3 per old task per batch, grows)."
)


def flat_replay_count(cfg: Any) -> int:
    """The fixed replay count per batch the cost benchmark gives LID when none is set: half a batch."""
    return int(cfg.replay_per_batch) or max(2, int(cfg.batch_size) // 2)


def cost_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per strategy: seconds per increment (mean over seeds), their std, last / second ratio."""
    rows = []
    for name, e in results["strategies"].items():
        per_seed = [p["time_per_task_s"] for p in e.get("per_seed", [])] or [e["time_per_task_s"]]
        times = e["time_per_task_s"]
        std = [float(_std([s[t] for s in per_seed])) for t in range(len(times))]
        ratio = times[-1] / times[1] if len(times) > 1 and times[1] > 0 else None
        rows.append({"strategy": name, "time_per_task_s": times, "std_s": std, "last_over_second": ratio})
    return rows


def _std(values: list[float]) -> float:
    import numpy as np

    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def cost_markdown(rows: list[dict[str, Any]], results: Mapping[str, Any], note: str) -> str:
    n = max(len(r["time_per_task_s"]) for r in rows)
    s = results.get("settings", {})
    lines = [
        "# Cost growth: learn seconds per increment",
        "",
        f"Stream `{results['stream']}`, seeds {results['seeds']}, backbone `{s.get('backbone')}`, {s.get('img_size')} px, "
        f"{s.get('epochs')} epoch(s) per task, batch {s.get('batch_size')}; machine: {s.get('machine', {}).get('cpu')}, "
        f"{s.get('machine', {}).get('torch_threads')} torch thread(s); {s.get('date')}.",
        "",
        note,
        "",
        "| strategy | " + " | ".join(f"task {t + 1}" for t in range(n)) + " | last / task 2 |",
        "|---|" + "---:|" * (n + 1),
    ]
    for r in rows:
        cells = [f"{v:.2f}" for v in r["time_per_task_s"]]
        ratio = "-" if r["last_over_second"] is None else f"{r['last_over_second']:.2f}x"
        lines.append(f"| {r['strategy']} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines) + "\n"


def plot_cost(rows: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for r in rows:
        x = list(range(1, len(r["time_per_task_s"]) + 1))
        ax.errorbar(x, r["time_per_task_s"], yerr=r["std_s"], marker="o", ms=3, capsize=2, label=r["strategy"])
    ax.set_xlabel("task index (increment)")
    ax.set_ylabel("learn time per increment (s)")
    ax.set_title("Cost per increment")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_cost(results: Mapping[str, Any], out: Path, note: str, stem: str = "cost_growth") -> dict[str, str]:
    """`<stem>.md`, `<stem>.png` and `<stem>.json` in folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = cost_rows(results)
    (out / f"{stem}.json").write_text(json.dumps({"note": note, "rows": rows}, indent=1) + "\n")
    (out / f"{stem}.md").write_text(cost_markdown(rows, results, note) + f"\n![cost per increment]({stem}.png)\n")
    plot_cost(rows, out / f"{stem}.png")
    return {k: str(out / f"{stem}.{k}") for k in ("md", "png", "json")}
