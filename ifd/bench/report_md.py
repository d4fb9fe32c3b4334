"""results.md and the figures of a benchmark: one table for every strategy, a heatmap per strategy, the
forgetting curves of all strategies in one figure (`ifd.eval.plots`) and AA after each task."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ifd.bench.aggregate import AF_DEFINITION


def safe_name(name: str) -> str:
    """A strategy name as a file name (`lid:official` -> `lid_official`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def write_plots(results: Mapping[str, Any], out: Path) -> dict[str, str]:
    """heatmaps/<strategy>.png, forgetting_curves.png and aa_curves.png under `out`."""
    from ifd.eval.plots import forgetting_curves, matrix_heatmap

    out = Path(out)
    paths: dict[str, str] = {}
    curves = {}
    for name, entry in results["strategies"].items():
        rows = [[float("nan") if a is None else a for a in row] for row in entry["matrix_auc"]]
        path = out / "heatmaps" / f"{safe_name(name)}.png"
        matrix_heatmap(rows, entry["tasks"], path, title=f"{name}: AUC a[t][i], mean of {len(entry['seeds'])} seed(s)")
        paths[f"heatmap:{name}"] = str(path.relative_to(out))
        curves[name] = rows
    if curves:
        names = next(iter(results["strategies"].values()))["tasks"]
        forgetting_curves(curves, names, out / "forgetting_curves.png")
        paths["forgetting_curves"] = "forgetting_curves.png"
        aa_curves(curves, out / "aa_curves.png")
        paths["aa_curves"] = "aa_curves.png"
    return paths


def aa_curves(curves: Mapping[str, list[list[float]]], out: Path) -> Path:
    """AA_t (mean AUC over the tasks seen so far) against t, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colors = plt.get_cmap("tab20").colors
    n = 0
    for k, (name, rows) in enumerate(curves.items()):
        n = max(n, len(rows))
        style = "-" if name.startswith("lid") else "--" if name in ("finetune", "joint", "joint-ce", "joint-lid") else ":"
        ax.plot(range(len(rows)), [float(np.nanmean(r)) for r in rows], style, marker="o", ms=3,
                color=colors[k % len(colors)], label=name)
    ax.set_xticks(range(n))
    ax.set_xlabel("after task t")
    ax.set_ylabel("AA_t (AUC)")
    ax.set_title("Average AUC over the tasks seen so far")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def mean_std(s: Mapping[str, float] | None) -> str:
    """`mean ± std` of a results.json statistic, `-` when missing."""
    return "-" if s is None or s.get("mean") is None else f"{s['mean']:.3f} ± {s['std']:.3f}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _tuned_lines(params: Mapping[str, Any]) -> list[str]:
    """One line per strategy that ran with its own (tuned on val) values; LID's variants inherit `lid`'s."""
    if not params:
        return []
    lines = ["", "Per-strategy values (`--baseline-params`; tuned on val by ifd/tune/strategies.py when that made the file):"]
    for name, values in params.items():
        lines.append(f"- `{name}`: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))
    return lines


def _ci(ci: list[float] | None) -> str:
    return "-" if not ci or ci[0] is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _versus(v: Mapping[str, Any] | None) -> str:
    """`+0.012 [0.004, 0.020] above` (the verdict only as the interval allows); `-` for the reference."""
    if not v or v.get("diff") is None:
        return "-"
    return f"{v['diff']:+.3f} {_ci(v['ci95'])} {v['verdict']}"


def results_markdown(results: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The benchmark as Markdown: settings, the table, bound violations, failures, definitions, figures."""
    strategies = results["strategies"]
    ref = results.get("reference") or "lid"
    tasks = next(iter(strategies.values()))["tasks"] if strategies else []
    s = results.get("settings", {})
    lines = [
        f"# Benchmark on `{results['stream']}`",
        "",
        *(["**Measured on the val split**: a selection run (presets, settings), not a report; test was not read.", ""]
          if s.get("eval_split") == "val" else []),
        f"Seeds {results['seeds']}; {len(tasks)} tasks in stream order ({', '.join(tasks)}). "
        f"Shared: backbone `{s.get('backbone')}`, {s.get('img_size')} px, {s.get('epochs')} epoch(s) per task, "
        f"batch {s.get('batch_size')}, Adam lr {s.get('lr')} (unless tuned, below), replay budget {s.get('budget_per_task')} "
        "samples per task.",
        *_tuned_lines(s.get("baseline_params") or {}),
        "",
        "AUC values are fractions; ± is the sample standard deviation over seeds. Time: learn seconds per increment "
        "(fit + memory update; evaluation excluded), mean over increments (first -> last). Peak RSS: of the run's "
        "own process; in brackets, its peak right after importing its libraries (torch's CUDA build alone maps ~0.7 GiB). Replay: samples kept "
        "after the last task and the bytes the strategy holds for them (LID: references + features, its images "
        "are re-read from the batch store; Avalanche: float32 input tensors, labels, DER's logits; joint: every "
        "train image as uint8).",
        "",
        "Rules (issue 12): every choice (settings, tuned baseline values, calibration, thresholds) is made on val; "
        + ("this table is such a choice, on the val split. " if s.get("eval_split") == "val"
           else "test was read once per run, for this table. ")
        + "AUC is on the raw score; ACC on p(fake) calibrated from what each strategy keeps. AA 95% CI: bootstrap "
        "over seeds and the scored images. "
        f"vs {ref}: the paired AA difference with its 95% CI; \"above\" / \"below\" only where the CI excludes 0.",
        "",
        f"| strategy | AA (AUC) | AA 95% CI | vs {ref} | AF | AF (Chaudhry) | " + " | ".join(f"final {t}" for t in tasks)
        + " | s / increment | peak RSS MiB (imports) | replay samples / bytes |",
        "|---|---|---|---|---|---|" + "---:|" * len(tasks) + "---:|---:|---:|",
    ]
    for name, e in strategies.items():
        times = e["time_per_task_s"]
        final = " | ".join(_num(e["final_auc"].get(t)) for t in tasks)
        lines.append(
            f"| {name} | {mean_std(e['AA'])} | {_ci(e.get('AA_ci95'))} | {_versus(e.get('vs_reference'))} | "
            f"{mean_std(e['AF'])} | {mean_std(e.get('AF_chaudhry'))} | {final} | "
            f"{sum(times) / len(times):.2f} ({times[0]:.2f} -> {times[-1]:.2f}) | "
            f"{e['peak_rss_mb']:.0f} ({e.get('rss_after_imports_mb', 0):.0f}) | "
            f"{e.get('replay_samples', 0)} / {_bytes(e['replay_bytes'])} |"
        )
    failed = dict(results.get("failed", {}))
    for name, e in strategies.items():
        for err in e.get("errors", []):
            failed[f"{name} (seed {err['seed']})"] = err["error"]
    violations = results.get("bound_violations") or []
    if violations:
        lines += ["", "## Above its upper bound: a bug to explain, not a result", ""]
        lines += [f"- `{v['strategy']}` is above its upper bound `{v['bound']}` by {v['diff']:+.3f} AA "
                  f"(95% CI {_ci(v['ci95'])}): a method cannot beat its own joint training; find out why first."
                  for v in violations]
    if failed:
        lines += ["", "## Failed runs", ""] + [f"- `{n}`: {str(msg).splitlines()[0]}" for n, msg in failed.items()]
    from ifd.bench.unknown_summary import unknown_markdown

    lines += unknown_markdown(strategies)
    lines += ["", "## Definitions", "", AF_DEFINITION, "", "## Figures", ""]
    lines += [f"- [{k}]({v})" for k, v in plots.items()]
    return "\n".join(lines) + "\n"
