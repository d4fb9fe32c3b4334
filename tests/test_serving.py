"""The scoring API against a real registry: answers, batch order, limits with clear 4xx, a new champion
picked up without restart, the challenger in shadow, metrics; and one real HTTP server process."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from lifecycle_helpers import fresh_workspace, tiny_lid
from PIL import Image

from ifd.lifecycle import retrain as rt
from ifd.lifecycle.review import approve
from ifd.monitoring.run import prediction_log
from ifd.serving.app import create_app
from ifd.serving.config import ServeConfig
from ifd.serving.model_source import ModelSource
from ifd.workspace import Workspace

QUIET = lambda _: None  # noqa: E731


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace whose champion is v1 (task0), a client on the app, and the test images of task0."""
    ws = fresh_workspace(tmp_path_factory, "serving")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=QUIET)
    approve(ws, "1", "alice", "first")
    source = ModelSource(ws, poll_s=0.0)
    cfg = ServeConfig(max_images=8, max_pixels=512 * 512, alias_poll_s=0.0)
    client = TestClient(create_app(ws, cfg, source))
    batch = ws.batch_dir("task0")
    paths = sorted(batch.glob("img/*.png"))[:6]
    return {"ws": ws, "client": client, "source": source, "paths": paths}


def png(path: Path) -> bytes:
    return Path(path).read_bytes()


def files(*blobs: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"{i}.png", b, "image/png")) for i, b in enumerate(blobs)]


def test_multipart_and_base64_json_give_the_same_scores_in_request_order(served: dict[str, Any]) -> None:
    client, paths = served["client"], served["paths"]
    blobs = [png(p) for p in paths[:4]]
    a = client.post("/v1/score", files=files(*blobs))
    assert a.status_code == 200, a.text
    body = a.json()
    assert body["model_version"] == "1" and len(body["results"]) == 4
    for r in body["results"]:
        assert 0.0 <= r["p_fake"] <= 1.0 and r["label"] in ("real", "fake") and isinstance(r["unknown"], bool)
        assert (r["generator"] is None) == (r["label"] == "real")
    b = client.post("/v1/score", json={"images": [base64.b64encode(x).decode() for x in blobs[::-1]]})
    assert b.status_code == 200
    np.testing.assert_allclose([r["p_fake"] for r in b.json()["results"]][::-1], [r["p_fake"] for r in body["results"]], atol=1e-6)


def truncated_png(path: Path) -> bytes:
    data = png(path)
    return data[: len(data) // 2]


def huge_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024)).save(buf, format="PNG")
    return buf.getvalue()


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda p: files(truncated_png(p)), 422, "image 0: not a decodable image"),
        (lambda p: files(png(p), huge_png()), 422, "image 1: 1024x1024 pixels is more than"),
        (lambda p: files(gif()), 415, "format GIF is not accepted"),
        (lambda p: files(b"hello, not an image"), 422, "not a decodable image"),
        (lambda p: files(*[png(p)] * 9), 413, "limit is 8"),
    ],
)
def test_bad_uploads_get_a_clear_4xx_and_the_service_keeps_answering(served: dict[str, Any], make, status: int, words: str) -> None:
    client, paths = served["client"], served["paths"]
    bad = client.post("/v1/score", files=make(paths[0]))
    assert bad.status_code == status and words in bad.json()["detail"]
    assert client.post("/v1/score", files=files(png(paths[0]))).status_code == 200


def test_malformed_requests(served: dict[str, Any]) -> None:
    client = served["client"]
    assert client.post("/v1/score", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post("/v1/score", json={"images": ["%%%"]}).json()["detail"].startswith("image 0: not valid base64")
    assert client.post("/v1/score", json={"pictures": []}).status_code == 422
    assert client.post("/v1/score", json={"images": []}).status_code == 400


def test_feedback_metrics_and_health(served: dict[str, Any]) -> None:
    client, paths = served["client"], served["paths"]
    rid = client.post("/v1/score", files=files(png(paths[0]))).json()["request_id"]
    time.sleep(0.2)
    assert client.post("/v1/feedback", json={"request_id": rid, "item": 0, "label": "fake"}).status_code == 200
    assert client.post("/v1/feedback", json={"request_id": "nope", "item": 0, "label": "fake"}).status_code == 404
    metrics = client.get("/metrics").text
    assert 'ifd_requests_total{status="200"}' in metrics and "ifd_request_seconds_bucket" in metrics
    assert client.get("/healthz").json()["champion"] == "1"


def test_a_new_champion_is_picked_up_without_restart_and_the_challenger_scores_in_shadow(served: dict[str, Any]) -> None:
    ws, client, paths = served["ws"], served["client"], served["paths"]
    rt.run_retrain(ws, "task1", tiny_lid(), progress=QUIET)  # v2 becomes challenger
    log = prediction_log(ws)
    before = log.count("shadow")
    r = client.post("/v1/score", files=files(png(paths[0]), png(paths[1])))
    assert r.json()["model_version"] == "1"
    deadline = time.monotonic() + 30  # the batcher scores the shadow off the request path, after the answer
    while log.count("shadow") < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.count("shadow") == before + 2
    assert client.get("/healthz").json()["challenger"] == "2"
    approve(ws, "2", "bob", "second")
    r = client.post("/v1/score", files=files(png(paths[0])))
    assert r.json()["model_version"] == "2"
    assert client.get("/healthz").json()["challenger"] is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ifd_serve_answers_a_real_http_client(served: dict[str, Any]) -> None:
    import httpx

    ws: Workspace = served["ws"]
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws.root), "--port", str(port), "--poll", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("ifd serve did not come up: " + proc.stdout.read().decode() if proc.stdout else "")
        r = httpx.post(f"http://127.0.0.1:{port}/v1/score", files=files(png(served["paths"][0])), timeout=30)
        assert r.status_code == 200 and r.json()["model_version"] in ("1", "2")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
