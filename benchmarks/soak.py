"""A bounded soak test of the scoring API on loopback -> benchmarks/soak.md and benchmarks/soak.json.

Starts `ifd serve` on a free local port against a workspace with at least two versions (built on first
use in `.ifd/soak`: two synthetic families, a tiny detector, one epoch each), then for `--duration`
seconds (default 600):

- `--clients` concurrent HTTP clients post one-image PNGs (the workspace's test images) back to back;
- every `--flip-every` seconds (default 30) the registry's `champion` alias moves to the other version
  (the API picks it up in the background, `--poll` 1 s);
- every `--monitor-every` seconds (default 60) the monitor runs in this process: the same checks as
  `ifd monitor` (drift, unknown generator, forgetting on every task's holdout), without Prefect;
- the server's RSS (/proc/<pid>/status VmRSS) is sampled every 2 s.

Pass criteria (exit 0 only if all hold): zero 5xx and zero transport errors; every answered request's
id is in the prediction log, with the version that answered it; RSS at the end / RSS after the warm-up
(`--warmup`, default 60 s) <= 1.1; no traceback in the server's log; at least one flip was served.

    .venv/bin/python benchmarks/soak.py                       # the real run: 10 minutes
    .venv/bin/python benchmarks/soak.py --duration 20 --warmup 5 --flip-every 6 --monitor-every 8 --out /tmp/soak.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def build_workspace(root: Path) -> list[str]:
    """A workspace with two approved versions (two families, ifd_cnn_tiny at 32 px, one epoch); their numbers."""
    from ifd.config import load_config
    from ifd.data.ingest import ingest_batch
    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve
    from ifd.synth.config import SynthConfig
    from ifd.synth.stream import write_stream
    from ifd.tracking.model_registry import list_versions
    from ifd.workspace import Workspace
    from ifd.workspace_init import init_workspace

    ws = Workspace.at(root)
    if (root / ".ifd" / "mlflow.db").is_file():
        found = [v.version for v in list_versions(ws) if v.tags.get("decision") == "approved"]
        if len(found) >= 2:
            return found[-2:]
    print(f"[soak] building a workspace with two versions in {root} (a minute or two)", file=sys.stderr)
    cfg = load_config(ROOT / "params.yaml")
    ws = init_workspace(ws)
    (ws.root / "registry").mkdir(exist_ok=True)  # a one-epoch detector for the soak, not for accuracy: no gate
    (ws.root / "registry" / "gate.yaml").write_text("max_old_task_auc_drop: 1.0\nmin_new_task_auc: 0.0\nmax_aa_drop: 1.0\n")
    batches = write_stream(root.parent / "soak-stream", SynthConfig(tasks=2, per_class=48, size=32, seed=0), overwrite=True)
    lid = cfg.lid().model_dump(mode="json") | {"epochs": 1, "backbone": "ifd_cnn_tiny", "img_size": 32}
    versions = []
    for batch in batches:
        ingest_batch(batch, batch.name, ws, cfg.ingest)
        result = rt.run_retrain(ws, batch.name, lid, progress=lambda line: print(line, file=sys.stderr))
        approve(ws, result["version"], "soak", "benchmark workspace: approved automatically, not reviewed")
        versions.append(str(result["version"]))
    return versions


class Flipper(threading.Thread):
    """Moves `champion` between the versions every `every` seconds until stopped."""

    def __init__(self, ws: Any, versions: list[str], every: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.ws, self.versions, self.every, self.stop = ws, versions, every, stop
        self.flips: list[tuple[float, str]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        from ifd.tracking import model_registry as reg

        i = 0
        while not self.stop.wait(self.every):
            i += 1
            target = self.versions[i % len(self.versions)]
            try:
                reg.set_alias(self.ws, "champion", target)
                self.flips.append((time.time(), target))
            except Exception as exc:  # noqa: BLE001  (reported, not fatal)
                self.errors.append(f"flip to {target}: {exc}"[:200])


class Monitor(threading.Thread):
    """Runs the monitor's checks on the current champion every `every` seconds until stopped."""

    def __init__(self, root: Path, every: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.stop = root, every, stop
        self.runs: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        from ifd.monitoring.service import monitor_champion

        while not self.stop.wait(self.every):
            t0 = time.perf_counter()
            try:
                report = monitor_champion(str(self.root), holdout=True)
                self.runs.append({"version": report["version"], "alerts": len(report["alerts"]), "seconds": round(time.perf_counter() - t0, 1)})
            except Exception as exc:  # noqa: BLE001
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])


