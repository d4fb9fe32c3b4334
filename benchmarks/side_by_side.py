"""Two `ifd bench` campaigns side by side: AA ± std and the paired verdict against `lid` per strategy.

    .venv/bin/python benchmarks/side_by_side.py A/results.json B/results.json [--names "from scratch,pretrained"] [--out FILE.md]

Rows are the strategies of B in its order (those missing in A show "-"). A verdict ("above", "below",
"within noise") is the campaign's own paired 95% interval against its `lid`; "> 1 std" marks an ablation or
strategy whose AA differs from `lid`'s by more than the larger of the two standard deviations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cell(results: dict[str, Any], name: str) -> str:
    e = results["strategies"].get(name)
    if e is None:
        return "- | -"
    aa = f"{e['AA']['mean']:.3f} ± {e['AA']['std']:.3f}"
    ref = results["strategies"].get("lid")
    versus = e.get("vs_reference") or {}
    if name == "lid" or ref is None or versus.get("diff") is None:
        return f"{aa} | -"
    band = max(e["AA"]["std"], ref["AA"]["std"])
    beyond = " (> 1 std)" if abs(e["AA"]["mean"] - ref["AA"]["mean"]) > band else ""
    return f"{aa} | {versus['diff']:+.3f} {versus['verdict']}{beyond}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--names", default="A,B")
    p.add_argument("--out")
    args = p.parse_args()
    a, b = (json.loads(Path(f).read_text()) for f in (args.a, args.b))
    na, nb = (n.strip() for n in args.names.split(","))
    lines = [f"| strategy | {na}: AA | {na}: vs lid | {nb}: AA | {nb}: vs lid |", "|---|---:|---|---:|---|"]
    lines += [f"| {name} | {cell(a, name)} | {cell(b, name)} |" for name in b["strategies"]]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
