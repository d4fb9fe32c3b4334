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

Storage: an RDB (`sqlite:///<workspace>/.ifd/optuna.db` by default, or any SQLAlchemy URL, e.g. the
`optuna` database of `make postgres`: `--storage "$(python -m ifd.servers.postgres url optuna)"`, i.e.
`postgresql+psycopg://USER:PASSWORD@127.0.0.1:5433/optuna`), loaded if it exists, so several
`ifd tune` processes on one storage and study name share the work. Each trial, pruned and failed ones
included, is an MLflow run (`ifd.tracking.trials`).

Fan-out (`fanout=FanoutConfig(jobs=N)` or `cluster=`): every trial is a Prefect task on a Dask worker
(`ifd.bench.fanout`) that loads the one study from its storage and runs one trial of it, so all workers
share one study, its sampler's history and its pruner's reports. The driver creates the study and the
MLflow experiment first (no two workers race to create them), and each task's sampler gets its own seed
(sampler_seed + task index): with one seed every worker would draw the same first settings. SQLite serves
a few workers on one machine: SQLAlchemy's pysqlite driver opens a write transaction at the first write,
so writers queue on the busy timeout (60 s here) instead of failing with "database is locked" (4 processes
x 40 back-to-back trials on one file: no error); trials write a few rows per task, seconds apart. Workers on
several machines need a server database (Postgres). A heartbeat (60 s; grace 180 s) marks the running
trial of a worker that died as failed, so the study does not keep it RUNNING forever.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
import warnings
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
SQLITE_BUSY_TIMEOUT_S = 60.0
HEARTBEAT_S, GRACE_S = 60, 180


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


def make_storage(url: str) -> Any:
    """Optuna's RDB storage on `url`: a busy timeout for SQLite's writers, a heartbeat for dead workers."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval is "experimental"
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
        except (ValueError, ImportError, SQLAlchemyError) as exc:
            raise IfdError(f"--storage {_safe_url(url)}: not a usable database ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0]})") from exc


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
            storage=make_storage(settings.storage or default_storage(ws)),
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
    fanout: Any = None,
) -> dict[str, Any]:
    """Run `settings.n_trials` more trials of the study; report the front, the best settings and the plot.
    With `fanout` (an ifd.bench.fanout.FanoutConfig that is not in-process) the trials run on Dask workers."""
    import optuna

    from ifd.tune.pareto import front_text, non_dominated, plot_front
    from ifd.tune.space import load_space

    space = load_space(settings.space)
    study = open_study(settings, ws, pruner)
    progress(f"[tune] study {settings.study_name!r} ({settings.mode}-objective) on {len(tasks)} task(s); {len(study.trials)} trial(s) so far")
    fanned: list[dict[str, Any]] | None = None
    if fanout is not None and not fanout.in_process:
        fanned = fan_out_trials(tasks, base, ws, settings, fanout, pruner=pruner, progress=progress)
    else:
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
        "fanout": None if fanned is None else {"cluster": fanout.cluster, "jobs": fanout.jobs, "tasks": fanned},
        "text": front_text(front) + (f"\nbest on val (max AA - {settings.alpha:g} * AF): trial {best['trial']}" if best else "")
        + (f"\nfinal report on test (read once): AA {final['AA']:.3f}  AF {final['AF']:+.3f}" if final else ""),
    }


def trial_on_worker(tasks: list[TaskData], base: Any, ws: Workspace, settings: TuneSettings, pruner: Any,
                    deadline: float | None) -> dict[str, Any]:
    """The Dask task of one trial: load the shared study, run one trial of it here, say how it ended."""
    from ifd.bench.fanout import worker_identity
    from ifd.tune.space import load_space

    if deadline is not None and time.time() > deadline:
        return {"trial": None, "state": "SKIPPED", **worker_identity()}
    study = open_study(settings, ws, pruner)
    ended: list[Any] = []
    study.optimize(Objective(tasks, base, ws, settings, load_space(settings.space), lambda _: None), n_trials=1,
                   catch=(IfdError,), callbacks=[lambda _, trial: ended.append(trial)])
    trial = ended[0]
    scores = {k: trial.user_attrs[k] for k in ("AA", "AF", "score") if k in trial.user_attrs}
    return {"trial": trial.number, "state": trial.state.name, **scores, **worker_identity()}


def fan_out_trials(tasks: Sequence[TaskData], base: Any, ws: Workspace, settings: TuneSettings, fanout: Any, *,
                   pruner: Any = None, progress: Progress = print) -> list[dict[str, Any]]:
    """`settings.n_trials` trials of the (already created) study, one Prefect task each on the Dask workers of
    `fanout`; a task that starts after `settings.timeout_s` runs no trial. Returns how each task ended."""
    from ifd.bench.fanout import fan_out
    from ifd.tracking.store import ensure_experiment

    if not settings.n_trials:
        raise IfdError("--n-trials: give a number of trials to fan out over --jobs / --cluster")
    ensure_experiment(ws, settings.experiment)  # created once here, not raced by the workers
    deadline = None if settings.timeout_s is None else time.time() + settings.timeout_s
    seed = settings.sampler_seed
    items = [{"tasks": list(tasks), "base": base, "ws": ws, "pruner": pruner, "deadline": deadline,
              "settings": dataclasses.replace(settings, sampler_seed=None if seed is None else seed + i)}
             for i in range(settings.n_trials)]
    with steps(progress, len(items), "trials") as bar:
        def done(_: int, value: Any) -> None:
            if isinstance(value, BaseException):
                progress(f"[tune] a trial task failed: {type(value).__name__}: {value}")
                bar.advance()
                return
            shown = "" if "AA" not in value else f": val AA {value['AA']:.3f}  AF {value['AF']:+.3f}"
            progress(f"[tune] trial {value['trial']} {value['state'].lower()}{shown} on {value['dask_worker']}")
            bar.advance(f"trial {value['trial']} ({value['state'].lower()})")

        values = fan_out(trial_on_worker, items, fanout, on_done=done, name="ifd-tune")
    return [v if isinstance(v, dict) else {"state": "FAIL", "error": f"{type(v).__name__}: {v}"} for v in values]


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
