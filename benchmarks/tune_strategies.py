"""Tuned vs tuned: the same small search on val for every strategy -> OUT/tuned.yaml for `ifd bench`.

    .venv/bin/python benchmarks/tune_strategies.py STREAM [--strategies lid,naive,replay,ewc,lwf,der,agem,gdumb]
        [--n-trials 8] [--out benchmarks/synth6_tuning] [--seed 0] [--threads 1] [--epochs E] [--budget B]
        [--backbone NAME] [--img-size S] [--batch-size N] [--tasks K]

Each trial is one run of the strategy (its own process) measured on the val matrix (AA - AF); no test
row is read. The winners land in OUT/tuned.yaml (strategy -> values: lr and the strategy's main
coefficient, ifd/tune/strategy_space.yaml), which the campaign then applies to every seed:
`ifd bench STREAM --baseline-params OUT/tuned.yaml ...`. Interrupted searches continue (OUT/<name>/optuna.db).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

DEFAULT = "lid,naive,replay,ewc,lwf,der,agem,gdumb"


def main() -> int:
    from ifd.commands.bench import _add_shared, base_config
    from ifd.tune.strategies import tune_strategies

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stream")
    p.add_argument("--strategies", default=DEFAULT)
    p.add_argument("--n-trials", dest="n_trials", type=int, default=8)
    p.add_argument("--out", default=str(HERE / "synth6_tuning"))
    p.add_argument("--seed", type=int, default=0, help="training and sampler seed of every trial")
    p.add_argument("--threads", type=int)
    p.add_argument("--alpha", type=float, default=1.0, help="score = val AA - alpha * val AF")
    p.add_argument("--workspace", default=None)
    p.add_argument("--params", default=None)
    _add_shared(p)
    args = p.parse_args()
    base = base_config(args)
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    report = tune_strategies(names, Path(args.stream), base, Path(args.out), n_trials=args.n_trials, seed=args.seed,
                             tasks=args.tasks, threads=args.threads, alpha=args.alpha,
                             progress=lambda m: print(m, file=sys.stderr, flush=True))
    (Path(args.out) / "tuned.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({n: {k: r[k] for k in ("params", "val_AA", "val_AF", "trials")} for n, r in report["strategies"].items()},
                     indent=1))
    print(f"written: {report['file']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
