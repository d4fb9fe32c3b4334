"""`ifd bench` wall time with 1 vs 2 Dask workers, side by side in one run (issue 14, item 3).

One tiny but not trivial campaign (default: lid and finetune x 2 seeds = 4 runs on a 3-task synthetic
stream, ifd_cnn_tiny at 32 px, 1 epoch, --threads 1) is run into fresh folders:

- `dask-1` and `dask-2`: through `ifd.bench.fanout` on a `distributed.LocalCluster` of 1 and of 2
  single-threaded workers started here (the `--cluster` path; the cluster's start-up is timed apart), so
  the two differ only in the number of workers;
- with --with-in-process also `in-process`: `--jobs 1` without --cluster, the runs one after another as
  children of this process (no Dask, no Prefect): what the fan-out costs over plain subprocesses.

Each run stays its own process (`launch()` inside the Dask task), so its time and peak RSS are its own;
the table shows the campaign's wall time, the sum of its runs' wall times and the largest peak RSS.

    .venv/bin/python benchmarks/dask_fanout.py --out benchmarks/dask_fanout.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def campaign(stream: Path, out: Path, base: Any, args: argparse.Namespace, *, jobs: int = 1,
             cluster: str | None = None) -> dict[str, Any]:
    from ifd.bench.runner import run_bench

    started = time.perf_counter()
    results = run_bench(stream, args.strategies.split(","), list(range(args.seeds)), out, base, threads=args.threads,
                        jobs=jobs, cluster=cluster, reuse=False, progress=lambda _: None)
    wall = time.perf_counter() - started
    runs = results["settings"]["fanout"]["runs"]
    return {
        "wall_s": round(wall, 1),
        "runs": len(runs),
        "sum_run_wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "workers": sorted({str(r["dask_worker"]) for r in runs}),
        "AA": {n: round(e["AA"]["mean"], 4) for n, e in results["strategies"].items()},
        "failed": results["failed"],
        "per_run": runs,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "dask_fanout.json"))
    p.add_argument("--strategies", default="lid,finetune")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--tasks", type=int, default=3)
    p.add_argument("--per-class", dest="per_class", type=int, default=8)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--with-in-process", dest="with_in_process", action="store_true")
    args = p.parse_args()

    from distributed import LocalCluster

    from ifd.bench.fanout import SCHEDULER_HTTP, prefect_api_url
    from ifd.continual.config import load_lid_config

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    base = load_lid_config(None, {"backbone": "ifd_cnn_tiny", "img_size": args.size, "epochs": 1, "batch_size": 8})
    report: dict[str, Any] = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "load_before": load(),
                              "cores": os.cpu_count(), "modes": {}}
    with tempfile.TemporaryDirectory(prefix="ifd-dask-fanout-") as tmp:
        stream = Path(tmp) / "stream"
        subprocess.run([str(Path(sys.executable).parent / "ifd"), "synth", str(stream), "--tasks", str(args.tasks),
                        "--per-class", str(args.per_class), "--size", str(args.size), "--seed", "0",
                        "--workspace", tmp], check=True, stdout=subprocess.DEVNULL)
        if args.with_in_process:
            report["modes"]["in-process"] = campaign(stream, Path(tmp) / "in-process", base, args)
            print("in-process", report["modes"]["in-process"]["wall_s"], "s", flush=True)
        api = prefect_api_url()
        for n in (1, 2):
            started = time.perf_counter()
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=0, dashboard_address=None,
                              scheduler_kwargs=SCHEDULER_HTTP, env={"PREFECT_API_URL": api}) as cluster:
                startup = round(time.perf_counter() - started, 1)
                row = campaign(stream, Path(tmp) / f"dask-{n}", base, args, cluster=cluster.scheduler_address)
            report["modes"][f"dask-{n}"] = {"cluster_startup_s": startup, **row}
            print(f"dask-{n}", row["wall_s"], "s", flush=True)
    modes = report["modes"]
    report["speedup_dask2_vs_dask1"] = round(modes["dask-1"]["wall_s"] / modes["dask-2"]["wall_s"], 2)
    if "in-process" in modes:
        report["speedup_dask2_vs_in_process"] = round(modes["in-process"]["wall_s"] / modes["dask-2"]["wall_s"], 2)
    report["load_after"] = load()
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'mode':<12} {'wall s':>7} {'sum of runs s':>14} {'max RSS MiB':>12}")
    for name, m in modes.items():
        print(f"{name:<12} {m['wall_s']:>7} {m['sum_run_wall_s']:>14} {m['max_peak_rss_mb']:>12}")
    print(f"dask-1 / dask-2 wall: {report['speedup_dask2_vs_dask1']}x; load {report['load_before']} -> {report['load_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
