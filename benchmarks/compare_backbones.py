"""Per family: does the default backbone lose to another by more than one standard deviation? (issue 11, item 7)

Reads two `ifd bench` results.json files of the same strategy on the same stream (one per backbone) and
writes a Markdown table of the final AUC per family, mean ± std over seeds, the difference, and the verdict:
"loses" where default + max(std_default, std_other) < other, "wins" the other way, else "within 1 std".

    .venv/bin/python benchmarks/compare_backbones.py DEFAULT/results.json OTHER/results.json [--strategy lid] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(default: dict, other: dict) -> list[tuple[str, float, float, float, float, str]]:
    out = []
    for task in default["tasks"]:
        m_d, s_d = default["final_auc"][task], default["final_auc_std"][task]
        m_o, s_o = other["final_auc"][task], other["final_auc_std"][task]
        band = max(s_d, s_o)
        verdict = "loses" if m_d + band < m_o else "wins" if m_o + band < m_d else "within 1 std"
        out.append((task, m_d, s_d, m_o, s_o, verdict))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("default")
    p.add_argument("other")
    p.add_argument("--strategy", default="lid")
    p.add_argument("--out")
    args = p.parse_args()
    a, b = (json.loads(Path(f).read_text()) for f in (args.default, args.other))
    da, db = a["strategies"][args.strategy], b["strategies"][args.strategy]
    name_a, name_b = a["settings"]["backbone"], b["settings"]["backbone"]
    split = a["settings"].get("eval_split", "test")
    lines = [f"`{args.strategy}`, final AUC per family on {split}, mean ± std over seeds {a['seeds']}; "
             f"AA {da['AA']['mean']:.3f} ± {da['AA']['std']:.3f} (`{name_a}`) vs {db['AA']['mean']:.3f} ± "
             f"{db['AA']['std']:.3f} (`{name_b}`).", "",
             f"| family | `{name_a}` | `{name_b}` | difference | `{name_a}` |", "|---|---:|---:|---:|---|"]
    lines += [f"| {t} | {md:.3f} ± {sd:.3f} | {mo:.3f} ± {so:.3f} | {md - mo:+.3f} | {v} |"
              for t, md, sd, mo, so, v in rows(da, db)]
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
