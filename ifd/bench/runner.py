"""A benchmark campaign: every (strategy, seed) in a fresh worker process, then results.json / .md / plots.

Runs go one after another in this process's children (`jobs=1`), or fan out as Prefect tasks on a Dask
task runner (`ifd.bench.fanout`): `jobs` local Dask workers with one thread each, or the workers of the
scheduler at `cluster`. Either way each run is its own `python -m ifd.bench.worker` process, started by
`launch()` (inside the Dask task when fanned out), so its peak RSS and time are its own; its time includes
the neighbours' memory traffic (give `threads=1` with several jobs, so the cores are not over-subscribed;
a Dask worker's environment has OMP_NUM_THREADS=1, so a run without `threads` gets one torch thread there).
Each run's result notes where it ran (Dask worker address, host, pids); results.json lists them under
`settings.fanout.runs`.
A run that fails, crashes or times out is reported with its reason, and the others go on. Each run leaves
`DIR/runs/<strategy>__seed<k>/{spec.json, result.json, log.txt}`; with `reuse` (the default), a run whose
folder already holds a result for the same spec is not run again, and results.json aggregates every run in
DIR, also those of earlier pieces (`ifd.bench.campaign`): a campaign can run in pieces across sessions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ifd.bench.report_md import results_markdown, safe_name, write_plots
from ifd.bench.schema import validate_results
from ifd.bench.spec import LOG_FILE, RESULT_FILE, SPEC_FILE, Progress, RunResult, RunSpec
from ifd.errors import IfdError
from ifd.progress import Bar, steps
from ifd.progress_relay import Relay

SHARED_KEYS = ("backbone", "img_size", "epochs", "batch_size", "lr", "weight_decay", "budget_per_task", "replay_per_batch")


def run_dir(out: Path, strategy: str, seed: int) -> Path:
    return Path(out) / "runs" / f"{safe_name(strategy)}__seed{seed}"


def launch(spec: RunSpec, progress: Progress, timeout_s: float | None = None, outer: Bar | None = None) -> RunResult:
    """Run `spec` in `python -m ifd.bench.worker`; its log goes to log.txt, its [bench] lines to `progress`,
    its [progress] lines to a bar of this run (and its share done to `outer`, the campaign's bar)."""
    folder = Path(spec.work_dir)
    spec_path = spec.save(folder / SPEC_FILE)
    (folder / RESULT_FILE).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ifd.bench.worker", str(spec_path)]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    tail: list[str] = []
    relay = Relay(progress, f"{spec.strategy} seed {spec.seed}", outer=outer)  # the worker's [progress] lines
    with open(folder / LOG_FILE, "w") as log, subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-19:], line.rstrip()]
            if line.startswith("[bench]"):
                progress(f"  {line.rstrip()}")
            else:
                relay.feed(line)
            if deadline is not None and time.monotonic() > deadline:
                proc.kill()
                break
        code = proc.wait()
    relay.close()
    result_path = folder / RESULT_FILE
    if result_path.is_file():
        result = RunResult.load(result_path)
        result.notes["run_pid"] = proc.pid
        return result
    reason = f"timed out after {timeout_s:.0f} s" if deadline and time.monotonic() > deadline else f"worker exited with {code}"
    return RunResult(strategy=spec.strategy, seed=spec.seed, error=f"{reason}; last output: {' | '.join(tail[-3:])}")


