"""The scoring API under load, three serving paths side by side in one run -> benchmarks/load_test.{md,json}.

Modes (one `ifd serve` process each, all started on the same workspace at once, so that every row of a
scenario is measured back to back in the same machine state):
- `today`: each request is its own batch, eager PyTorch (`--no-batching --runtime eager`);
- `batching`: dynamic batching, eager PyTorch (`--runtime eager`);
- `batching+onnx`: dynamic batching, the version's ONNX graph in ONNX Runtime (`--runtime onnx`).
Scenarios: 1, 4 and 16 concurrent clients sending one image per request, and 4 clients sending eight;
each row runs `--duration` seconds after a short warm-up; the modes take turns within a scenario. Then the
in-process ceiling: images/s of the champion's scorer alone at batch 32 (eager and ONNX Runtime), so the
API's overhead is a ratio.

The clients are a minimal HTTP/1.1 keep-alive client on asyncio streams with pre-encoded multipart
bodies (decision: on 2 shared cores a heavier client, httpx, takes CPU the server needs and would be
what is measured). Every answer is checked: status 200 and as many results as images sent.

Workspace: `--workspace DIR` with an approved champion registered by this version of ifd (it carries its
ONNX graph); without it a workspace is built once in `.ifd/loadtest`: the demo's detector (ifd_cnn_small,
64 px), one synthetic family, one epoch (accuracy does not matter for speed), registered and approved.

    .venv/bin/python benchmarks/load_test.py [--workspace DIR] [--duration 10] [--clients 1,4,16] [--multi 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = {
    "today": ["--no-batching", "--runtime", "eager"],
    "batching": ["--runtime", "eager"],
    "batching+onnx": ["--runtime", "onnx"],
}
GOAL_RATIO, GOAL_P99_MS = 3.0, 100.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_workspace(root: Path) -> Path:
    """`.ifd/loadtest`: one synthetic family, ifd_cnn_small at 64 px, 1 epoch, registered and approved."""
    from ifd.config import load_config
    from ifd.data.ingest import ingest_batch
    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve
    from ifd.synth.config import SynthConfig
    from ifd.synth.stream import write_stream
    from ifd.tracking.model_registry import version_by_alias
    from ifd.workspace import Workspace
    from ifd.workspace_init import init_workspace

    if (root / ".ifd" / "mlflow.db").is_file() and version_by_alias(Workspace.at(root), "champion") is not None:
        return root
    print(f"[load] building a workspace with a champion in {root} (about a minute)", file=sys.stderr)
    cfg = load_config(ROOT / "params.yaml")
    ws = init_workspace(Workspace.at(root))
    (ws.root / "registry").mkdir(exist_ok=True)  # a one-epoch detector for speed, not accuracy: no gate
    (ws.root / "registry" / "gate.yaml").write_text("max_old_task_auc_drop: 1.0\nmin_new_task_auc: 0.0\nmax_aa_drop: 1.0\n")
    batch = write_stream(root.parent / "loadtest-stream", SynthConfig(tasks=1, per_class=96, size=64, seed=0), overwrite=True)[0]
    ingest_batch(batch, batch.name, ws, cfg.ingest)
    lid = cfg.lid().model_dump(mode="json") | {"epochs": 1}
    result = rt.run_retrain(ws, batch.name, lid, progress=lambda line: print(line, file=sys.stderr))
    approve(ws, result["version"], "load-test", "benchmark workspace: approved automatically, not reviewed")
    return root


def multipart(images: list[bytes], port: int) -> bytes:
    """One complete HTTP request (head + multipart body) posting `images` as parts named `files`."""
    boundary = b"ifd-load-test-boundary"
    parts = [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="%d.png"\r\n'
             b"Content-Type: image/png\r\n\r\n" % i + img + b"\r\n" for i, img in enumerate(images)]
    body = b"".join(parts) + b"--" + boundary + b"--\r\n"
    head = (f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes, bool]:
    writer.write(request)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, close = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "connection" and "close" in value.lower():
            close = True
    return status, await reader.readexactly(length), close


async def _client(port: int, requests: list[bytes], batch: int, stop: float, lat: list[float], errors: list[str], seed: int) -> int:
    rng = np.random.default_rng(seed)
    done, conn = 0, None
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        try:
            conn = conn or await asyncio.open_connection("127.0.0.1", port)
            status, body, close = await _exchange(*conn, requests[int(rng.integers(len(requests)))])
            if status != 200:
                errors.append(f"{status}: {body[:100]!r}")
            elif len(json.loads(body)["results"]) != batch:
                errors.append(f"200 with {len(json.loads(body)['results'])} results for {batch} images")
            if close:
                conn[1].close()
                conn = None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            errors.append(repr(exc)[:100])
            conn = None
        lat.append(time.perf_counter() - t0)
        done += 1
    if conn is not None:
        conn[1].close()
    return done


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_row(port: int, images: list[bytes], batch: int, clients: int, duration: float, pid: int | None = None) -> dict[str, Any]:
    requests = [multipart([images[(i * batch + j) % len(images)] for j in range(batch)], port) for i in range(32)]
    before = scrape(port)
    server_cpu, client_cpu = cpu_seconds(pid) if pid else 0.0, time.process_time()
    lat: list[float] = []
    errors: list[str] = []
    load = os.getloadavg()[0]

    async def go() -> list[int]:
        stop = time.perf_counter() + duration
        return list(await asyncio.gather(*[_client(port, requests, batch, stop, lat, errors, s) for s in range(clients)]))

    start = time.perf_counter()
    counts = asyncio.run(go())
    wall = time.perf_counter() - start
    server_cpu = (cpu_seconds(pid) - server_cpu) if pid else float("nan")
    client_cpu = time.process_time() - client_cpu
    after = scrape(port)
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    n_batches = after.get("ifd_batch_images_count", 0) - before.get("ifd_batch_images_count", 0)
    n_images = after.get("ifd_batch_images_sum", 0) - before.get("ifd_batch_images_sum", 0)
    return {"batch": batch, "clients": clients, "duration_s": round(wall, 2), "requests": int(sum(counts)),
            "req_per_s": sum(counts) / wall, "img_per_s": (sum(counts) - len(errors)) * batch / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": len(errors), "error_samples": errors[:3],
            "mean_batch": n_images / n_batches if n_batches else None, "load_at_start": round(load, 2),
            "server_cpu_ms_per_req": 1000 * server_cpu / max(sum(counts), 1), "server_cores": server_cpu / wall,
            "client_cpu_ms_per_req": 1000 * client_cpu / max(sum(counts), 1)}


def scrape(port: int) -> dict[str, float]:
    """The unlabelled series of /metrics as name -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {m.group(1): float(m.group(2)) for m in re.finditer(r"^([a-z_]+) ([0-9.e+-]+)$", text, re.M)}
    out.update({f"runtime:{m.group(1)}": 1.0 for m in re.finditer(r'^ifd_model_runtime\{runtime="(\w+)"', text, re.M)})
    return out


