"""Our loop over tasks, Lightning inside one task (SUR-LID, CVPR 2025: LID + Sparse Uniform Replay).

`learn_task` is one increment: teacher = frozen copy of the model, a new head, one fresh Trainer.fit
(new optimizer), then replay selection, centroids, evaluation of every seen task (one row of a[t][i])
and the state saved to `out_dir/state_task_<t>.pt` and `out_dir/state.pt`. `train_sequence` is a loop
over `learn_task` that resumes: finished tasks are loaded from their state file, and a task that was
interrupted continues from its last epoch checkpoint `out_dir/ckpt/task_<t>/last.ckpt`.
"""

from __future__ import annotations

import copy
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from ifd.data.image_dataset import ImageCache, image_cache
from ifd.data.tasks import TaskData
from ifd.errors import IfdError
from ifd.progress import epoch_callback, steps
from ifd.train.attribution_fit import calibrate, calibration_set, fit_index, open_set_report
from ifd.train.datamodule import TaskIncrementDataModule
from ifd.train.ddp import forks_workers
from ifd.train.module import LIDModule
from ifd.train.raw_row import raw_score_row
from ifd.train.replay_update import update_replay
from ifd.train.state import IncrementalState, build_detector
from ifd.train.trainer import fit_context, make_trainer, usable_checkpoint
from ifd.train.val_split import with_val

Progress = Callable[[str], None]
STATE_FILE = "state.pt"
_STATE_TASK = re.compile(r"state_task_(\d+)\.pt$")
# Keys whose change makes a saved model unusable with the new config.
_ARCH_KEYS = ("backbone", "img_size", "features_only")


def state_path(out_dir: Path, t: int) -> Path:
    return Path(out_dir) / f"state_task_{t}.pt"


def ckpt_dir(out_dir: Path, t: int) -> Path:
    return Path(out_dir) / "ckpt" / f"task_{t}"


def new_state(cfg: Any) -> IncrementalState:
    """A detector with no task learned yet (local backbone weights when the config names a file)."""
    from ifd.continual.replay_store import ReplayStore
    from ifd.eval.matrix import ResultMatrix

    return IncrementalState(
        cfg=cfg,
        model=build_detector(cfg, n_heads=0, pretrained=True),
        store=ReplayStore(features_only=bool(cfg.features_only)),
        matrix=ResultMatrix(task_names=[]),
    )


