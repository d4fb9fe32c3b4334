"""The condensed strategy table of the top-level README from a results.json of `ifd bench`.

    .venv/bin/python benchmarks/summary_table.py benchmarks/synth6/results.json [--strategies a,b,...]

One row per strategy: AA and AF (mean ± std over seeds, AUC), AF in Chaudhry's form, replay samples held
at the end, mean seconds per increment and peak RSS, and the gap to `lid` and `joint` where present.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ifd.bench.report_md import mean_std  # noqa: E402


def table(results: dict, names: list[str]) -> str:
    rows = results["strategies"]
    lid_aa = rows.get("lid", {}).get("AA", {}).get("mean")
    lines = [
        "| strategy | seeds | AA (AUC) | AF | AF Chaudhry | AA − lid | replay samples | s / increment | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        if name not in rows:
            reason = results.get("failed", {}).get(name)
            if reason:
                lines.append(f"| {name} | – | refused: {reason.splitlines()[0][:90]} | | | | | | |")
            continue
        e = rows[name]
        times = e.get("time_per_task_s") or []
        per_inc = sum(times) / len(times) if times else float("nan")
        gap = "-" if lid_aa is None or name == "lid" else f"{e['AA']['mean'] - lid_aa:+.3f}"
        lines.append(
            f"| {name} | {len(e['seeds'])} | {mean_std(e['AA'])} | {mean_std(e['AF'])} | {mean_std(e.get('AF_chaudhry'))} | {gap} "
            f"| {e['replay_samples']} | {per_inc:.0f} | {e['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--strategies", help="comma-separated, in this order (default: all, as stored)")
    args = p.parse_args()
    results = json.loads(args.results.read_text())
    names = args.strategies.split(",") if args.strategies else list(results["strategies"]) + list(results.get("failed", {}))
    print(table(results, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