async def client(url: str, images: list[bytes], stop_at: float, answers: list[dict[str, Any]], errors: list[str], seed: int) -> None:
    import httpx

    rng = np.random.default_rng(seed)
    async with httpx.AsyncClient(timeout=60) as c:
        while time.monotonic() < stop_at:
            img = images[int(rng.integers(len(images)))]
            t0 = time.perf_counter()
            try:
                r = await c.post(url, files=[("files", ("a.png", img, "image/png"))])
            except httpx.HTTPError as exc:
                errors.append(repr(exc)[:200])
                continue
            row = {"status": r.status_code, "ms": (time.perf_counter() - t0) * 1000, "t": time.time()}
            if r.status_code == 200:
                body = r.json()
                row |= {"request_id": body["request_id"], "version": body["model_version"]}
            else:
                row["detail"] = r.text[:200]
            answers.append(row)


def logged(db: Path, want: int, wait_s: float = 30.0) -> dict[str, str]:
    """request_id -> version of the champion rows in the prediction log, waiting for late writes."""
    deadline = time.time() + wait_s
    found: dict[str, str] = {}
    while time.time() < deadline:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
            found = dict(con.execute("SELECT request_id, version FROM predictions WHERE role = 'champion'").fetchall())
        if len(found) >= want:
            break
        time.sleep(1)
    return found


def sample_rss(pid: int, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    while not stop.wait(2.0):
        try:
            samples.append((time.time(), rss_kb(pid)))
        except (OSError, KeyError):
            return


def main() -> int:  # noqa: PLR0915  (one linear script)
    import httpx

    from ifd.tracking import model_registry as reg
    from ifd.workspace import Workspace

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default=str(ROOT / ".ifd" / "soak"))
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--flip-every", type=float, default=30.0)
    p.add_argument("--monitor-every", type=float, default=60.0)
    p.add_argument("--out", default=str(HERE / "soak.md"))
    args = p.parse_args()

    root = Path(args.workspace).resolve()
    versions = build_workspace(root)
    ws = Workspace.at(root)
    reg.set_alias(ws, "champion", versions[0])
    images = [f.read_bytes() for f in sorted(root.glob("data/batches/*/**/*.png"))[:64]]
    db = root / ".ifd" / "monitoring" / "predictions.db"
    already = set(logged(db, 0, 0.0)) if db.is_file() else set()

    port, log = free_port(), root / ".ifd" / f"soak-serve-{int(time.time())}.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(root), "--port", str(port), "--poll", "1"],
                              env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    stop = threading.Event()
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"ifd serve did not come up: {log.read_text()[-2000:]}")
        rss: list[tuple[float, int]] = []
        threading.Thread(target=sample_rss, args=(server.pid, stop, rss), daemon=True).start()
        flipper, monitor = Flipper(ws, versions, args.flip_every, stop), Monitor(root, args.monitor_every, stop)
        flipper.start()
        monitor.start()
        answers: list[dict[str, Any]] = []
        errors: list[str] = []
        started = time.time()
        stop_at = time.monotonic() + args.duration

        async def run_clients() -> None:
            await asyncio.gather(*[client(f"http://127.0.0.1:{port}/v1/score", images, stop_at, answers, errors, s)
                                   for s in range(args.clients)])

        asyncio.run(run_clients())
        stop.set()
        flipper.join(timeout=30)
        monitor.join(timeout=300)
        rss_end = rss_kb(server.pid)
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)

    ok = [a for a in answers if a["status"] == 200]
    in_log = logged(db, len(ok) + len(already))
    missing = [a["request_id"] for a in ok if a["request_id"] not in in_log]
    wrong_version = [a["request_id"] for a in ok if a["request_id"] in in_log and in_log[a["request_id"]] != a["version"]]
    after_warmup = next((kb for t, kb in rss if t >= started + args.warmup), rss[0][1] if rss else rss_end)
    ratio = rss_end / after_warmup
    server_log = log.read_text(errors="replace")
    ms = np.array([a["ms"] for a in ok]) if ok else np.zeros(1)
    served_versions = sorted({a["version"] for a in ok})
    result = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(), "duration_s": args.duration,
        "warmup_s": args.warmup, "clients": args.clients, "flip_every_s": args.flip_every, "monitor_every_s": args.monitor_every,
        "requests": len(answers), "answered_200": len(ok), "req_per_s": round(len(answers) / args.duration, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "status_counts": {str(s): sum(a["status"] == s for a in answers) for s in sorted({a["status"] for a in answers})},
        "http_5xx": sum(a["status"] >= 500 for a in answers), "transport_errors": len(errors), "error_samples": errors[:3],
        "non_200_samples": [a.get("detail") for a in answers if a["status"] != 200][:3],
        "missing_from_log": len(missing), "logged_with_another_version": len(wrong_version),
        "flips": len(flipper.flips), "flip_errors": flipper.errors[:3], "versions_served": served_versions,
        "monitor_runs": len(monitor.runs), "monitor_errors": monitor.errors[:3], "monitor_seconds": [r["seconds"] for r in monitor.runs],
        "rss_after_warmup_mb": round(after_warmup / 1024, 1), "rss_end_mb": round(rss_end / 1024, 1),
        "rss_max_mb": round(max([kb for _, kb in rss] + [rss_end]) / 1024, 1), "rss_ratio": round(ratio, 3),
        "server_tracebacks": server_log.count("Traceback"),
    }
    checks = {
        "zero 5xx": result["http_5xx"] == 0, "zero transport errors": not errors,
        "every answered request in the prediction log": not missing and not wrong_version,
        "RSS end / after warm-up <= 1.1": ratio <= 1.1, "no traceback in the server log": result["server_tracebacks"] == 0,
        "both versions served": len(served_versions) >= 2, "monitor ran without error": bool(monitor.runs) and not monitor.errors,
    }
    result["checks"] = checks
    result["passed"] = all(checks.values())
    write(Path(args.out), result, sys.argv[1:])
    print(json.dumps(result, indent=1))
    return 0 if result["passed"] else 1