def learn_task(
    state: IncrementalState | None,
    task: TaskData,
    cfg: Any,
    out_dir: Path,
    previous: Sequence[TaskData] = (),
    *,
    resume: bool = True,
    progress: Progress = print,
    callbacks: Sequence[pl.Callback] = (),
    cache: ImageCache | None = None,
    eval_split: str = "test",
) -> IncrementalState:
    """Learn `task` on top of `state` (None: from scratch); `previous` are the tasks `state` learned, in order.

    Calibration and thresholds read only the budgeted calibration set (replay + the new task's val split);
    the matrix row is measured on `eval_split` of every seen task ("val" while tuning: test stays unread).
    A task without val rows gets an explicit seeded hold-out from its train split (`with_val`)."""
    task = with_val(task, progress)
    previous = [with_val(p) for p in previous]
    t = state.n_tasks if state is not None else 0
    pl.seed_everything(int(cfg.seed) + t, workers=True, verbose=False)
    state = new_state(cfg) if state is None else state
    _check_previous(state, task, previous)
    out_dir = Path(out_dir)
    cache = cache if cache is not None else image_cache(cfg)
    started = time.perf_counter()

    # The student, store and matrix are copies: the caller's state (e.g. the champion) stays as it was.
    model = copy.deepcopy(state.model)
    store = copy.deepcopy(state.store)
    matrix = copy.deepcopy(state.matrix)
    teacher = copy.deepcopy(state.model).eval() if t > 0 and cfg.weight_dis > 0 else None
    head = model.start_task()
    if head != t:
        raise IfdError(f"the detector has {head} heads for {t} learned tasks; the state is inconsistent")
    roots = {**state.task_roots, **{p.name: str(p.root) for p in previous}}
    data = TaskIncrementDataModule(task, t, cfg, store, roots, cache, seed=int(cfg.seed) + t)
    module = LIDModule(
        model,
        teacher,
        cfg,
        state.centroids,
        t,
        seed=int(cfg.seed),
        on_epoch_end=_epoch_line(progress, task, t),
    )
    cdir = ckpt_dir(out_dir, t)
    ckpt = usable_checkpoint(cdir) if resume else None
    if ckpt is None and cdir.exists():
        shutil.rmtree(cdir)
    progress(
        f"[train] task {t} {task.name!r}: {cfg.epochs} epoch(s)" + (f", resuming from {ckpt}" if ckpt else "")
    )
    # DDP workers are forked: a bar there would draw on a copy of this terminal's; rank 0 prints epoch lines
    bar = [] if forks_workers(cfg) else [epoch_callback(progress, f"task {t} epochs")]
    with fit_context():
        make_trainer(cfg, cdir, out_dir, [*callbacks, *bar]).fit(module, datamodule=data, ckpt_path=ckpt)
    # Under DDP the workers have exited here and `module` holds rank 0's weights: what follows (replay
    # selection, centroids, calibration, evaluation, the state file) runs once, in this process.
    model = module.model.to(_eval_device(cfg))

    centroids = {**state.centroids, **update_replay(model, task, t, cfg, store, cache)}
    learn_s = time.perf_counter() - started
    seen = [*previous, task]
    all_roots = {**roots, task.name: str(task.root)}
    cal = calibration_set(model, seen, store, all_roots, cfg.img_size, cache)
    calibrate(model, cal)
    row, _ = raw_score_row(model, seen, img_size=cfg.img_size, split=eval_split, cache=cache)
    matrix.add(task.name, row)
    aucs = row.auc
    progress(f"[train] task {t} {task.name!r} done: {eval_split} AUC " + " ".join(f"{a:.3f}" for a in aucs))
    index = fit_index(model, seen, store, all_roots, cfg, cache, cal, centroids)

    state = IncrementalState(
        cfg=cfg,
        model=model,
        store=store,
        task_names=[*state.task_names, task.name],
        matrix=matrix,
        centroids=centroids,
        attribution=index.to_dict(),
        task_roots={**roots, task.name: str(task.root)},
        times_s=[*state.times_s, round(learn_s, 3)],
        eval_times_s=[*state.eval_times_s, round(time.perf_counter() - started - learn_s, 3)],
        open_set=list(state.open_set),
    )
    state.save(state_path(out_dir, t))
    state.save(out_dir / STATE_FILE)
    shutil.rmtree(cdir, ignore_errors=True)
    model.cpu()
    return state