def machine() -> dict[str, Any]:
    """The CPU, its core count, the Python / torch versions: what a reader needs to compare timings."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def run_bench(
    stream: Path,
    strategies: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    base: Any,
    *,
    tasks: int | None = None,
    baseline_params: dict[str, dict[str, Any]] | None = None,
    threads: int | None = None,
    timeout_s: float | None = None,
    progress: Progress = print,
    jobs: int = 1,
    reuse: bool = True,
    eval_split: str = "test",
    cluster: str | None = None,
    open_set: bool = False,
) -> dict[str, Any]:
    """Run every strategy on every seed, write DIR/results.json, results.md and the plots; return results.
    `jobs` runs at a time on a local Dask cluster, or on the Dask scheduler at `cluster` (ifd.bench.fanout).
    `open_set`: LID runs also score, after each task, the next task as an unseen generator (every unknown score)."""
    from ifd.bench.aggregate import build_results
    from ifd.bench.fanout import FanoutConfig
    from ifd.bench.strategies import resolve
    from ifd.data.tasks import tasks_from_stream

    fan = FanoutConfig.build(jobs=jobs, cluster=cluster)

    n_tasks = len(tasks_from_stream(Path(stream)))
    if tasks is not None and not 1 <= tasks <= n_tasks:
        raise IfdError(f"--tasks {tasks}: {stream} has {n_tasks} task(s); take between 1 and {n_tasks}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    specs: list[tuple[str, int, RunSpec | None, str | None]] = []
    for name in strategies:
        strategy = resolve(name)
        for seed in seeds:
            if strategy.unsupported:
                specs.append((name, seed, None, f"{name}: {strategy.unsupported}"))
                continue
            spec = RunSpec(
                strategy=name, seed=seed, stream=str(Path(stream).resolve()), tasks=tasks,
                lid=base.model_dump(mode="json"), threads=threads,
                baseline_params=own_params(name, baseline_params or {}),
                work_dir=str(run_dir(out, name, seed).resolve()), eval_split=eval_split,
                open_set=open_set,
            )
            specs.append((name, seed, spec, None))

    from ifd.bench.campaign import collect, finished

    kept = {id(spec): finished(spec) for _, _, spec, _ in specs if spec is not None} if reuse else {}

    results_in_order: list[RunResult | None] = [None] * len(specs)
    todo: list[int] = []
    with steps(progress, len(specs), "runs") as bar:
        for i, (name, seed, spec, unsupported) in enumerate(specs):
            previous = kept.get(id(spec)) if spec is not None else None
            if spec is None:
                results_in_order[i] = RunResult(strategy=name, seed=seed, error=unsupported)
            elif previous is not None:
                progress(f"[bench] {name} seed {seed}: kept from an earlier run")
                results_in_order[i] = previous
            else:
                todo.append(i)
                continue
            bar.advance(f"{name} seed {seed}", skipped=True)
        to_run = [spec for i in todo if (spec := specs[i][2]) is not None]
        if to_run:
            if fan.in_process:
                done = run_here(to_run, timeout_s, progress, bar)
            else:
                done = run_on_dask(to_run, fan, timeout_s, progress, bar)
            for i, result in zip(todo, done, strict=True):
                results_in_order[i] = result
    ran = [r for i in todo if (r := results_in_order[i]) is not None]
    runs, stored_seeds = collect(out, strategies)
    for (name, _, spec, _), result in zip(specs, results_in_order, strict=True):
        if result is not None and (spec is None or not (Path(spec.work_dir) / RESULT_FILE).is_file()):  # refused, or died without a file
            runs.setdefault(name, []).append(result)
    seeds = sorted({*seeds, *stored_seeds})
    settings = {
        **{k: getattr(base, k) for k in SHARED_KEYS},
        "preset_config": base.model_dump(mode="json"),
        "tasks": tasks,
        "baseline_params": baseline_params or {},
        "machine": machine() | ({"torch_threads": threads} if threads else {}),
        "date": dt.date.today().isoformat(),
        "wall_s": round(time.perf_counter() - started, 1),
        "jobs": jobs,
        "fanout": fanout_settings(fan, ran),
        "eval_split": eval_split,
    }
    results = build_results(str(stream), seeds, runs, settings)
    plots = write_plots(results, out)
    results["plots"] = plots
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(results_markdown(results, plots))
    validate_results(results)  # after writing: a campaign's numbers are never thrown away
    return results


def run_here(specs: Sequence[RunSpec], timeout_s: float | None, progress: Progress, bar: Bar) -> list[RunResult]:
    """One run after another, each in a child process of this one; its progress lines feed `bar`."""
    results = []
    for spec in specs:
        item = f"{spec.strategy} seed {spec.seed}"
        progress(f"[bench] {item} ...")
        bar.start(item)
        result = launch(spec, progress, timeout_s, outer=bar)
        progress(f"[bench] {item}: {_line(result)}")
        bar.advance(item)
        results.append(result)
    return results


def run_on_worker(spec: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    """The Dask task of one run: `launch()` it (its own process) and note this worker in its result.json."""
    from ifd.bench.fanout import worker_identity

    run_spec = RunSpec.model_validate(spec)
    result = launch(run_spec, lambda _: None, timeout_s)
    result.notes.update(worker_identity())
    result_path = Path(run_spec.work_dir) / RESULT_FILE
    if result_path.is_file():
        result.save(result_path)
    return result.to_dict()


def run_on_dask(specs: Sequence[RunSpec], fan: Any, timeout_s: float | None, progress: Progress, bar: Bar) -> list[RunResult]:
    """Every run as a Prefect task on the Dask task runner of `fan` (a FanoutConfig); `bar` advances as runs end."""
    from ifd.bench.fanout import fan_out

    where = fan.cluster or f"a local Dask cluster of {fan.jobs} workers"
    progress(f"[bench] {len(specs)} run(s) on {where} ...")
    for spec in specs:
        bar.start(f"{spec.strategy} seed {spec.seed}")

    def done(i: int, value: Any) -> None:
        spec = specs[i]
        result = _as_result(spec, value)
        progress(f"[bench] {spec.strategy} seed {spec.seed}: {_line(result)} on {result.notes.get('dask_worker', '?')}")
        bar.advance(f"{spec.strategy} seed {spec.seed}")

    values = fan_out(run_on_worker, [{"spec": s.model_dump(mode="json"), "timeout_s": timeout_s} for s in specs], fan,
                     on_done=done, name="ifd-bench")
    return [_as_result(spec, value) for spec, value in zip(specs, values, strict=True)]


def _as_result(spec: RunSpec, value: Any) -> RunResult:
    if isinstance(value, dict):
        return RunResult(**value)
    return RunResult(strategy=spec.strategy, seed=spec.seed, error=f"the Dask task failed: {type(value).__name__}: {value}")


def fanout_settings(fan: Any, ran: Sequence[RunResult]) -> dict[str, Any]:
    """results.json's record of where this call's runs ran: the task runner and each run's worker and pids."""
    keys = ("dask_worker", "host", "worker_pid", "run_pid")
    return {
        "task_runner": "in-process" if fan.in_process else "dask",
        "cluster": fan.cluster,
        "local_workers": None if fan.in_process or fan.cluster else fan.jobs,
        "runs": [{"strategy": r.strategy, "seed": r.seed, "wall_s": r.wall_s, "peak_rss_mb": r.peak_rss_mb,
                  **{k: r.notes.get(k) for k in keys}} for r in ran],
    }


def own_params(name: str, params: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The tuned values a run of `name` gets: its own entry; an ablation variant or preset of LID
    (`lid-*`, `lid:<preset>`) without one gets `lid`'s, so it differs from `lid` by its deltas only."""
    own = params.get(name)
    if own is None and name.startswith("lid") and name != "lid":
        own = params.get("lid")
    return {name: dict(own)} if own else {}


def _line(r: RunResult) -> str:
    if not r.ok:
        return f"FAILED ({(r.error or '').splitlines()[0]})"
    auc = (r.matrix or {}).get("auc", [[]])
    aa = sum(auc[-1]) / len(auc[-1]) if auc and auc[-1] else float("nan")
    return f"AA {aa:.3f}, {sum(r.time_per_task_s):.1f} s learning, peak RSS {r.peak_rss_mb:.0f} MiB, {r.wall_s:.0f} s"