def start_server(ws: Path, mode: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws), "--port", str(port), *MODES[mode]]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE), port


def wait_ready(proc: subprocess.Popen, port: int, mode: str, image: bytes) -> str:
    """Wait for /healthz, score one image, and return the runtime the champion is served on."""
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"ifd serve ({mode}) exited: {proc.stderr.read().decode()[-1500:] if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except urllib.error.HTTPError as exc:  # 503: no champion; a skipped one says why (e.g. no ONNX graph)
            skipped = json.loads(exc.read() or b"{}").get("skipped_versions")
            if skipped:
                raise SystemExit(f"ifd serve ({mode}) did not load the champion: {skipped}") from None
        except OSError:
            pass
        time.sleep(0.5)
    else:
        raise SystemExit(f"ifd serve ({mode}) did not come up")
    row = run_row(port, [image], 1, 1, 0.5)
    if row["errors"]:
        raise SystemExit(f"ifd serve ({mode}) refused a plain image: {row['error_samples']}")
    runtimes = [k.split(":", 1)[1] for k in scrape(port) if k.startswith("runtime:")]
    return runtimes[0] if runtimes else "?"


def ceiling(ws: Path, duration: float) -> dict[str, float]:
    """Images/s of the champion's scorer alone at batch 32 (pixels already decoded), eager and ONNX Runtime."""
    import torch

    from ifd.inference.onnx_runtime import attach_runtime, parity_batch
    from ifd.inference.scorer import DetectorScorer
    from ifd.tracking import model_registry as reg
    from ifd.tracking.runtime_artifact import fetch_onnx
    from ifd.train.state import IncrementalState
    from ifd.workspace import Workspace

    w = Workspace.at(ws)
    version = reg.version_by_alias(w, "champion").version
    path = reg.download_state(w, version)
    out = {}
    for runtime in ("eager", "onnx"):
        scorer = DetectorScorer(IncrementalState.load(path), device="cpu")
        attach_runtime(scorer, fetch_onnx(w, version, path.parent), "auto" if runtime == "onnx" else runtime, version)
        if scorer.runtime != runtime:  # no usable graph: the onnx server will say so
            out[runtime] = float("nan")
            continue
        pixels = parity_batch(scorer.img_size, n=32, seed=1)
        scorer.score_pixels(pixels)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < duration:
            scorer.score_pixels(pixels)
            n += 32
        out[runtime] = n / (time.perf_counter() - start)
    out["threads"] = torch.get_num_threads()
    return out


