"""Strategies that run on our loop (`ifd.train.loop`, Lightning inside one task).

- `lid`, `lid-no-*`, `lid:<preset>`: the detector (SUR-LID, CVPR 2025) with the variant's deltas over
  the shared config (and the strategy's tuned values, `baseline_params[name]`, when given); replay keeps
  `budget_per_task` samples per task (references + features).
- `finetune`: `ifd.train.variants.naive_config`: detection loss only, no replay, no IDA/DR/LSDA.
- `joint-ce` (also `joint`, CONTRACT's name): at each step a fresh model learns the union of the train
  splits of every task seen so far (fine-tuning config, one CE head). Not LID's bound: that is `joint-lid`
  (ifd/bench/joint_lid.py).

Time per increment is the learn time (fit + replay selection, `IncrementalState.times_s`); evaluation
of the seen tasks is timed separately. The matrix is measured on `ctx.eval_split` ("val" while tuning);
AUC on the raw score (ifd/train/raw_row.py).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ifd.bench.spec import RunContext, RunResult
from ifd.bench.tensors import pixel_bytes
from ifd.data.tasks import TaskData
from ifd.progress import steps


def lid_config(name: str, ctx: RunContext) -> Any:
    """The LIDConfig of strategy `name`: the shared config with the strategy's tuned values
    (`ctx.baseline_params[name]`, LIDConfig fields; an ablation variant gets `lid`'s, see the runner) and
    then the variant's deltas (`lid` = no deltas), so an ablation still switches its part off."""
    from ifd.continual.config import LIDConfig, variant_config

    tuned = dict(ctx.baseline_params.get(name) or {})
    base = LIDConfig.model_validate({**ctx.base.model_dump(), **tuned, "seed": ctx.seed})
    return variant_config(name, base)


def _final_scores(state: Any, ctx: RunContext) -> list[dict[str, Any]]:
    from ifd.train.raw_row import raw_score_row

    model = state.model
    try:
        return raw_score_row(model, ctx.tasks, img_size=state.cfg.img_size, split=ctx.eval_split)[1]
    finally:
        model.cpu()


def _sequence_result(name: str, ctx: RunContext, cfg: Any) -> RunResult:
    from ifd.train.loop import train_sequence

    out = ctx.work_dir / "train"
    try:
        state = train_sequence(ctx.tasks, cfg, out, resume=False, progress=ctx.progress, eval_split=ctx.eval_split,
                               open_set=ctx.open_set)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    n = len(state.store)
    index_bytes = _unknown_index_bytes(state)
    notes: dict[str, Any] = {
        "replay": "references + pooled features (images re-read from the batch store) + the unknown score's bank",
        "unknown_index_bytes": index_bytes,
        "calibration": "replay store + the newest task's val split", "config": cfg.model_dump(mode="json"),
    }
    if ctx.open_set:
        notes["open_set"] = list(state.open_set)
    return RunResult(
        strategy=name,
        seed=ctx.seed,
        matrix=state.matrix.to_dict(),
        time_per_task_s=list(state.times_s),
        eval_time_per_task_s=list(state.eval_times_s),
        replay_samples=n,
        replay_bytes=int(state.store.nbytes()) + index_bytes,
        replay_pixel_bytes=pixel_bytes(n, state.cfg.img_size),
        notes=notes,
        final_scores=_final_scores(state, ctx),
    )


def _unknown_index_bytes(state: Any) -> int:
    """What the unknown-generator score keeps after the last task (kNN: its feature bank), part of the
    memory budget like the replay store."""
    from ifd.eval.attribution import AttributionIndex

    if not state.attribution:
        return 0
    return int(AttributionIndex.from_dict(state.attribution).scorer.nbytes())


def run_lid(name: str, ctx: RunContext) -> RunResult:
    return _sequence_result(name, ctx, lid_config(name, ctx))


def run_finetune(name: str, ctx: RunContext) -> RunResult:
    from ifd.train.variants import naive_config

    tuned = dict(ctx.baseline_params.get(name) or {})
    return _sequence_result(name, ctx, naive_config(ctx.base.model_copy(update={"seed": ctx.seed, **tuned})))


def union_task(tasks: Sequence[TaskData], name: str) -> TaskData:
    """One task whose rows are the rows of `tasks` (paths made absolute, so one root serves all)."""
    frames = []
    for task in tasks:
        frame = task.frame.copy()
        frame["path"] = [str((task.root / p).resolve()) for p in frame["path"]]
        frames.append(frame)
    return TaskData(name=name, root=Path(tasks[0].root.anchor), frame=pd.concat(frames, ignore_index=True))


def finish_joint(result: RunResult, matrix: Any, ctx: RunContext, img_size: int) -> RunResult:
    """A joint run's matrix, and its memory: it keeps every train image of every task so far."""
    n = sum(len(t.split("train")) for t in ctx.tasks)
    result.matrix = matrix.to_dict()
    result.replay_samples = n
    result.replay_pixel_bytes = result.replay_bytes = pixel_bytes(n, img_size)
    return result


def run_joint_ce(name: str, ctx: RunContext) -> RunResult:
    """A fresh fine-tuned one-head model per step on the union of the seen tasks; row t tests it on each
    seen task. Calibration: the union's val split (every seen task's val: joint keeps everything)."""
    from ifd.eval.matrix import ResultMatrix
    from ifd.train.loop import learn_task
    from ifd.train.raw_row import raw_score_row
    from ifd.train.variants import naive_config

    tuned = dict(ctx.baseline_params.get(name) or {})
    cfg = naive_config(ctx.base.model_copy(update={"seed": ctx.seed, **tuned}))
    matrix = ResultMatrix()
    result = RunResult(strategy=name, seed=ctx.seed, notes={"replay": "all past train images (re-read from disk)"})
    bar = steps(ctx.progress, len(ctx.tasks), "tasks")  # [progress] lines: `ifd bench` shows them as a bar
    for t, task in enumerate(ctx.tasks):
        bar.start(f"task {t} {task.name!r}")
        seen = ctx.tasks[: t + 1]
        out = ctx.work_dir / f"joint_{t}"
        try:
            state = learn_task(None, union_task(seen, f"joint_{t}"), cfg, out, [], resume=False, progress=ctx.progress)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        row, result.final_scores = raw_score_row(state.model, seen, img_size=cfg.img_size, split=ctx.eval_split)
        matrix.add(task.name, row)
        state.model.cpu()
        result.time_per_task_s.append(state.times_s[0])
        result.eval_time_per_task_s.append(round(time.perf_counter() - started, 3))
        ctx.progress(f"[bench] {name} step {t}: AUC " + " ".join(f"{a:.3f}" for a in row.auc))
        bar.advance()
    bar.close()
    return finish_joint(result, matrix, ctx, cfg.img_size)
