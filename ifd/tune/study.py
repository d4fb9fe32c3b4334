"""The Optuna study of `ifd tune` and its objective: one trial = one training sequence of the detector.

Three splits, three uses (METHOD.md §4): a trial trains on train and is measured on the *val* matrix
(`train_sequence(eval_split="val")`): its objective, its pruning reports and the choice of the best trial
read val only, never a test row. The test matrix is read once, for the best trial, after the search
(`ifd.tune.final_report`), and logged as its own run marked as the final report.

- multi-objective (`mode="multi"`): directions ["maximize", "minimize"] on (AA, AF); TPE sampler; the
  Pareto front is `study.best_trials`. Optuna 5 raises on `trial.report` / `should_prune` here, so
  these trials always run to the end.
- single-objective (`mode="single"`): maximise the retention score AA - alpha * AF. After every task
  `train_sequence(on_task_end=...)` reports the score so far (AA_t - alpha * AF_t; at the first task
  that is AA_0) at step = task index, and the trial stops with `optuna.TrialPruned` when the pruner says so.

Storage: an RDB (`sqlite:///<workspace>/.ifd/optuna.db` by default, or any SQLAlchemy URL), loaded if it
exists, so several `ifd tune` processes on one storage and study name share the work. Each trial,
pruned and failed ones included, is an MLflow run (`ifd.tracking.trials`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ifd.data.tasks import TaskData
from ifd.errors import IfdError
from ifd.progress import steps
from ifd.tracking.trials import TUNE_EXPERIMENT
from ifd.workspace import Workspace

Progress = Callable[[str], None]
PRUNERS = ("median", "hyperband", "none")


@dataclass
class TuneSettings:
    """How to search: mode, budget (trials / seconds), where the study lives, the AF weight of the score."""

    mode: Literal["multi", "single"] = "multi"
    n_trials: int | None = 20
    timeout_s: float | None = None
    storage: str | None = None
    study_name: str = "ifd-tune"
    experiment: str = TUNE_EXPERIMENT
    alpha: float = 1.0
    sampler_seed: int | None = None
    pruner: str = "median"
    space: Path | None = None
    out: Path | None = None
    final_test: bool = True
    """After the search, retrain the best trial once and report its test matrix (the only test read)."""


def default_storage(ws: Workspace) -> str:
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{ws.state_dir / 'optuna.db'}"


def make_pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise IfdError(f"unknown pruner {name!r}; known: {', '.join(PRUNERS)}")


def open_study(settings: TuneSettings, ws: Workspace, pruner: Any = None) -> Any:
    """Create or load the study; a loaded study must have this mode's directions."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize", "minimize"] if settings.mode == "multi" else ["maximize"]
    sampler = optuna.samplers.TPESampler(seed=settings.sampler_seed)
    if settings.mode == "single" and pruner is None:
        pruner = make_pruner(settings.pruner)
    try:
        study = optuna.create_study(
            storage=settings.storage or default_storage(ws),
            study_name=settings.study_name,
            directions=directions,
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
    except ValueError as exc:  # e.g. an existing study with other directions
        raise IfdError(f"study {settings.study_name!r}: {exc}; use another --study-name") from exc
    found = [d.name.lower() for d in study.directions]
    if found != directions:
        raise IfdError(
            f"study {settings.study_name!r} in this storage optimises {found}, not {directions} ({settings.mode} mode); "
            "use the matching --mode or another --study-name"
        )
    return study


def retention_score(rows: Sequence[Sequence[float]], alpha: float) -> float:
    """AA - alpha * AF (last form) of the matrix rows so far."""
    from ifd.eval.retention import average_accuracy, average_forgetting

    return average_accuracy(rows) - alpha * average_forgetting(rows)


class Objective:
    """One trial: suggest settings, train the sequence, log the MLflow run, return (AA, AF) or the score."""

    def __init__(self, tasks: Sequence[TaskData], base: Any, ws: Workspace, settings: TuneSettings,
                 space: dict[str, dict[str, Any]], progress: Progress) -> None:
        self.tasks, self.base, self.ws, self.settings = list(tasks), base, ws, settings
        self.space, self.progress = space, progress

    def __call__(self, trial: Any) -> Any:
        import optuna

        from ifd.continual.config import load_lid_config
        from ifd.train.loop import train_sequence
        from ifd.tune.space import suggest

        overrides = suggest(trial, self.space)
        cfg = load_lid_config(None, {**self.base.model_dump(), **overrides})
        seen: list[Any] = []
        single = self.settings.mode == "single"

        def on_task_end(state: Any) -> None:
            seen[:] = [state.matrix]
            if single:
                rows = state.matrix.rows("auc")
                score = retention_score(rows, self.settings.alpha)
                trial.report(score, step=len(rows) - 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after task {len(rows) - 1} (score so far {score:.3f})")

        with tempfile.TemporaryDirectory(prefix="ifd-tune-") as tmp:
            try:
                state = train_sequence(self.tasks, cfg, Path(tmp), resume=False, progress=lambda _: None,
                                       on_task_end=on_task_end, eval_split="val")
            except optuna.TrialPruned as exc:
                self._log(trial, overrides, cfg, seen[0] if seen else None, "PRUNED")
                self.progress(f"[tune] trial {trial.number}: {exc}")
                raise
            except IfdError:
                self._log(trial, overrides, cfg, seen[0] if seen else None, "FAIL")
                raise
        summary = self._log(trial, overrides, cfg, state.matrix, "COMPLETE")
        score = summary["AA"] - self.settings.alpha * summary["AF"]
        self.progress(f"[tune] trial {trial.number}: val AA {summary['AA']:.3f}  AF {summary['AF']:+.3f}  score {score:.3f}")
        return (summary["AA"], summary["AF"]) if not single else score

    def _log(self, trial: Any, overrides: dict[str, Any], cfg: Any, matrix: Any, state: str) -> dict[str, Any]:
        from ifd.eval.report import retention_summary
        from ifd.eval.retention import aa_curve
        from ifd.tracking.trials import log_trial

        summary = retention_summary(matrix) if matrix is not None and matrix.n_tasks else {}
        metrics = {k: summary[k] for k in ("AA", "AF", "AF_chaudhry", "BWT", "AA_acc") if k in summary}
        if summary:
            metrics["score"] = summary["AA"] - self.settings.alpha * summary["AF"]
        rows = matrix.rows("auc") if matrix is not None else []
        run_id = log_trial(
            self.ws,
            experiment=self.settings.experiment,
            run_name=f"{self.settings.study_name}-trial-{trial.number}",
            params={**overrides, "backbone": cfg.backbone, "epochs": cfg.epochs, "img_size": cfg.img_size, "tasks": len(self.tasks)},
            metrics=metrics,
            step_metrics={"AA_t": aa_curve(rows), "score_t": [retention_score(rows[: t + 1], self.settings.alpha) for t in range(len(rows))]},
            matrix=matrix.to_dict() if matrix is not None else None,
            config=cfg.model_dump(mode="json"),
            tags={"optuna.study": self.settings.study_name, "optuna.trial": str(trial.number), "ifd.tune.mode": self.settings.mode,
                  "ifd.tune.split": "val"},
            state=state,
        )
        trial.set_user_attr("mlflow_run_id", run_id)
        for k, v in metrics.items():
            trial.set_user_attr(k, float(v))
        return summary


def trial_row(trial: Any, space: dict[str, dict[str, Any]], alpha: float) -> dict[str, Any]:
    from ifd.tune.space import overrides_from_params

    aa, af = float(trial.user_attrs["AA"]), float(trial.user_attrs["AF"])
    return {
        "trial": trial.number,
        "AA": aa,
        "AF": af,
        "score": aa - alpha * af,
        "params": overrides_from_params(dict(trial.params), space),
        "mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
    }


def run_study(
    tasks: Sequence[TaskData],
    base: Any,
    ws: Workspace,
    settings: TuneSettings,
    *,
    pruner: Any = None,
    write_params: Path | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    """Run `settings.n_trials` more trials of the study; report the front, the best settings and the plot."""
    import optuna

    from ifd.tune.pareto import front_text, non_dominated, plot_front
    from ifd.tune.space import load_space

    space = load_space(settings.space)
    study = open_study(settings, ws, pruner)
    progress(f"[tune] study {settings.study_name!r} ({settings.mode}-objective) on {len(tasks)} task(s); {len(study.trials)} trial(s) so far")
    with steps(progress, settings.n_trials, "trials") as bar:
        study.optimize(Objective(tasks, base, ws, settings, space, progress), n_trials=settings.n_trials,
                       timeout=settings.timeout_s, catch=(IfdError,),
                       callbacks=[lambda _, trial: bar.advance(f"trial {trial.number} ({trial.state.name.lower()})")])
    states = optuna.trial.TrialState
    done = [t for t in study.get_trials(deepcopy=False, states=(states.COMPLETE,)) if "AA" in t.user_attrs]
    rows = [trial_row(t, space, settings.alpha) for t in done]
    if settings.mode == "multi":
        ids = {t.number for t in study.best_trials}
        front = [r for r in rows if r["trial"] in ids]
    else:
        front = [rows[i] for i in non_dominated([(r["AA"], r["AF"]) for r in rows])]
    front.sort(key=lambda r: r["AF"])
    best = max(rows if settings.mode == "single" else front, key=lambda r: r["score"], default=None)
    out = settings.out or ws.artifacts_dir / "tune" / re.sub(r"[^A-Za-z0-9._-]", "_", settings.study_name)
    plot = plot_front(rows, front, Path(out) / "pareto.png", f"{settings.study_name}: {len(rows)} finished trial(s)") if rows else None
    written = None
    if write_params is not None:
        if best is None:
            raise IfdError("no finished trial yet: nothing to write into params.yaml")
        from ifd.tune.params_io import write_overrides

        written = str(write_overrides(write_params, best["params"]))
    final = None
    if settings.final_test and best is not None:
        from ifd.tune.final_report import final_test_report

        final = final_test_report(study, tasks, base, ws, settings, best, progress)
    counts = {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in (states.COMPLETE, states.PRUNED, states.FAIL)}
    return {
        "study": settings.study_name,
        "storage": _safe_url(settings.storage or default_storage(ws)),
        "mode": settings.mode,
        "experiment": settings.experiment,
        "trials": counts,
        "pareto": front,
        "best": best,
        "plot": str(plot) if plot else None,
        "params_written": written,
        "selected_on": "val",
        "final_test": final,
        "text": front_text(front) + (f"\nbest on val (max AA - {settings.alpha:g} * AF): trial {best['trial']}" if best else "")
        + (f"\nfinal report on test (read once): AA {final['AA']:.3f}  AF {final['AF']:+.3f}" if final else ""),
    }


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
