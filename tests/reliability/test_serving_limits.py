"""Bounded input against a real `ifd serve` (uvicorn) process: a 300 MB upload sent chunked (no
Content-Length) is refused with 413 long before the client has sent it, and the server's peak memory
does not grow by anything like its size; the same for JSON and for many small images; a declared
Content-Length over the limit is refused before any body byte; image dimensions come from the header
(a few-hundred-byte PNG that claims 8000x8000 is refused without being decoded); API keys guard /v1/*.

Issue 13's finding, reproduced: on the code before body_limit.py/uploads.py the 300 MB multipart was
read in full (spooled, then read into memory) before its 413, so `sent == total` and the server's
VmHWM grew by ~300 MB; both assertions below fail there.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import champion_workspace, free_port, png_bytes, proc_kb, serve, stop, wait_until_up

from ifd.workspace import Workspace

MB = 1024 * 1024
TOTAL = 300 * MB
MAX_REQUEST = 8 * MB
MAX_IMAGE = 2 * MB
KEY = "test-key-7f3a9c"
pytestmark = pytest.mark.slow  # one retrain and one server start (~30 s on 2 cores)


def hashed(key: str, ws_root: Path) -> str:
    """`ifd serve --hash-key` (run in a workspace: `ifd serve`'s fail-fast check wants one)."""
    out = subprocess.run([sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws_root), "--hash-key"],
                         input=key + "\n", capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def workspace_with_champion(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return champion_workspace(tmp_path_factory, "limits")


def running(ws: Workspace, name: str, *flags: str) -> Iterator[dict[str, Any]]:
    port, log = free_port(), ws.root / f"serve-{name}.log"
    proc = serve(ws, port, "--poll", "1", *flags, log=log)
    try:
        wait_until_up(port, proc, log=log)
        yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "log": log, "ws": ws}
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def default_server(workspace_with_champion: Workspace) -> Iterator[dict[str, Any]]:
    """`ifd serve` with nothing but its defaults (and flags that existed before issue 13)."""
    yield from running(workspace_with_champion, "default")


@pytest.fixture(scope="module")
def server(workspace_with_champion: Workspace) -> Iterator[dict[str, Any]]:
    """`ifd serve` with small limits and an API key file."""
    ws = workspace_with_champion
    keys = ws.root / "api-keys.txt"
    keys.write_text(f"# who may score\n{hashed(KEY, ws.root)} ci\n")
    for found in running(ws, "limited", "--api-keys", str(keys), "--max-request-bytes", str(MAX_REQUEST),
                         "--max-image-bytes", str(MAX_IMAGE)):
        yield {**found, "keys": keys}


class Counted:
    """A request body generator that counts what it has handed to the client."""

    def __init__(self, head: bytes, total: int, tail: bytes, fill: bytes = b"A") -> None:
        self.head, self.total, self.tail, self.fill = head, total, tail, fill
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = self.fill * (64 * 1024)
        yield self.head
        self.sent += len(self.head)
        while self.sent < self.total:
            yield chunk
            self.sent += len(chunk)
        yield self.tail
        self.sent += len(self.tail)


def post(server: dict[str, Any], body: Any, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{server['url']}/v1/score", content=body, timeout=120,
                      headers={"content-type": content_type, "authorization": f"Bearer {KEY}", **headers})


def multipart_head(name: str = "0.png") -> bytes:
    return (b"--bnd\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + name.encode()
            + b"\"\r\nContent-Type: image/png\r\n\r\n")


def assert_refused_early(server: dict[str, Any], r: httpx.Response, body: Counted, hwm_before: int, words: str) -> None:
    grown = proc_kb(server["proc"].pid, "VmHWM") - hwm_before
    assert r.status_code == 413, r.text
    assert body.sent < TOTAL / 4, f"the client sent {body.sent / MB:.0f} MB of {TOTAL / MB:.0f} MB before the 413"
    assert grown < 64 * 1024, f"the server's peak RSS grew by {grown / 1024:.0f} MB for a refused upload"
    assert words in r.json()["detail"]


def test_issue_13_a_300_mb_chunked_multipart_upload_is_refused_while_it_streams(default_server: dict[str, Any]) -> None:
    """The finding: default limits (10 MiB per image), one 300 MB part, no Content-Length."""
    hwm = proc_kb(default_server["proc"].pid, "VmHWM")
    body = Counted(multipart_head() + png_bytes(), TOTAL, b"\r\n--bnd--\r\n")  # a real PNG, then 300 MB more
    t0 = time.perf_counter()
    r = post(default_server, iter(body), "multipart/form-data; boundary=bnd")
    assert_refused_early(default_server, r, body, hwm, "image 0: more than 10485760 bytes")
    assert time.perf_counter() - t0 < 30


def test_a_300_mb_chunked_multipart_upload_is_refused_at_the_image_limit(server: dict[str, Any]) -> None:
    hwm = proc_kb(server["proc"].pid, "VmHWM")
    body = Counted(multipart_head() + png_bytes(), TOTAL, b"\r\n--bnd--\r\n")
    r = post(server, iter(body), "multipart/form-data; boundary=bnd")
    assert_refused_early(server, r, body, hwm, f"image 0: more than {MAX_IMAGE} bytes")


def test_a_300_mb_chunked_json_body_is_refused_at_the_request_limit(server: dict[str, Any]) -> None:
    hwm = proc_kb(server["proc"].pid, "VmHWM")
    body = Counted(b'{"images": ["', TOTAL, b'"]}')
    r = post(server, iter(body), "application/json")
    assert_refused_early(server, r, body, hwm, f"larger than the limit of {MAX_REQUEST} bytes")


def test_many_small_images_are_refused_when_the_request_passes_its_limit(server: dict[str, Any]) -> None:
    hwm = proc_kb(server["proc"].pid, "VmHWM")
    part = multipart_head() + png_bytes() + b"\0" * (MB - 4096) + b"\r\n"  # each image valid and under 2 MB
    body = Counted(b"", TOTAL, b"--bnd--\r\n", fill=b"")

    def parts() -> Iterator[bytes]:
        while body.sent < TOTAL:
            yield part
            body.sent += len(part)
        yield body.tail

    r = post(server, parts(), "multipart/form-data; boundary=bnd")
    assert_refused_early(server, r, body, hwm, f"larger than the limit of {MAX_REQUEST} bytes")


def test_a_declared_content_length_over_the_limit_is_refused_before_the_body(server: dict[str, Any]) -> None:
    body = Counted(b'{"images": ["', TOTAL, b'"]}')
    r = post(server, iter(body), "application/json", **{"content-length": str(TOTAL + 16)})
    assert r.status_code == 413 and f"request body of {TOTAL + 16} bytes" in r.json()["detail"]
    assert body.sent < TOTAL / 4


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header (IHDR) that claims `width` x `height`, with one tiny IDAT: a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_image_dimensions_are_read_from_the_header_before_any_decode(server: dict[str, Any]) -> None:
    bomb = png_claiming(8000, 8000)  # 192 MB of pixels if decoded
    assert len(bomb) < 300
    hwm = proc_kb(server["proc"].pid, "VmHWM")
    files = [("files", ("0.png", png_bytes(), "image/png")), ("files", ("1.png", bomb, "image/png"))]
    r = httpx.post(f"{server['url']}/v1/score", files=files, headers={"x-api-key": KEY}, timeout=60)
    assert r.status_code == 422 and "image 1: 8000x8000 pixels is more than the limit" in r.json()["detail"]
    b64 = httpx.post(f"{server['url']}/v1/score", headers={"x-api-key": KEY}, timeout=60,
                     json={"images": [base64.b64encode(bomb).decode()]})
    assert b64.status_code == 422 and "image 0: 8000x8000" in b64.json()["detail"]
    assert proc_kb(server["proc"].pid, "VmHWM") - hwm < 32 * 1024


def test_after_every_refusal_the_server_still_scores(server: dict[str, Any]) -> None:
    r = httpx.post(f"{server['url']}/v1/score", files=[("files", ("a.png", png_bytes(seed=3), "image/png"))],
                   headers={"x-api-key": KEY}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "1" and len(r.json()["results"]) == 1
    counted = {line.split("}")[0] + "}": float(line.rsplit(" ", 1)[1])
               for line in httpx.get(f"{server['url']}/metrics", timeout=30).text.splitlines() if line.startswith("ifd_requests_total{")}
    assert counted['ifd_requests_total{status="413"}'] >= 4  # refused in the endpoint or by BodyLimit, all counted
    assert counted['ifd_requests_total{status="422"}'] >= 2 and counted['ifd_requests_total{status="200"}'] >= 1


def test_api_keys_guard_score_and_feedback_but_not_health_and_metrics(server: dict[str, Any]) -> None:
    url, files = server["url"], [("files", ("a.png", png_bytes(), "image/png"))]
    missing = httpx.post(f"{url}/v1/score", files=files, timeout=60)
    assert missing.status_code == 401 and "API key is required" in missing.json()["detail"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert 'ifd_requests_total{status="401"}' in httpx.get(f"{url}/metrics", timeout=30).text
    wrong = httpx.post(f"{url}/v1/score", files=files, headers={"authorization": "Bearer not-the-key"}, timeout=60)
    assert wrong.status_code == 403 and "not accepted" in wrong.json()["detail"]
    assert httpx.post(f"{url}/v1/feedback", json={"request_id": "x", "item": 0, "label": "fake"}, timeout=30).status_code == 401
    fb = httpx.post(f"{url}/v1/feedback", json={"request_id": "x", "item": 0, "label": "fake"}, headers={"x-api-key": KEY}, timeout=30)
    assert fb.status_code == 404  # past the key check: no such request id
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
    assert httpx.get(f"{url}/metrics", timeout=30).status_code == 200


def test_keys_rotate_without_a_restart_and_a_broken_key_file_fails_closed(server: dict[str, Any]) -> None:
    url, keys = server["url"], Path(server["keys"])
    files = [("files", ("a.png", png_bytes(), "image/png"))]
    original = keys.read_text()
    try:
        keys.write_text(original + hashed("second-key", server["ws"].root) + " rotated-in\n")
        assert httpx.post(f"{url}/v1/score", files=files, headers={"x-api-key": "second-key"}, timeout=60).status_code == 200
        keys.write_text("sha256:not-hex\n")
        broken = httpx.post(f"{url}/v1/score", files=files, headers={"x-api-key": KEY}, timeout=60)
        assert broken.status_code == 503 and "line 1" in broken.json()["detail"]
    finally:
        keys.write_text(original)
    assert httpx.post(f"{url}/v1/score", files=files, headers={"x-api-key": KEY}, timeout=60).status_code == 200
    assert httpx.post(f"{url}/v1/score", files=files, headers={"x-api-key": "second-key"}, timeout=60).status_code == 403


def test_a_bad_key_file_stops_ifd_serve_before_the_port_opens(server: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "keys"
    bad.write_text("not a hash\n")
    ws_root = server["ws"].root
    out = subprocess.run([sys.executable, "-m", "ifd.cli", "serve", "--workspace", str(ws_root), "--port", str(free_port()),
                          "--api-keys", str(bad)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and f"{bad} line 1: expected 'sha256:" in out.stderr
    assert json.dumps(out.stderr).count("Traceback") == 0