def goal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goal at 16 one-image clients: >= 3x today's images/s, p99 <= 100 ms, zero errors."""
    at16 = {r["mode"]: r for r in rows if r["batch"] == 1 and r["clients"] == 16}
    if "today" not in at16 or "batching+onnx" not in at16:
        return {"measured": False}
    today, best = at16["today"], at16["batching+onnx"]
    ratio = best["img_per_s"] / today["img_per_s"] if today["img_per_s"] else float("inf")
    met = ratio >= GOAL_RATIO and best["p99_ms"] <= GOAL_P99_MS and best["errors"] == 0
    return {"measured": True, "met": met, "ratio": ratio, "p99_ms": best["p99_ms"], "errors": best["errors"],
            "today_img_per_s": today["img_per_s"], "img_per_s": best["img_per_s"]}


def report(args: argparse.Namespace, ws: Path, version: str, rows: list[dict[str, Any]], ceil: dict[str, float],
           runtimes: dict[str, str]) -> str:
    g = goal(rows)
    lines = [
        "# Load test of POST /v1/score: today's path, batching, batching + ONNX Runtime (loopback)",
        "",
        f"One `ifd serve` per mode on the same workspace (champion version {version}), all started at once; each",
        f"scenario's rows run back to back, {args.duration:g} s each after a warm-up. Clients post multipart 64 px PNGs",
        "over keep-alive connections; server and clients share the machine's cores. Batching: at most",
        f"{args.max_batch} images per batch, {args.max_wait_ms:g} ms wait. Served runtimes: "
        + ", ".join(f"{m} -> {r}" for m, r in runtimes.items()) + ".",
        "",
        "| images per request | clients | mode | requests | images/s | p50 ms | p90 ms | p99 ms | errors | mean batch | server CPU ms/req | server cores | load at start |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mean_batch = f"{r['mean_batch']:.1f}" if r["mean_batch"] else "-"
        lines.append(f"| {r['batch']} | {r['clients']} | {r['mode']} | {r['requests']} | {r['img_per_s']:.1f} | {r['p50_ms']:.0f} | "
                     f"{r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r['errors']} | {mean_batch} | {r['server_cpu_ms_per_req']:.2f} | "
                     f"{r['server_cores']:.2f} | {r['load_at_start']:.2f} |")
    lines += ["", f"In-process ceiling (the champion's scorer alone, batch 32, pixels decoded, {ceil['threads']} threads; mean of a "
              f"measurement before the servers start and one after they stop): eager {ceil['eager']:.0f} images/s "
              f"({ceil['before']['eager']:.0f} / {ceil['after']['eager']:.0f}), ONNX Runtime {ceil['onnx']:.0f} images/s "
              f"({ceil['before']['onnx']:.0f} / {ceil['after']['onnx']:.0f})."]
    best16 = [r for r in rows if r["batch"] == 1 and r["clients"] == 16]
    for r in best16:
        ref = ceil["onnx"] if r["mode"] == "batching+onnx" else ceil["eager"]
        lines.append(f"- {r['mode']} at 16 one-image clients: {r['img_per_s']:.0f} images/s = {r['img_per_s'] / ref:.0%} of its runtime's "
                     f"ceiling; the server spent {r['server_cpu_ms_per_req']:.2f} ms of CPU per request against {1000 / ref:.2f} ms per "
                     f"image in the model at batch 32; the load generator {r['client_cpu_ms_per_req']:.2f} ms per request.")
    if g["measured"]:
        verdict = "met" if g["met"] else "not met"
        lines += ["", f"**Goal ({GOAL_RATIO:g}x today's images/s at 16 one-image clients, p99 <= {GOAL_P99_MS:g} ms, no errors): {verdict}.** "
                  f"batching+onnx {g['img_per_s']:.0f} images/s against today's {g['today_img_per_s']:.0f} ({g['ratio']:.2f}x), "
                  f"p99 {g['p99_ms']:.0f} ms, {g['errors']} errors."]
        if not g["met"]:
            need = GOAL_RATIO * g["today_img_per_s"]
            lines.append(f"Short by {max(0.0, need - g['img_per_s']):.0f} images/s ({g['img_per_s'] / need:.0%} of {need:.0f}) "
                         f"and/or {max(0.0, g['p99_ms'] - GOAL_P99_MS):.0f} ms of p99.")
    lines += ["", f"- command: `.venv/bin/python benchmarks/load_test.py{' --workspace ' + args.workspace if args.workspace else ''} "
              f"--duration {args.duration:g} --clients {args.clients} --multi {args.multi}`",
              f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; {os.cpu_count()} CPUs; "
              f"load average at start {rows[0]['load_at_start'] if rows else '?'}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", help="a workspace with an approved champion (default: build .ifd/loadtest)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per row")
    p.add_argument("--clients", default="1,4,16", help="concurrent one-image clients per scenario")
    p.add_argument("--multi", type=int, default=8, help="images per request of the multi-image scenario (0: skip)")
    p.add_argument("--multi-clients", type=int, default=4)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--out", default=str(HERE / "load_test.md"))
    args = p.parse_args()

    ws = Path(args.workspace).resolve() if args.workspace else build_workspace(ROOT / ".ifd" / "loadtest")
    images = [f.read_bytes() for f in sorted(ws.glob("data/batches/*/*/*.png"))[:256]]
    if not images:
        raise SystemExit(f"{ws}: no batch images; ingest a batch and approve a version first")
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        MODES[m] = [*MODES[m], "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    scenarios = [(1, int(c), 1) for c in args.clients.split(",")]
    if args.multi:
        scenarios.append((args.multi, args.multi_clients, args.multi))
    ceil_before = ceiling(ws, max(1.0, args.duration / 2))
    servers = {m: start_server(ws, m) for m in modes}
    rows: list[dict[str, Any]] = []
    try:
        runtimes = {m: wait_ready(proc, port, m, images[0]) for m, (proc, port) in servers.items()}
        if "batching+onnx" in runtimes and runtimes["batching+onnx"] != "onnx":
            raise SystemExit("the champion has no ONNX graph that passes parity; register it with this version of ifd")
        version = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{next(iter(servers.values()))[1]}/healthz").read())["champion"]
        for batch, clients, _ in scenarios:
            for m in modes:
                run_row(servers[m][1], images, batch, clients, min(1.0, args.duration / 4))  # warm-up, not recorded
                rows.append({"mode": m, **run_row(servers[m][1], images, batch, clients, args.duration, servers[m][0].pid)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            proc.wait(timeout=60)
    ceil_after = ceiling(ws, max(1.0, args.duration / 2))
    ceil = {k: (ceil_before[k] + ceil_after[k]) / 2 for k in ("eager", "onnx")} | {
        "threads": ceil_after["threads"], "before": ceil_before, "after": ceil_after}
    Path(args.out).write_text(report(args, ws, version, rows, ceil, runtimes))
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"rows": rows, "ceiling": ceil, "goal": goal(rows), "runtimes": runtimes, "version": version,
         "duration_s": args.duration, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms}, indent=1) + "\n")
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
