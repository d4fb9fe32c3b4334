"""`ifd bench` (our detector against continual-learning baselines) and `ifd tune` (Optuna over LID).

Both start from the workspace's params.yaml (`train.preset` + `train.overrides`); the shared options
below override it for every strategy / trial alike. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ifd.commands.common import AddCommand, config, emit, progress, workspace
from ifd.errors import IfdError

DEFAULT_STRATEGIES = "lid,finetune,naive,replay,ewc,lwf,der,gdumb,agem,joint-lid,joint-ce"
_SHARED = {
    "epochs": "epochs",
    "budget": "budget_per_task",
    "backbone": "backbone",
    "img_size": "img_size",
    "batch_size": "batch_size",
    "lr": "lr",
    "replay_per_batch": "replay_per_batch",
}


def _add_shared(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="epochs per task (default: from params.yaml's preset)")
    p.add_argument("--budget", type=int, help="replay budget in samples per task (LID's budget_per_task)")
    p.add_argument("--tasks", type=int, help="use only the first K tasks of the stream")
    p.add_argument("--backbone", help="backbone name (ifd's own or any timm name)")
    p.add_argument("--img-size", dest="img_size", type=int, help="image side in pixels")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="new-task samples per batch")
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--replay-per-batch", dest="replay_per_batch", type=int,
                   help="LID: fixed replay samples per batch (0: 3 + 3 per old task, grows with tasks)")


def _add_fanout(p: argparse.ArgumentParser, what: str) -> None:
    """--jobs / --cluster: where the runs or trials go (ifd.bench.fanout)."""
    import os

    from ifd.bench.fanout import SCHEDULER_ENV

    p.add_argument("--jobs", type=int, default=1,
                   help=f"{what} at a time: N workers (1 thread each) of a local Dask cluster, through Prefect tasks; "
                   "1 (the default, without --cluster) runs them here one by one" + (" (give --threads 1 with it)" if what == "runs" else ""))
    p.add_argument("--cluster", default=os.environ.get(SCHEDULER_ENV) or None,
                   help=f"tcp://HOST:PORT of an existing Dask scheduler: its workers run the {what} (default: ${SCHEDULER_ENV}, "
                   "set by `make cluster`'s env file); they need the same paths and PREFECT_API_URL")


def base_config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    """params.yaml's LIDConfig with the command line's shared options on top; those stay `fixed`, so a
    `lid:<preset>` strategy keeps them too (e.g. `--backbone ifd_cnn_tiny` under lid:paper-b4)."""
    from ifd.continual.config import load_lid_config

    cfg = config(args)
    cli = {field: getattr(args, opt) for opt, field in _SHARED.items() if getattr(args, opt, None) is not None}
    cli = {**cli, **(extra or {})}
    return load_lid_config(cfg.train.preset, {**cfg.train.overrides, **cli, "fixed": sorted(cli)})


def parse_seeds(text: str) -> list[int]:
    """'3' -> [0, 1, 2]; '0,2,5' -> [0, 2, 5]."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return list(range(n))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise IfdError(f"--seeds: give a count (3) or a list (0,1,2), got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise IfdError(f"--seeds: give distinct non-negative seeds, got {text!r}")
    return seeds


