"""Tuned vs tuned (issue 12): every benchmark strategy gets the same small search on val.

For each strategy, an Optuna TPE study (seeded) of `n_trials` trials over its space in
`strategy_space.yaml` (lr and the strategy's main coefficient: EWC lambda, LwF alpha, DER alpha/beta,
LID's L_iso weight); a trial is one benchmark run (`python -m ifd.bench.worker`, its own process) with
`eval_split="val"`: it is scored on the val matrix (AA - alpha * AF), and no test row is read. The winners
go to one YAML file, `strategy -> values`, that `ifd bench --baseline-params FILE` applies (our loop's
strategies read LIDConfig fields from it, the Avalanche ones keyword arguments and `lr`). The study of
each strategy lives in `OUT/optuna.db`, so an interrupted search continues.
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


def tune_strategy(
    name: str, stream: Path, base: Any, out: Path, *, n_trials: int, space: dict[str, dict[str, Any]],
    seed: int = 0, tasks: int | None = None, threads: int | None = None, alpha: float = 1.0,
    timeout_s: float | None = None, progress: Progress = print,
) -> dict[str, Any]:
    """Search `name`'s values on val; {"strategy", "params", "val_AA", "val_AF", "score", "trials"}."""
    import optuna

    from ifd.bench.runner import launch
    from ifd.bench.spec import RunSpec
    from ifd.eval.matrix import ResultMatrix
    from ifd.eval.report import retention_summary
    from ifd.tune.space import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=f"sqlite:///{out / 'optuna.db'}", study_name=f"strategy-{name}",
                                direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        spec = RunSpec(strategy=name, seed=seed, stream=str(Path(stream).resolve()), tasks=tasks,
                       lid=base.model_dump(mode="json"), baseline_params={name: params}, threads=threads,
                       eval_split="val", work_dir=str((out / "runs" / f"{name}__trial{trial.number}").resolve()))
        result = launch(spec, lambda _: None, timeout_s)
        if not result.ok:
            raise IfdError(f"{name} trial {trial.number}: {(result.error or '').splitlines()[0]}")
        s = retention_summary(ResultMatrix.from_dict(result.matrix or {}))
        trial.set_user_attr("val_AA", float(s["AA"]))
        trial.set_user_attr("val_AF", float(s["AF"]))
        progress(f"[tune] {name} trial {trial.number}: val AA {s['AA']:.3f}  AF {s['AF']:+.3f}  {params}")
        return float(s["AA"] - alpha * s["AF"])

    left = max(0, n_trials - len([t for t in study.trials if t.state.is_finished()]))
    study.optimize(objective, n_trials=left, catch=(IfdError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise IfdError(f"{name}: no trial finished; see {out / 'runs'}")
    best = study.best_trial
    return {"strategy": name, "params": dict(best.params), "val_AA": best.user_attrs["val_AA"],
            "val_AF": best.user_attrs["val_AF"], "score": float(best.value), "trials": len(done)}


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