def train_sequence(
    tasks: Sequence[TaskData],
    cfg: Any,
    out_dir: Path,
    resume: bool = True,
    progress: Progress = print,
    callbacks: Sequence[pl.Callback] = (),
    open_set: bool = False,
    on_task_end: Callable[[IncrementalState], None] | None = None,
    eval_split: str = "test",
) -> IncrementalState:
    """Learn `tasks` in order; with `resume`, skip the tasks whose state file exists and continue the next.

    With `open_set`, after each task the next (not yet learned) task's fakes serve as an unseen generator:
    attribution accuracy and unknown-generator AUC are appended to `state.open_set`. `on_task_end(state)`
    runs after every task (e.g. an Optuna trial reporting AA so far; it may raise to stop the sequence).
    `eval_split` is the split the matrix is measured on: "test" for a report, "val" for every choice.
    """
    if not tasks:
        raise IfdError("no tasks to learn")
    tasks = [with_val(t, progress) for t in tasks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise IfdError(f"task names must be unique; got {names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = _resume_state(out_dir, names, cfg, progress) if resume else None
    if not resume:
        _clear(out_dir)
    cache = image_cache(cfg)
    start = state.n_tasks if state is not None else 0
    with steps(progress, len(tasks), "tasks", done=start) as bar:
        for t in range(start, len(tasks)):
            bar.start(f"task {t} {tasks[t].name!r}")
            state = learn_task(
                state,
                tasks[t],
                cfg,
                out_dir,
                tasks[:t],
                resume=resume,
                progress=progress,
                callbacks=callbacks,
                cache=cache,
                eval_split=eval_split,
            )
            if open_set:
                state.open_set.append(_open_set(state, tasks[: t + 1], tasks[t + 1 : t + 2], cfg, cache))
                state.save(state_path(out_dir, t))
                state.save(out_dir / STATE_FILE)
            if on_task_end is not None:
                on_task_end(state)
            bar.advance()
    assert state is not None
    return state


def _open_set(state: IncrementalState, seen: Sequence[TaskData], unseen: Sequence[TaskData], cfg: Any, cache: ImageCache) -> dict[str, Any]:
    """Attribution on the seen tasks and the unknown-generator AUC on the next, not yet learned, task."""
    from ifd.eval.attribution import AttributionIndex

    assert state.attribution is not None
    index = AttributionIndex.from_dict(state.attribution)
    model = state.model.to(_eval_device(cfg))
    try:
        return open_set_report(model, index, seen, unseen, cfg, cache, state=state)  # every unknown score side by side
    finally:
        model.cpu()


def _resume_state(out_dir: Path, names: list[str], cfg: Any, progress: Progress) -> IncrementalState | None:
    """The state of the last finished task of this sequence in `out_dir`, or None."""
    done = sorted(
        int(m.group(1)) for p in out_dir.glob("state_task_*.pt") if (m := _STATE_TASK.search(p.name))
    )
    done = [k for k in done if k < len(names)]
    if not done:
        return None
    k = done[-1]
    state = IncrementalState.load(state_path(out_dir, k))
    if state.task_names != names[: k + 1]:
        raise IfdError(
            f"{out_dir} holds a run over tasks {state.task_names}, not {names[: k + 1]}; "
            "use another output folder or resume=False"
        )
    old, new = state.cfg.model_dump(), cfg.model_dump()
    clash = [key for key in _ARCH_KEYS if old.get(key) != new.get(key)]
    if clash:
        raise IfdError(
            f"{out_dir}: the saved run used other {', '.join(clash)}; use another output folder or resume=False"
        )
    changed = sorted(key for key in new if old.get(key) != new[key])
    if changed:
        progress(
            f"[train] note: config differs from the saved run in {', '.join(changed)}; continuing with the new one"
        )
    state.cfg = cfg
    progress(f"[train] resuming after task {k} {names[k]!r}")
    return state


def _clear(out_dir: Path) -> None:
    """Forget a previous run in `out_dir`: its state files and epoch checkpoints."""
    for p in out_dir.glob("state_task_*.pt"):
        p.unlink()
    (out_dir / STATE_FILE).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "ckpt", ignore_errors=True)


def _eval_device(cfg: Any) -> torch.device:
    """Where features and scores are computed after fit (Lightning hands the model back on the CPU)."""
    wanted = str(getattr(cfg, "accelerator", "auto"))
    use_cuda = torch.cuda.is_available() and wanted in ("auto", "gpu", "cuda")
    return torch.device("cuda" if use_cuda else "cpu")


def _check_previous(state: IncrementalState, task: TaskData, previous: Sequence[TaskData]) -> None:
    names = [p.name for p in previous]
    if names != state.task_names:
        raise IfdError(
            f"learning {task.name!r} needs the tasks the detector already learned, in order: "
            f"{state.task_names}; got {names}"
        )
    if task.name in state.task_names:
        raise IfdError(f"task {task.name!r} was already learned; a retrain needs a new batch name")


def _epoch_line(progress: Progress, task: TaskData, t: int) -> Callable[[int, dict[str, float]], None]:
    def report(epoch: int, losses: dict[str, float]) -> None:
        parts = " ".join(f"{k}={v:.4f}" for k, v in sorted(losses.items()))
        progress(f"[train] task {t} {task.name!r} epoch {epoch}: {parts}")

    return report
