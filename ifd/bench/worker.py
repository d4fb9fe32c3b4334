"""One (strategy, seed) of a benchmark, in a process of its own: `python -m ifd.bench.worker SPEC_JSON`.

Reads the spec, runs the strategy, writes `result.json` next to the spec (also when the run fails: the
error is in it) and exits 0 on success, 1 on failure. The peak RSS (`ru_maxrss` of this process) and
the wall time belong to this run alone, because the parent starts a fresh interpreter for each.
"""

from __future__ import annotations

import resource
import sys
import time
import traceback
from pathlib import Path

from ifd.bench.spec import RESULT_FILE, Progress, RunContext, RunResult, RunSpec
from ifd.errors import IfdError


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def context(spec: RunSpec, progress: Progress = print) -> RunContext:
    """The runner's context: the stream's first `spec.tasks` tasks (a task without val rows gets its explicit
    seeded hold-out from train, the same for every strategy) and the shared config."""
    from ifd.continual.config import LIDConfig
    from ifd.data.tasks import tasks_from_stream
    from ifd.train.val_split import with_val

    tasks = tasks_from_stream(Path(spec.stream))
    if spec.tasks is not None:
        if spec.tasks > len(tasks):
            raise IfdError(f"{spec.stream} has {len(tasks)} task(s); cannot take the first {spec.tasks}")
        tasks = tasks[: spec.tasks]
    tasks = [with_val(t, progress) for t in tasks]
    base = LIDConfig.model_validate({**spec.lid, "seed": spec.seed})
    return RunContext(
        tasks=tasks,
        base=base,
        seed=spec.seed,
        work_dir=Path(spec.work_dir),
        baseline_params=spec.baseline_params,
        peer_metrics=spec.peer_metrics,
        progress=progress,
        eval_split=spec.eval_split,
        open_set=spec.open_set,
    )


def preload(family: str) -> float:
    """Import the strategy's framework before it runs; the peak RSS then, i.e. what the libraries alone
    take (torch's CUDA build maps ~0.7 GiB before any training), so a reader can tell the run's own part."""
    if family == "avalanche":
        from ifd.bench.avalanche_adapter import preload as preload_avalanche

        preload_avalanche()
    else:
        import ifd.train.loop  # noqa: F401
    return peak_rss_mb()


def run_one(spec: RunSpec, progress: Progress = print) -> RunResult:
    """Run `spec` in this process; failures come back as a result with `error` set."""
    import torch

    from ifd.bench.strategies import resolve

    started = time.perf_counter()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    try:
        strategy = resolve(spec.strategy)
        if strategy.unsupported:
            raise IfdError(f"{spec.strategy}: {strategy.unsupported}")
        ctx = context(spec, progress)
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        rss_imports = preload(strategy.family)
        result: RunResult = strategy.run(spec.strategy, ctx)
        result.notes["rss_after_imports_mb"] = rss_imports
    except Exception as exc:  # one strategy's failure is reported, not fatal to the campaign
        detail = "" if isinstance(exc, IfdError) else "\n" + traceback.format_exc(limit=-4)
        result = RunResult(strategy=spec.strategy, seed=spec.seed, error=f"{type(exc).__name__}: {exc}{detail}")
    result.wall_s = round(time.perf_counter() - started, 2)
    result.peak_rss_mb = peak_rss_mb()
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ifd.bench.worker SPEC_JSON", file=sys.stderr)
        return 2
    spec_path = Path(args[0])
    spec = RunSpec.load(spec_path)

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from ifd.progress import Reporter, activate

    with activate(Reporter(sys.stderr, mode="plain")):  # plain `[progress]` lines: the parent shows them as bars
        result = run_one(spec, progress)
    result.save(spec_path.with_name(RESULT_FILE))
    if result.error:
        print(f"[bench] {spec.strategy} seed {spec.seed} failed: {result.error.splitlines()[0]}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
