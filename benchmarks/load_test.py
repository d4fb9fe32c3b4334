"""A bounded load test of the scoring API on loopback -> benchmarks/load_test.md.

Starts `ifd serve` on a free local port against a workspace that has a champion (what `ifd demo` leaves),
then keeps `--clients` concurrent HTTP clients busy for `--duration` seconds per scenario, each request
carrying `--batch` PNG test images of the workspace's batches as a multipart upload. Reports requests/s,
images/s, latency percentiles (p50, p90, p99) and every non-200 answer (there should be none).

    .venv/bin/python benchmarks/load_test.py --workspace .ifd/demo [--duration 30] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(url: str, payloads: list[list[tuple]], stop: float, lat: list[float], errors: list[str], seed: int) -> int:
    import httpx

    rng = np.random.default_rng(seed)
    done = 0
    async with httpx.AsyncClient(timeout=60) as client:
        while time.perf_counter() < stop:
            files = payloads[int(rng.integers(len(payloads)))]
            t0 = time.perf_counter()
            try:
                r = await client.post(url, files=files)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:100]}")
            except httpx.HTTPError as exc:
                errors.append(repr(exc))
            lat.append(time.perf_counter() - t0)
            done += 1
    return done


async def scenario(url: str, images: list[bytes], batch: int, clients: int, duration: float) -> dict:
    payloads = [[("files", (f"{j}.png", images[(i + j) % len(images)], "image/png")) for j in range(batch)] for i in range(32)]
    lat: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    counts = await asyncio.gather(*[_client(url, payloads, start + duration, lat, errors, s) for s in range(clients)])
    wall = time.perf_counter() - start
    ms = np.array(lat) * 1000
    return {"batch": batch, "clients": clients, "duration_s": round(wall, 1), "requests": int(sum(counts)),
            "req_per_s": sum(counts) / wall, "img_per_s": sum(counts) * batch / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "errors": len(errors), "error_samples": errors[:3]}


def main() -> int:
    import httpx

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default=".ifd/demo")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--out", default=str(HERE / "load_test.md"))
    args = p.parse_args()

    ws = Path(args.workspace).resolve()
    images = [f.read_bytes() for f in sorted(ws.glob("data/batches/*/images/*.png"))[:256]]
    if not images:
        raise SystemExit(f"{ws}: no batch images; run `ifd demo` (or ingest batches and approve a version) first")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(180):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("ifd serve did not come up")
        version = health.json()["champion"]
        url = f"http://127.0.0.1:{port}/v1/score"
        rows = [asyncio.run(scenario(url, images, int(b), args.clients, args.duration)) for b in args.batches.split(",")]
    finally:
        server.terminate()
        server.wait(timeout=30)
    for r in rows:
        print(json.dumps(r))
    lines = [
        "# Load test of POST /v1/score (loopback)",
        "",
        f"`ifd serve` (champion version {version}, challenger shadow on when one exists) on 127.0.0.1; {args.clients} concurrent",
        f"clients, each sending multipart requests of `batch` 64 px PNG images back to back for {args.duration:g} s per row.",
        "Server and clients share the machine's 2 cores.",
        "",
        "| images per request | clients | requests | req/s | images/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['batch']} | {r['clients']} | {r['requests']} | {r['req_per_s']:.1f} | {r['img_per_s']:.1f} | {r['p50_ms']:.0f} | "
          f"{r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} |" for r in rows],
        "",
        f"- command: `.venv/bin/python benchmarks/load_test.py --workspace {args.workspace} --duration {args.duration:g} --clients {args.clients}`",
        f"- date: {dt.date.today().isoformat()}; load average at start: {os.getloadavg()[0]:.2f}",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
