"""The quick loop's share of bounded input (no champion, no server process; the real-server tests are in
test_serving_limits.py): BodyLimit on the real app, chunked and declared, and image headers judged
before any decode."""

from __future__ import annotations

import io
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ifd.inference.decode import BadImage, DecodeLimits, UnsupportedImage, read_header, sniff_format
from ifd.workspace import Workspace

LIMIT = 64 * 1024


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource

    ws = Workspace.at(tmp_path / "ws")
    cfg = ServeConfig(alias_poll_s=3600.0, max_request_bytes=LIMIT, max_image_bytes=16 * 1024)
    return TestClient(create_app(ws, cfg, ModelSource(ws, poll_s=3600.0)))


def counted(total: int, pulled: list[int]) -> Iterator[bytes]:
    yield b'{"images": ["'
    while pulled[0] < total:
        pulled[0] += 4096
        yield b"A" * 4096
    yield b'"]}'


def test_a_chunked_body_stops_being_read_at_the_limit(client: TestClient) -> None:
    pulled = [0]
    r = client.post("/v1/score", content=counted(100 * LIMIT, pulled), headers={"content-type": "application/json"})
    assert r.status_code == 413 and f"limit of {LIMIT} bytes" in r.json()["detail"]
    assert r.headers["connection"] == "close"  # the server closes instead of draining the rest
    # (TestClient reads the whole generator first; that the rest is never sent is test_serving_limits.py's job)


def test_a_declared_length_over_the_limit_is_refused_before_the_app(client: TestClient) -> None:
    r = client.post("/v1/score", content=b"x" * (LIMIT + 1), headers={"content-type": "application/json"})
    assert r.status_code == 413 and f"request body of {LIMIT + 1} bytes" in r.json()["detail"]


def test_an_image_part_over_its_limit_is_refused_while_it_streams(client: TestClient) -> None:
    r = client.post("/v1/score", files=[("files", ("a.png", b"\x89PNG" + b"\0" * 20_000, "image/png"))])
    assert r.status_code == 413 and r.json()["detail"].startswith("image 0: more than 16384 bytes")


def test_bodies_under_the_limit_reach_the_app(client: TestClient) -> None:
    r = client.post("/v1/score", json={"images": []})
    assert r.status_code == 400 and r.json()["detail"] == "no images in the request"
    assert "connection" not in r.headers or r.headers["connection"] != "close"


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_dimensions_come_from_the_header_without_decoding() -> None:
    limits = DecodeLimits(max_pixels=4096 * 4096, formats=("PNG", "JPEG"))
    t0 = time.perf_counter()
    with pytest.raises(BadImage, match="image 0: 8000x8000 pixels is more than the limit of 16777216"):
        read_header(png_claiming(8000, 8000), "image 0", limits)
    assert time.perf_counter() - t0 < 0.5  # decoding 192 MB of pixels would take far longer
    img = read_header(png_claiming(64, 48), "image 0", limits)
    assert img.size == (64, 48) and img.format == "PNG"


def test_formats_are_told_by_magic_bytes_and_refused_unparsed() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="GIF")
    assert sniff_format(buf.getvalue()[:16]) == "GIF" and sniff_format(b"hello, world....") is None
    with pytest.raises(UnsupportedImage, match="format GIF is not accepted"):
        read_header(buf.getvalue(), "image 0", DecodeLimits(formats=("PNG",)))
    with pytest.raises(BadImage, match="no known image format"):
        read_header(b"hello, not an image", "image 0", DecodeLimits(formats=("PNG",)))
