"""Property-based fuzzing of /v1/score uploads (hypothesis) through the whole ASGI app (body limit, upload
parsing, header checks, decoding, scoring by a real champion): every input either scores or gets a named
error, a 4xx with a non-empty `detail`; never a 500, never a traceback.

Inputs: real images in every accepted format and several refused ones, in odd modes and sizes (1 px to
past the pixel limit), then truncated, bit-flipped, spliced or padded; random bytes; hand-built multipart
bodies with odd names, missing filenames, wrong or missing boundaries and no closing boundary, streamed
in random chunk sizes with no Content-Length; JSON of any shape, base64 and data: URLs of all the above.
/v1/feedback gets JSON of any shape too. Deterministic by default (CI); `IFD_FUZZ_EXAMPLES=2000 IFD_FUZZ_RANDOM=1` explores further.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from serving_helpers import champion_workspace

pytestmark = pytest.mark.slow  # one retrain (~15 s) and a few hundred requests

ALLOWED = {200, 400, 413, 415, 422}
MAX_IMAGES, MAX_IMAGE_BYTES, MAX_REQUEST_BYTES, MAX_PIXELS = 4, 48 * 1024, 160 * 1024, 96 * 96
FUZZ = settings(
    max_examples=int(os.environ.get("IFD_FUZZ_EXAMPLES", "120")),
    derandomize=os.environ.get("IFD_FUZZ_RANDOM") != "1",
    database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource

    ws = champion_workspace(tmp_path_factory, "fuzz")
    source = ModelSource(ws, poll_s=60.0)
    source.refresh(force=True)
    cfg = ServeConfig(max_images=MAX_IMAGES, max_image_bytes=MAX_IMAGE_BYTES, max_request_bytes=MAX_REQUEST_BYTES,
                      max_pixels=MAX_PIXELS, min_side=16, alias_poll_s=60.0, shadow=False)
    with TestClient(create_app(ws, cfg, source), raise_server_exceptions=False) as c:
        yield c
    source.close()


def check(response: Any, n_images: int | None = None) -> None:
    """The property: a score, or a 4xx that names the problem."""
    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code in ALLOWED, f"{response.status_code}: {response.text[:500]}"
    assert "Traceback" not in response.text
    body = response.json()
    if response.status_code == 200:
        if n_images is not None:
            assert len(body["results"]) == n_images
        assert all(0.0 <= r["p_fake"] <= 1.0 for r in body["results"])
    else:
        assert isinstance(body.get("detail"), str) and body["detail"].strip(), body


# ---- images and broken images -----------------------------------------------------------------

MODES = ("RGB", "L", "RGBA", "P", "1", "LA", "I;16", "I", "F", "CMYK", "YCbCr")
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF", "ICO", "PPM", "TGA")


@st.composite
def encoded_images(draw: st.DrawFn) -> bytes:
    from PIL import Image

    fmt = draw(st.sampled_from(FORMATS[:5] * 3 + FORMATS[5:]))  # mostly formats the API accepts
    mode = draw(st.sampled_from(MODES[:3] * 3 + MODES[3:]))
    w, h = (draw(st.integers(16, 96)) for _ in range(2)) if draw(st.booleans()) else (draw(st.integers(1, 160)) for _ in range(2))
    seed = draw(st.integers(0, 255))
    img = Image.new("RGB", (w, h), (seed, 255 - seed, (seed * 7) % 256)).convert(mode)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return bytes(draw(st.binary(min_size=1, max_size=64)))  # a mode the format cannot hold: random bytes
    return buf.getvalue()


@st.composite
def broken(draw: st.DrawFn, data: bytes) -> bytes:
    how = draw(st.sampled_from(("as is", "truncate", "flip", "insert", "pad", "splice")))
    if not data or how == "as is":
        return data
    at = draw(st.integers(0, max(0, len(data) - 1)))
    if how == "truncate":
        return data[:at]
    if how == "flip":
        ba = bytearray(data)
        for i in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            ba[i] ^= draw(st.integers(1, 255))
        return bytes(ba)
    if how == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=32)) + data[at:]
    if how == "pad":
        return data + b"\0" * draw(st.sampled_from((1, 1000, MAX_IMAGE_BYTES)))
    return data[:at] + draw(encoded_images())[at:]


blobs = st.one_of(encoded_images(), encoded_images(), encoded_images().flatmap(broken), st.binary(max_size=512))


# ---- multipart bodies ---------------------------------------------------------------------------

@st.composite
def multipart(draw: st.DrawFn) -> tuple[bytes, str, int | None]:
    boundary = draw(st.text(alphabet="abcdefXYZ0123456789-_'", min_size=1, max_size=40))
    parts: list[bytes] = []
    expected: int | None = 0
    for _ in range(draw(st.integers(0, MAX_IMAGES + 1))):
        name = draw(st.sampled_from(("files",) * 24 + ("file", "", "x\"y")))
        filename = draw(st.sampled_from(("a.png",) * 20 + (None, "", "../../etc/passwd", "ü.jpg")))
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        if draw(st.integers(0, 29)) == 0:
            disposition = draw(st.sampled_from(("", "form-data", "attachment; name=files", "form-data; name=")))
            expected = None  # the count of kept images is no longer known in advance
        headers = f"Content-Disposition: {disposition}\r\n" + draw(st.sampled_from(("", "Content-Type: image/png\r\n")))
        parts.append(f"--{boundary}\r\n{headers}\r\n".encode() + draw(blobs) + b"\r\n")
        if expected is not None:
            expected += name == "files" and filename is not None
    closing = f"--{boundary}--\r\n".encode()
    tail = draw(st.sampled_from((closing,) * 6 + (b"", f"--{boundary}".encode(), b"--other--\r\n")))
    header_boundary = draw(st.sampled_from((boundary,) * 6 + (boundary + "x", "")))
    content_type = f"multipart/form-data; boundary={header_boundary}" if header_boundary else "multipart/form-data"
    return b"".join(parts) + tail, content_type, expected


def chunks(body: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


@FUZZ
@given(part=multipart(), chunk=st.sampled_from((1, 7, 4096, 1 << 20)), streamed=st.booleans())
def test_fuzzed_multipart_uploads_score_or_get_a_named_4xx(client: Any, part: tuple[bytes, str, int | None], chunk: int, streamed: bool) -> None:
    body, content_type, expected = part
    content = chunks(body, chunk) if streamed else body  # a generator: chunked, no Content-Length
    r = client.post("/v1/score", content=content, headers={"content-type": content_type})
    check(r, expected if r.status_code == 200 else None)


@FUZZ
@given(images=st.lists(blobs, min_size=1, max_size=MAX_IMAGES + 1))
def test_fuzzed_images_as_files_score_or_get_a_named_4xx(client: Any, images: list[bytes]) -> None:
    files = [("files", (f"{i}.bin", b, "application/octet-stream")) for i, b in enumerate(images)]
    check(client.post("/v1/score", files=files), len(images))


# ---- JSON bodies ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def image_strings(draw: st.DrawFn) -> str:
    text = base64.b64encode(draw(blobs)).decode()
    how = draw(st.sampled_from(("plain", "data url", "no padding", "junk", "spaces")))
    if how == "data url":
        return "data:image/png;base64," + text
    if how == "no padding":
        return text.rstrip("=")
    if how == "junk":
        return text + draw(st.text(max_size=5))
    if how == "spaces":
        return " ".join(text[i:i + 8] for i in range(0, len(text), 8))
    return text


@st.composite
def json_bodies(draw: st.DrawFn) -> tuple[bytes, int | None]:
    kind = draw(st.sampled_from(("images", "images", "other", "raw", "deep")))
    if kind == "images":
        images = draw(st.lists(image_strings(), max_size=MAX_IMAGES + 1))
        return json.dumps({"images": images, **draw(st.dictionaries(st.text(max_size=5), json_values, max_size=2))}).encode(), len(images)
    if kind == "other":
        return json.dumps(draw(json_values)).encode(), None
    if kind == "deep":
        depth = draw(st.sampled_from((10, 1000, 50_000)))
        return b'{"images": ' + b"[" * depth + b"]" * depth + b"}", None
    return draw(st.binary(max_size=256)), None


@FUZZ
@given(body=json_bodies(), streamed=st.booleans())
def test_fuzzed_json_bodies_score_or_get_a_named_4xx(client: Any, body: tuple[bytes, int | None], streamed: bool) -> None:
    raw, expected = body
    r = client.post("/v1/score", content=chunks(raw, 97) if streamed else raw, headers={"content-type": "application/json"})
    check(r, expected)


@FUZZ
@given(content_type=st.one_of(st.sampled_from(("", "text/plain", "multipart/form-data", "application/json; charset=latin-1",
                                                "MULTIPART/FORM-DATA; boundary=x", "image/png")), st.text(max_size=30)),
       body=st.binary(max_size=300))
def test_any_content_type_with_any_body_gets_an_answer_not_a_crash(client: Any, content_type: str, body: bytes) -> None:
    headers = {"content-type": content_type} if content_type.isascii() and "\n" not in content_type and "\r" not in content_type else {}
    check(client.post("/v1/score", content=body, headers=headers))


def test_over_the_request_limit_in_any_shape_is_413(client: Any) -> None:
    big = b"A" * (MAX_REQUEST_BYTES + 1)
    for content in (big, chunks(big, 8192)):
        r = client.post("/v1/score", content=content, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "max_request_bytes" in r.json()["detail"]


@st.composite
def feedback_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        fields = {"request_id": st.one_of(st.text(max_size=40), json_values), "item": st.one_of(st.integers(), json_values),
                  "label": st.one_of(st.sampled_from(("real", "fake", "maybe")), json_values)}
        body = {k: draw(v) for k, v in fields.items() if draw(st.integers(0, 5))}
        if draw(st.integers(0, 9)) == 0:
            return json.dumps(body).replace("0", "1e999", 1).encode()  # an infinite number somewhere
        return json.dumps(body).encode()
    return draw(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))


@FUZZ
@given(body=feedback_bodies())
def test_fuzzed_feedback_gets_recorded_or_a_named_4xx(client: Any, body: bytes) -> None:
    r = client.post("/v1/feedback", content=body, headers={"content-type": "application/json"})
    event(f"status {r.status_code}")
    assert r.status_code in {200, 400, 404, 413, 422}, f"{r.status_code}: {r.text[:300]}"
    detail = r.json().get("detail") if r.status_code != 200 else "recorded"
    assert isinstance(detail, str) and detail.strip(), r.text