def _baseline_params(path: str | None) -> dict[str, dict[str, Any]]:
    if not path:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise IfdError(f"--baseline-params {path}: not readable YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise IfdError(f"--baseline-params {path}: expected a mapping of strategy names to keyword arguments")
    from ifd.bench.avalanche_adapter import BASELINES, baseline_params
    from ifd.bench.strategies import resolve

    for name in data:  # any strategy may carry tuned values (ifd/tune/baselines.py); unknown names fail here
        resolve(str(name))
    baseline_params({k: v for k, v in data.items() if k in BASELINES})
    return data


def cmd_bench(args: argparse.Namespace) -> None:
    from ifd.bench.fanout import FanoutConfig
    from ifd.bench.runner import run_bench
    from ifd.bench.strategies import parse_names

    FanoutConfig.build(args.jobs, args.cluster)  # a bad --jobs / --cluster fails before anything runs
    stream = Path(args.stream)
    if not stream.is_dir():
        raise IfdError(f"{stream}: not a folder; give a stream folder (`ifd synth OUT` writes one)")
    names = parse_names(args.strategies or ("lid,joint" if args.cost else DEFAULT_STRATEGIES))
    extra = {}
    note = ""
    if args.cost:
        from ifd.bench.cost import FLAT_REPLAY_NOTE, flat_replay_count

        extra["replay_per_batch"] = flat_replay_count(base_config(args))
        note = FLAT_REPLAY_NOTE.format(n=extra["replay_per_batch"])
    base = base_config(args, extra)
    seeds = parse_seeds(args.seeds)
    out = Path(args.out)
    progress(f"[bench] {len(names)} strateg{'y' if len(names) == 1 else 'ies'} x {len(seeds)} seed(s) on {stream} -> {out}")
    results = run_bench(
        stream, names, seeds, out, base, tasks=args.tasks, baseline_params=_baseline_params(args.baseline_params),
        threads=args.threads, timeout_s=args.timeout, progress=progress, jobs=args.jobs, reuse=not args.fresh, eval_split=args.split,
        open_set=args.open_set,
        cluster=args.cluster,
    )
    files = {"results_json": str(out / "results.json"), "results_md": str(out / "results.md")}
    if args.cost:
        from ifd.bench.cost import write_cost

        files.update({f"cost_{k}": v for k, v in write_cost(results, out, note).items()})
    summary = {
        "out": str(out),
        "files": files,
        "strategies": {n: {"AA": e["AA"], "AF": e["AF"], "time_per_task_s": e["time_per_task_s"]} for n, e in results["strategies"].items()},
        "failed": results["failed"],
    }
    lines = [f"{'strategy':<20} {'AA':>15} {'AF':>16}"]
    lines += [f"{n:<20} {e['AA']['mean']:.3f} ± {e['AA']['std']:.3f}  {e['AF']['mean']:+.3f} ± {e['AF']['std']:.3f}"
              for n, e in results["strategies"].items()]
    lines += [f"{n:<20} FAILED: {str(msg).splitlines()[0][:100]}" for n, msg in results["failed"].items()]
    lines.append(f"written: {', '.join(files.values())}")
    emit(args, summary, "\n".join(lines))


def cmd_tune(args: argparse.Namespace) -> None:
    from ifd.bench.fanout import FanoutConfig
    from ifd.tune.study import TuneSettings, run_study

    fan = FanoutConfig.build(args.jobs, args.cluster)
    ws = workspace(args)
    tasks = _tune_tasks(args, ws)
    settings = TuneSettings(
        mode=args.mode, n_trials=args.n_trials, timeout_s=args.timeout, storage=args.storage,
        study_name=args.study_name, experiment=args.experiment, alpha=args.alpha, sampler_seed=args.seed,
        pruner=args.pruner, space=Path(args.space) if args.space else None, out=Path(args.out) if args.out else None,
        final_test=not args.no_final_test,
    )
    params_path = Path(args.params) if args.params else ws.params_path
    report = run_study(tasks, base_config(args), ws, settings, write_params=params_path if args.write_params else None,
                       progress=progress, fanout=fan)
    human = report["text"] + (f"\nplot: {report['plot']}" if report["plot"] else "")
    if report["params_written"]:
        human += f"\nbest settings written to {report['params_written']} (train.overrides)"
    emit(args, report, human)


def _tune_tasks(args: argparse.Namespace, ws: Any) -> list[Any]:
    from ifd.data.tasks import tasks_from_stream
    from ifd.train.run import workspace_tasks

    tasks = tasks_from_stream(Path(args.stream)) if args.stream else workspace_tasks(ws)
    if args.tasks is not None:
        if not 1 <= args.tasks <= len(tasks):
            raise IfdError(f"--tasks {args.tasks}: the stream has {len(tasks)} task(s)")
        tasks = tasks[: args.tasks]
    return tasks


def register(add: AddCommand) -> None:
    """Add `ifd bench` and `ifd tune`."""
    p = add("bench", cmd_bench, "continual-learning benchmark: our detector against baselines, same backbone and budget")
    p.add_argument("stream", help="stream folder (from `ifd synth`): one batch folder per task")
    p.add_argument("--strategies", help=f"comma-separated names (default: {DEFAULT_STRATEGIES}; with --cost: lid,joint); "
                   "known: lid, lid:<preset>, lid-no-ida, lid-no-iso, lid-no-dr, lid-no-lsda, lid-random-replay, finetune, "
                   "naive, replay, ewc, lwf, der, icarl, gdumb, agem, joint-lid, joint-ce (= joint)")
    p.add_argument("--seeds", default="3", help="number of seeds (3 -> 0,1,2) or a list (0,1,2)")
    p.add_argument("--out", default="artifacts/bench", help="output folder (results.json, results.md, plots, runs/)")
    _add_shared(p)
    p.add_argument("--threads", type=int, help="torch threads per run (default: torch's own)")
    _add_fanout(p, "runs")
    p.add_argument("--reuse", action="store_true",
                   help="(the default) keep runs whose folder already holds a result for the same spec; results.json "
                   "aggregates every run in --out, so a campaign can run in pieces")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="split the matrix is measured on: test (the report) or val (choosing presets / settings)")
    p.add_argument("--open-set", dest="open_set", action="store_true",
                   help="LID runs (lid*, finetune): after each task, the next task is an unseen generator; every "
                   "unknown-generator score's AUC (val and test) per step lands in results.json / results.md")
    p.add_argument("--fresh", action="store_true", help="rerun the asked (strategy, seed) runs even when --out holds their results")
    p.add_argument("--timeout", type=float, help="seconds allowed per (strategy, seed) run")
    p.add_argument("--baseline-params", dest="baseline_params", help="YAML: strategy -> its values (Avalanche keyword arguments and lr; LIDConfig fields for lid*, finetune, joint-*), e.g. the tuned.yaml of benchmarks/tune_strategies.py")
    p.add_argument("--cost", action="store_true",
                   help="cost growth: time per increment vs task index (default lid,joint; LID with a fixed replay per batch)")

    p = add("tune", cmd_tune, "Optuna search over the detector's settings, every trial logged to MLflow")
    p.add_argument("--stream", help="a stream folder instead of the workspace's ingested batches")
    p.add_argument("--mode", choices=["multi", "single"], default="multi",
                   help="multi: maximise AA and minimise AF (Pareto front); single: maximise AA - alpha*AF with pruning")
    p.add_argument("--n-trials", dest="n_trials", type=int, default=20, help="trials to run in this process")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--storage", help="SQLAlchemy URL of the study's database (default: sqlite:///<workspace>/.ifd/optuna.db)")
    p.add_argument("--study-name", dest="study_name", default="ifd-tune", help="study to create or join")
    p.add_argument("--experiment", default="ifd-tune", help="MLflow experiment of the trial runs")
    p.add_argument("--alpha", type=float, default=1.0, help="weight of AF in the score AA - alpha*AF")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median", help="single mode's pruner")
    p.add_argument("--seed", type=int, help="sampler seed")
    p.add_argument("--space", help="search space YAML (default: ifd/tune/space.yaml)")
    p.add_argument("--out", help="folder for pareto.png (default: artifacts/tune/<study>)")
    p.add_argument("--no-final-test", dest="no_final_test", action="store_true",
                   help="skip the final report (trials choose on val; by default the best trial is retrained once "
                   "and its test matrix logged as the run tagged ifd.tune.final_report)")
    p.add_argument("--write-params", dest="write_params", action="store_true",
                   help="write the best settings into params.yaml's train.overrides")
    _add_fanout(p, "trials")
    _add_shared(p)
