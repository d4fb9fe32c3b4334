"""Write rate of the prediction log: SQLite file against the PostgreSQL cluster, 1 and N writer processes.

Each writer records `--requests` requests of `--batch` images with a `--dim`-d float16 embedding (192 is
ifd_cnn_small's), as `ifd serve` does (one transaction per request), then a reader takes the monitor's
window of 2000. Prints a Markdown table (rows/s over all writers, window read ms).

    .venv/bin/python benchmarks/prediction_log_write.py [--writers 1 4] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = """
import sys, time, numpy as np
from ifd.monitoring.prediction_log import PredictionLog
url, n, batch, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = PredictionLog(url)
rng = np.random.default_rng()
rows = [{"p_fake": 0.5, "label": "real", "generator": None, "unknown": False, "unknown_score": 0.0}] * batch
emb = rng.normal(size=(batch, dim))
sys.stdin.readline()  # start together
for k in range(n):
    log.record(f"{k}-{time.time_ns()}", "champion", "1", rows, emb)
"""


def _run(url: str, writers: int, requests: int, batch: int, dim: int) -> tuple[float, float]:
    from ifd.monitoring.prediction_log import PredictionLog

    PredictionLog(url)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(requests), str(batch), str(dim)],
                              stdin=subprocess.PIPE, text=True) for _ in range(writers)]
    time.sleep(3)  # imports done
    t0 = time.perf_counter()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.wait()
        assert p.returncode == 0
    rate = writers * requests * batch / (time.perf_counter() - t0)
    t1 = time.perf_counter()
    PredictionLog(url).window("champion", 2000)
    return rate, (time.perf_counter() - t1) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dim", type=int, default=192)
    args = ap.parse_args()
    from ifd.servers.postgres import Cluster

    root = Path(tempfile.mkdtemp(prefix="ifd-pg-bench-"))
    root.chmod(0o755)
    cluster = Cluster(root / "pg", 55471).start()  # durable: fsync on, as `make postgres` runs it
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.requests} requests x {args.batch} images "
          f"per writer, {args.dim}-d embeddings\n")
    print("| store | writers | rows/s | window(2000) read ms |\n|---|---:|---:|---:|")
    try:
        for w in args.writers:
            for name, url in (("sqlite", str(root / f"p{w}.db")), ("postgres", cluster.url("predictions"))):
                rate, read_ms = _run(url, w, args.requests, args.batch, args.dim)
                print(f"| {name} | {w} | {rate:.0f} | {read_ms:.0f} |", flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