def write(out: Path, r: dict[str, Any], argv: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(r, indent=1) + "\n")
    lines = [
        "# Soak test of the scoring API", "",
        f"`{' '.join(['.venv/bin/python benchmarks/soak.py', *argv])}`", "",
        f"{r['date']}, {r['cpus']} CPUs, server and clients on the same machine, loopback. {r['clients']} clients, each posting one PNG "
        f"at a time (from 64 test images) for {r['duration_s']:g} s; `champion` flipped every {r['flip_every_s']:g} s "
        f"({r['flips']} flips, versions served: {', '.join(r['versions_served'])}); the monitor every {r['monitor_every_s']:g} s "
        f"({r['monitor_runs']} runs).", "",
        "| measure | value |", "|---|---|",
        f"| requests (200) | {r['requests']} ({r['answered_200']}) |", f"| requests/s | {r['req_per_s']} |",
        f"| latency p50 / p99 | {r['p50_ms']} / {r['p99_ms']} ms |", f"| status counts | {r['status_counts']} |",
        f"| 5xx / transport errors | {r['http_5xx']} / {r['transport_errors']} |",
        f"| answered but not in the prediction log | {r['missing_from_log']} (with another version: {r['logged_with_another_version']}) |",
        f"| RSS after warm-up ({r['warmup_s']:g} s) / end / max | {r['rss_after_warmup_mb']} / {r['rss_end_mb']} / {r['rss_max_mb']} MB |",
        f"| RSS ratio end / after warm-up | {r['rss_ratio']} |", f"| tracebacks in the server log | {r['server_tracebacks']} |", "",
        "| check | result |", "|---|---|", *[f"| {k} | {'pass' if v else 'FAIL'} |" for k, v in r["checks"].items()], "",
        f"**{'PASSED' if r['passed'] else 'FAILED'}**", "",
    ]
    out.write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
