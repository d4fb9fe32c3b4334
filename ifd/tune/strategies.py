"""Tuned vs tuned (issue 12): every benchmark strategy gets the same small search on val.

For each strategy, an Optuna TPE study (seeded) of `n_trials` trials over its space in
`strategy_space.yaml` (lr and the strategy's main coefficient: EWC lambda, LwF alpha, DER alpha/beta,
LID's L_iso weight); a trial is one benchmark run (`python -m ifd.bench.worker`, its own process) with
`eval_split="val"`: it is scored on the val matrix (AA - alpha * AF), and no test row is read. The winners
go to one YAML file, `strategy -> values`, that `ifd bench --baseline-params FILE` applies (our loop's
strategies read LIDConfig fields from it, the Avalanche ones keyword arguments and `lr`). The study of
each strategy lives in `OUT/optuna.db`, so an interrupted search continues. With `fanout=FanoutConfig(...)`
a strategy's trials run side by side on Dask workers (`ifd.bench.fanout`), sharing that one study.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ifd.errors import ConfigError, IfdError

SPACE_FILE = Path(__file__).with_name("strategy_space.yaml")
Progress = Callable[[str], None]


def load_strategy_space(path: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """strategy -> {parameter -> distribution} (the `space.yaml` types: float, int, categorical)."""
    path = Path(path) if path is not None else SPACE_FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a readable strategy search space ({exc})") from exc
    for name, space in data.items():
        if not isinstance(space, dict) or not all(isinstance(d, dict) and d.get("type") in ("float", "int", "categorical")
                                                  for d in space.values()):
            raise ConfigError(f"{path}: {name}: expected parameter -> {{type: float|int|categorical, ...}}")
    return data


class StrategyObjective:
    """One trial of a strategy's search: suggest its values, run it (`launch()`, its own process) on val,
    return val AA - alpha * AF. A plain object of paths and settings, so a Dask worker can run it too."""

    def __init__(self, name: str, stream: Path, base: Any, out: Path, space: dict[str, dict[str, Any]], *, seed: int,
                 tasks: int | None, threads: int | None, alpha: float, timeout_s: float | None) -> None:
        self.name, self.stream, self.base, self.out, self.space = name, Path(stream).resolve(), base, Path(out).resolve(), space
        self.seed, self.tasks, self.threads, self.alpha, self.timeout_s = seed, tasks, threads, alpha, timeout_s

    def __call__(self, trial: Any) -> float:
        from ifd.bench.runner import launch
        from ifd.bench.spec import RunSpec
        from ifd.eval.matrix import ResultMatrix
        from ifd.eval.report import retention_summary
        from ifd.tune.space import suggest

        params = suggest(trial, self.space)
        spec = RunSpec(strategy=self.name, seed=self.seed, stream=str(self.stream), tasks=self.tasks,
                       lid=self.base.model_dump(mode="json"), baseline_params={self.name: params}, threads=self.threads,
                       eval_split="val", work_dir=str(self.out / "runs" / f"{self.name}__trial{trial.number}"))
        result = launch(spec, lambda _: None, self.timeout_s)
        if not result.ok:
            raise IfdError(f"{self.name} trial {trial.number}: {(result.error or '').splitlines()[0]}")
        s = retention_summary(ResultMatrix.from_dict(result.matrix or {}))
        trial.set_user_attr("val_AA", float(s["AA"]))
        trial.set_user_attr("val_AF", float(s["AF"]))
        trial.set_user_attr("params", params)
        return float(s["AA"] - self.alpha * s["AF"])


def open_strategy_study(name: str, out: Path, sampler_seed: int) -> Any:
    """The study of `name`'s search in OUT/optuna.db (created or loaded; ifd.tune.study's storage settings)."""
    import optuna

    from ifd.tune.study import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=make_storage(f"sqlite:///{Path(out).resolve() / 'optuna.db'}"),
                               study_name=f"strategy-{name}", direction="maximize",
                               sampler=optuna.samplers.TPESampler(seed=sampler_seed), load_if_exists=True)


def resume_strategy_study(name: str, out: Path, seed: int) -> tuple[Any, int]:
    """(study, trials it already holds), its sampler seeded seed + that count: a resumed search seeded as at
    its start would draw its first trials again (TPE's start-up draws come from the seed alone)."""
    study = open_strategy_study(name, out, seed)
    offset = len(study.trials)
    return (open_strategy_study(name, out, seed + offset) if offset else study), offset


def strategy_trial_on_worker(objective: StrategyObjective, sampler_seed: int) -> dict[str, Any]:
    """The Dask task of one trial: load the strategy's study, run one trial of it here."""
    from ifd.bench.fanout import worker_identity

    ended: list[Any] = []
    open_strategy_study(objective.name, objective.out, sampler_seed).optimize(
        objective, n_trials=1, catch=(IfdError,), callbacks=[lambda _, trial: ended.append(trial)])
    trial = ended[0]
    return {"trial": trial.number, "state": trial.state.name, "value": trial.value,
            "params": trial.user_attrs.get("params"), **worker_identity()}


def tune_strategy(
    name: str, stream: Path, base: Any, out: Path, *, n_trials: int, space: dict[str, dict[str, Any]],
    seed: int = 0, tasks: int | None = None, threads: int | None = None, alpha: float = 1.0,
    timeout_s: float | None = None, progress: Progress = print, fanout: Any = None,
) -> dict[str, Any]:
    """Search `name`'s values on val; {"strategy", "params", "val_AA", "val_AF", "score", "trials"}. With
    `fanout` (an ifd.bench.fanout.FanoutConfig that is not in-process) the trials run on Dask workers, one
    study shared through its storage, each task's sampler seeded seed + its index."""
    import optuna

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study, offset = resume_strategy_study(name, out, seed)
    objective = StrategyObjective(name, stream, base, out, space, seed=seed, tasks=tasks, threads=threads, alpha=alpha,
                                  timeout_s=timeout_s)
    left = max(0, n_trials - len([t for t in study.trials if t.state.is_finished()]))
    if fanout is not None and not fanout.in_process and left:
        from ifd.bench.fanout import fan_out

        def done(_: int, v: Any) -> None:
            if isinstance(v, BaseException):
                progress(f"[tune] {name}: a trial task failed: {type(v).__name__}: {v}")
            else:
                progress(f"[tune] {name} trial {v['trial']} {v['state'].lower()}: score {v['value']} {v['params']} "
                         f"on {v['dask_worker']}")

        fan_out(strategy_trial_on_worker, [{"objective": objective, "sampler_seed": seed + offset + i} for i in range(left)],
                fanout, on_done=done, name=f"ifd-tune-{name}")
    else:
        def shown(_: Any, trial: Any) -> None:
            if trial.state == optuna.trial.TrialState.COMPLETE:
                progress(f"[tune] {name} trial {trial.number}: val AA {trial.user_attrs['val_AA']:.3f}  "
                         f"AF {trial.user_attrs['val_AF']:+.3f}  {trial.user_attrs['params']}")

        study.optimize(objective, n_trials=left, catch=(IfdError,), callbacks=[shown])
    done_trials = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not done_trials:
        raise IfdError(f"{name}: no trial finished; see {out / 'runs'}")
    best = study.best_trial
    return {"strategy": name, "params": dict(best.params), "val_AA": best.user_attrs["val_AA"],
            "val_AF": best.user_attrs["val_AF"], "score": float(best.value), "trials": len(done_trials)}


def tune_strategies(
    names: Sequence[str], stream: Path, base: Any, out: Path, *, n_trials: int, space_file: Path | None = None,
    progress: Progress = print, **kw: Any,
) -> dict[str, Any]:
    """Tune each of `names` with the same budget; merge the winners into OUT/tuned.yaml (for --baseline-params;
    winners of strategies tuned by another call stay) and return the reports."""
    spaces = load_strategy_space(space_file)
    missing = [n for n in names if n not in spaces]
    if missing:
        raise ConfigError(f"no search space for {', '.join(missing)} in {space_file or SPACE_FILE}")
    reports = {n: tune_strategy(n, stream, base, Path(out) / n, n_trials=n_trials, space=spaces[n], progress=progress, **kw)
               for n in names}
    path = Path(out) / "tuned.yaml"
    earlier = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}  # other strategies' winners stay
    tuned = {**earlier, **{n: {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in r["params"].items()}
                           for n, r in reports.items()}}
    header = f"# tuned on val, {n_trials} trial(s) per strategy (ifd/tune/strategies.py); ifd bench --baseline-params {path}\n"
    path.write_text(header + yaml.safe_dump(tuned, sort_keys=True))
    return {"file": str(path), "strategies": reports}
