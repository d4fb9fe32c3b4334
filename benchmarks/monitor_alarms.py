"""How often the monitor cries wolf, and how often it catches an unseen generator -> benchmarks/monitor_alarms.md.

Needs a workspace whose registry holds one version per step of the synthetic stream (what `ifd demo`
leaves: version k learned the first k families). For each version k < 6 and each seed, three windows of
`--window` test images are scored by version k and judged by the monitor's checks (the same code `ifd
monitor` runs; forgetting skipped):
- known: test images of the k families version k learned (every alert is a false alarm);
- unseen: test images of family k + 1, which version k never learned (an unknown-generator alert is a hit);
- mixed: half known, half unseen.
The final champion (all six families) adds a known-only row. The reference is each version's validation
images, as in production.

    .venv/bin/python benchmarks/monitor_alarms.py --workspace .ifd/demo [--seeds 10] [--window 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    from ifd.data.tasks import tasks_from_dirs
    from ifd.inference.scorer import DetectorScorer
    from ifd.monitoring.checks import check_drift, check_unknown
    from ifd.monitoring.prediction_log import PredictionLog
    from ifd.monitoring.reference import build_reference
    from ifd.tracking import model_registry as reg
    from ifd.train.state import IncrementalState
    from ifd.workspace import Workspace
    from monitoring.policy import load_policy

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default=".ifd/demo")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--out", default=str(HERE / "monitor_alarms.md"))
    args = p.parse_args()
    torch.set_num_threads(2)

    ws = Workspace.at(args.workspace).require()
    policy = load_policy()
    versions = sorted((v for v in reg.list_versions(ws) if v.tags.get("decision") == "approved"), key=lambda v: int(v.version))
    all_tasks = tasks_from_dirs([ws.batch_dir(n) for n in versions[-1].tasks])
    rows = []
    for info in versions:
        state = IncrementalState.load(reg.download_state(ws, info.version))
        k = len(state.task_names)
        known, unseen = all_tasks[:k], all_tasks[k : k + 1]
        scorer = DetectorScorer(state, threshold=policy.threshold)
        ref = build_reference(scorer, known, info.version)
        pools = {"known": _paths(known), **({"unseen": _paths(unseen)} if unseen else {})}
        scored = {name: scorer.score(paths) for name, paths in pools.items()}
        kinds = ["known", *(["unseen", "mixed"] if unseen else [])]
        for kind in kinds:
            counts: dict[str, int] = {}
            for seed in range(args.seeds):
                win = _window(scored, kind, args.window, np.random.default_rng(seed))
                with tempfile.TemporaryDirectory() as tmp:
                    log = PredictionLog(Path(tmp) / "p.db")
                    log.record("w", "champion", info.version, win.rows(), win.embeddings)
                    w = log.window("champion", 10_000)
                alerts = check_drift(ref.p_fake, ref.embeddings, w.p_fake, w.embeddings, policy, info.version)[1]
                alerts += check_unknown(w, ref, policy, info.version)[1]
                for a in {a.kind for a in alerts} | {"any"} if alerts else set():
                    counts[a] = counts.get(a, 0) + 1
            rows.append({"version": info.version, "learned": k, "window": kind,
                         "unseen": unseen[0].name if unseen and kind != "known" else "",
                         **{f"rate_{a}": counts.get(a, 0) / args.seeds for a in ("any", "score_drift", "embedding_drift", "unknown_generator")}})
            print(json.dumps(rows[-1]), flush=True)
    _write(Path(args.out), rows, args)
    return 0


def _paths(tasks: list) -> list[Path]:
    return [t.root / p for t in tasks for p in t.split("test")["path"]]


def _window(scored: dict, kind: str, size: int, rng: np.random.Generator):
    from ifd.inference.scorer import Scores

    def take(s: Scores, n: int) -> Scores:
        idx = rng.choice(len(s.p_fake), size=min(n, len(s.p_fake)), replace=False)
        return Scores(s.p_fake[idx], [s.label[i] for i in idx], [s.generator[i] for i in idx], s.unknown[idx],
                      s.unknown_score[idx], s.embeddings[idx])

    if kind != "mixed":
        return take(scored[kind], size)
    a, b = take(scored["known"], size // 2), take(scored["unseen"], size - size // 2)
    return Scores(np.r_[a.p_fake, b.p_fake], a.label + b.label, a.generator + b.generator, np.r_[a.unknown, b.unknown],
                  np.r_[a.unknown_score, b.unknown_score], np.r_[a.embeddings, b.embeddings])


def _write(out: Path, rows: list[dict], args: argparse.Namespace) -> None:
    head = "| version | families learned | window | unseen family | any alert | score drift | embedding drift | unknown generator |"
    lines = [
        "# Monitor: false alarms and detection of an unseen generator",
        "",
        "Share of windows that raised each alert (`ifd.monitoring.checks`, policy defaults; forgetting check",
        f"skipped), {args.seeds} seeds, windows of up to {args.window} test images. `known` windows hold only",
        "families the version learned: every alert there is a false alarm. `unseen` windows hold the next family,",
        "which the version never learned; `mixed` half and half.",
        "",
        head,
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['version']} | {r['learned']} | {r['window']} | {r['unseen']} | {r['rate_any']:.2f} | "
                     f"{r['rate_score_drift']:.2f} | {r['rate_embedding_drift']:.2f} | {r['rate_unknown_generator']:.2f} |")
    known = [r["rate_any"] for r in rows if r["window"] == "known"]
    lines += [
        "",
        f"- false-alarm rate over all known windows: {np.mean(known):.3f} ({len(known) * args.seeds} windows)",
        f"- command: `.venv/bin/python benchmarks/monitor_alarms.py --workspace {args.workspace} --seeds {args.seeds} --window {args.window}`",
        f"- date: {dt.date.today().isoformat()}; machine: {platform.machine()}, torch {torch.__version__}",
    ]
    out.write_text("\n".join(lines) + "\n")
    (out.with_suffix(".json")).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
