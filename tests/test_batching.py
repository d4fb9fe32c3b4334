"""Dynamic batching in the scoring API: concurrent requests are scored together and each gets its own
answers in its own order; oversized requests, bad requests and two model versions in one batch; the
challenger in shadow off the request path with a bounded queue (dropped work counted); the new flags
of a real `ifd serve` process."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.lifecycle import retrain as rt
from ifd.lifecycle.review import approve
from ifd.monitoring.run import prediction_log
from ifd.serving.app import create_app
from ifd.serving.batcher import Batcher
from ifd.serving.config import ServeConfig
from ifd.serving.metrics import ApiMetrics
from ifd.serving.model_source import ModelSource

QUIET = lambda _: None  # noqa: E731


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace whose champion is v1 (task0), and the task's images as PNG bytes."""
    ws = fresh_workspace(tmp_path_factory, "batching")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=QUIET)
    approve(ws, "1", "alice", "first")
    pngs = [p.read_bytes() for p in sorted(ws.batch_dir("task0").glob("img/*.png"))]
    return {"ws": ws, "pngs": pngs}


def files(blobs: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def post_concurrently(app: Any, bodies: list[list[bytes]]) -> list[httpx.Response]:
    """Every request at once against the ASGI app (one event loop, as uvicorn runs it)."""

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as client:
            return list(await asyncio.gather(*[client.post("/v1/score", files=files(b)) for b in bodies]))

    return asyncio.run(go())


def make_app(served: dict[str, Any], **cfg: Any) -> tuple[Any, ModelSource]:
    source = ModelSource(served["ws"], poll_s=0.0)
    return create_app(served["ws"], ServeConfig(alias_poll_s=0.0, **cfg), source), source


def alone(source: ModelSource, blobs: list[bytes]) -> np.ndarray:
    return source.champion().scorer.score(blobs).p_fake


def test_concurrent_requests_are_batched_and_each_gets_its_own_answers_in_order(served: dict[str, Any]) -> None:
    app, source = make_app(served, max_wait_ms=5000, max_batch_images=32)
    pngs = served["pngs"]
    bodies = [pngs[i : i + 1 + i % 3] for i in range(10)]  # 1 to 3 images each, overlapping, all different lists
    try:
        answers = post_concurrently(app, bodies)
        assert [r.status_code for r in answers] == [200] * 10
        for body, r in zip(bodies, answers, strict=True):
            got = [row["p_fake"] for row in r.json()["results"]]
            np.testing.assert_allclose(got, alone(source, body), atol=1e-5)
        metrics = post_metrics(app)
        batches = metric(metrics, "ifd_batch_images_count")
        assert metric(metrics, "ifd_batch_images_sum") == sum(len(b) for b in bodies)
        assert batches < 10  # some requests shared a batch
        assert app.state.batcher.coming == 0
    finally:
        app.state.batcher.close()


def post_metrics(app: Any) -> str:
    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return (await client.get("/metrics")).text

    return asyncio.run(go())


def test_requests_larger_than_the_batch_limit_and_bad_requests_among_good_ones(served: dict[str, Any]) -> None:
    app, source = make_app(served, max_wait_ms=5000, max_batch_images=4)
    pngs = served["pngs"]
    truncated = pngs[0][: len(pngs[0]) // 2]
    bodies = [pngs[:6], pngs[6:7], [pngs[7], truncated], pngs[8:10], [b"not an image"]]
    try:
        answers = post_concurrently(app, bodies)
        assert [r.status_code for r in answers] == [200, 200, 422, 200, 422]
        assert "image 1: not a decodable image" in answers[2].json()["detail"]
        for i in (0, 1, 3):
            np.testing.assert_allclose([row["p_fake"] for row in answers[i].json()["results"]], alone(source, bodies[i]), atol=1e-5)
        metrics = post_metrics(app)
        assert metric(metrics, "ifd_batch_images_sum") == 9
        assert app.state.batcher.coming == 0  # refused requests left nothing for a batch to wait for
        assert post_concurrently(app, [pngs[:1]])[0].status_code == 200
    finally:
        app.state.batcher.close()


def test_two_model_versions_in_one_batch_are_scored_apart(tmp_path: Path) -> None:
    from test_runtime_parity import scorer_of, write_state

    first = scorer_of(write_state(tmp_path / "a", "ifd_cnn_tiny", 16, seed=0))
    second = scorer_of(write_state(tmp_path / "b", "ifd_cnn_tiny", 16, seed=1))
    metrics = ApiMetrics()
    batcher = Batcher(metrics, max_batch_images=32, max_wait_ms=5000)
    rng = np.random.default_rng(0)
    pixels = [torch.from_numpy(rng.integers(0, 256, (n, 3, 16, 16), dtype=np.uint8)) for n in (2, 1, 3, 2)]
    scorers = [first, second, first, second]

    async def go() -> list[Any]:
        tickets = [batcher.ticket() for _ in pixels]  # all four on their way: one batch waits for them all
        return list(await asyncio.gather(*[batcher.score(s, p, t) for s, p, t in zip(scorers, pixels, tickets, strict=True)]))

    try:
        results = asyncio.run(go())
    finally:
        batcher.close()
    for s, p, r in zip(scorers, pixels, results, strict=True):
        np.testing.assert_allclose(r.p_fake, s.score_pixels(p).p_fake, atol=1e-6)
        assert len(r) == len(p)
    samples = {s.name: s.value for s in list(metrics.batch_images.collect())[0].samples}
    assert samples["ifd_batch_images_sum"] == 8
    assert samples["ifd_batch_images_count"] == 2  # one take, two groups (one per model)


def test_a_lone_request_does_not_wait_and_a_late_one_is_not_waited_for_past_max_wait(tmp_path: Path) -> None:
    from test_runtime_parity import scorer_of, write_state

    scorer = scorer_of(write_state(tmp_path, "ifd_cnn_tiny", 16))
    pixels = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    patient = Batcher(ApiMetrics(), max_wait_ms=600_000)  # would hang the test if it waited for nobody
    bounded = Batcher(ApiMetrics(), max_wait_ms=50)

    async def go() -> None:
        await asyncio.wait_for(patient.score(scorer, pixels, patient.ticket()), timeout=30)
        await asyncio.wait_for(patient.score(scorer, pixels), timeout=30)
        late = bounded.ticket()  # announced, never queued: the batch goes after max_wait anyway
        await asyncio.wait_for(bounded.score(scorer, pixels, bounded.ticket()), timeout=30)
        assert bounded.coming == 1
        late.close()
        late.close()  # closing twice counts once
        assert bounded.coming == 0

    try:
        asyncio.run(go())
    finally:
        patient.close()
        bounded.close()


def with_challenger(served: dict[str, Any]) -> None:
    """v2 (task1) as challenger, once per module."""
    ws = served["ws"]
    if served.get("challenger"):
        return
    rt.run_retrain(ws, "task1", tiny_lid(), progress=QUIET)
    served["challenger"] = "2"


def test_the_challenger_scores_in_shadow_off_the_request_path(served: dict[str, Any]) -> None:
    with_challenger(served)
    log = prediction_log(served["ws"])
    before = log.count("shadow")
    app, _ = make_app(served, shadow_queue=64)
    pngs = served["pngs"]
    try:
        answers = post_concurrently(app, [pngs[:2], pngs[2:3]])
        assert all(r.json()["model_version"] == "1" for r in answers)
        deadline = time.monotonic() + 30
        while log.count("shadow") < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.count("shadow") == before + 3
        assert metric(post_metrics(app), "ifd_shadow_images_total") == 3
    finally:
        app.state.batcher.close()


def test_shadow_work_beyond_the_queue_is_dropped_and_counted_never_blocking_answers(served: dict[str, Any]) -> None:
    with_challenger(served)
    log = prediction_log(served["ws"])
    app, _ = make_app(served, shadow_queue=0)
    pngs = served["pngs"]
    try:
        before = log.count("shadow")
        answers = post_concurrently(app, [pngs[:3], pngs[3:4], pngs[4:6]])
        assert [r.status_code for r in answers] == [200, 200, 200]
        metrics = post_metrics(app)
        assert metric(metrics, "ifd_shadow_dropped_total") == 6
        assert metric(metrics, "ifd_shadow_images_total") == 0
        assert log.count("shadow") == before
    finally:
        app.state.batcher.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ifd_serve_takes_the_batching_and_runtime_flags(served: dict[str, Any]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(served["ws"].root), "--port", str(port),
         "--poll", "5", "--max-batch", "8", "--max-wait-ms", "20", "--runtime", "onnx", "--decode-workers", "1",
         "--shadow-queue", "4"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            proc.terminate()
            pytest.fail("ifd serve did not come up: " + proc.communicate(timeout=30)[0].decode()[-2000:])

        async def go() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                return list(await asyncio.gather(*[client.post("/v1/score", files=files([p])) for p in served["pngs"][:6]]))

        assert [r.status_code for r in asyncio.run(go())] == [200] * 6
        text = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'ifd_model_runtime{runtime="onnx",version="1"} 1.0' in text
        assert metric(text, "ifd_batch_images_sum") == 6
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0].decode()
    assert "batches of up to 8 images, 20 ms wait; runtime onnx (champion 1 on onnx)" in out


@pytest.mark.parametrize(("flag", "value", "words"), [("--max-batch", "0", "below the minimum 1"),
                                                     ("--max-wait-ms", "-1", "below the minimum 0"),
                                                     ("--runtime", "tensorrt", "invalid choice")])
def test_bad_batching_flags_are_refused_with_one_line(flag: str, value: str, words: str) -> None:
    done = subprocess.run([sys.executable, "-m", "ifd.cli", "serve", flag, value], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
