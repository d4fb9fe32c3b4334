"""Read the images of a `/v1/score` request as the body streams in, every limit enforced on the way.

Multipart is parsed here with python-multipart's streaming parser instead of Starlette's `request.form()`,
which has no size limit on file parts (it spools them to disk, and reading them back puts all of it in
memory). Each `files` part is kept in memory only up to `max_image_bytes`: one byte more and the request
is answered 413 naming the image, without reading the rest of the body. The part count is checked when a
part starts (413 at `max_images` + 1) and every finished image's header (format, width x height) is
checked before the next part is read (415 / 422), so no image is decoded here and a refused upload costs
at most one image's bytes. The whole body is also bounded by `BodyLimit` (`max_request_bytes`).

JSON `{"images": ["<base64 or data: URL>", ...]}` is bounded by `BodyLimit`; each string's decoded size is
known from its length before it is decoded. Every refusal is an HTTPException with a detail that names
the problem and, where there is one, the image.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from ifd.inference.decode import BadImage, DecodeLimits, UnsupportedImage, read_header
from ifd.serving.body_limit import RequestTooLarge
from ifd.serving.config import ServeConfig


def limits_of(cfg: ServeConfig) -> DecodeLimits:
    return DecodeLimits(max_pixels=cfg.max_pixels, min_side=cfg.min_side, formats=cfg.formats)


def check_image(blob: bytes, i: int, cfg: ServeConfig) -> None:
    """413 for an image over `max_image_bytes`, 415 / 422 for a header that fails the decode limits."""
    if len(blob) > cfg.max_image_bytes:
        raise HTTPException(413, f"image {i}: {len(blob)} bytes is larger than the limit of {cfg.max_image_bytes}")
    try:
        read_header(blob, f"image {i}", limits_of(cfg))
    except UnsupportedImage as exc:
        raise HTTPException(415, str(exc)) from exc
    except BadImage as exc:
        raise HTTPException(422, str(exc)) from exc


async def read_images(request: Request, cfg: ServeConfig) -> list[bytes]:
    """The encoded images of a request, in order, each within the limits; 4xx for a request that cannot be scored."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        blobs = await _multipart(request, cfg)
    elif kind == "application/json":
        blobs = await _json_images(request, cfg)
    else:
        raise HTTPException(415, f"send multipart/form-data with parts named 'files' or JSON {{\"images\": [...]}}, not {kind or 'no content type'}")
    if not blobs:
        raise HTTPException(400, "no images in the request")
    return blobs


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    keep: bool = False
    data: bytearray = field(default_factory=bytearray)


class _Form:
    """python-multipart callbacks that keep the `files` parts, each bounded, and refuse early."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.images: list[bytes] = []
        self.checked = 0
        self.other_names: set[str] = set()
        self.ended = False
        self._part = _Part()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data, "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished, "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._part, self._disposition = _Part(), b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise HTTPException(400, "a multipart part has no Content-Disposition name; name each image part 'files'")
        part = self._part
        part.name = options[b"name"].decode("utf-8", "replace")
        part.is_file = b"filename" in options
        part.keep = part.name == "files"
        if not part.keep:
            self.other_names.add(part.name)
        elif not part.is_file:
            raise HTTPException(400, "a 'files' part must be a file upload, not a text field")
        elif len(self.images) >= self.cfg.max_images:
            raise HTTPException(413, f"more than {self.cfg.max_images} images in one request; the limit is {self.cfg.max_images}")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if not part.keep:
            return  # other fields are not kept (their names are reported if no 'files' part comes)
        if len(part.data) + (end - start) > self.cfg.max_image_bytes:
            raise HTTPException(413, f"image {len(self.images)}: more than {self.cfg.max_image_bytes} bytes; the limit is {self.cfg.max_image_bytes}")
        part.data += data[start:end]

    def on_part_end(self) -> None:
        if self._part.keep:
            self.images.append(bytes(self._part.data))
        self._part = _Part()

    def on_end(self) -> None:
        self.ended = True

    def check_new_images(self) -> None:
        """The header of every image finished since the last call (done between chunks, never in a callback)."""
        while self.checked < len(self.images):
            check_image(self.images[self.checked], self.checked, self.cfg)
            self.checked += 1


async def _multipart(request: Request, cfg: ServeConfig) -> list[bytes]:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "not a readable multipart form: the content type has no boundary")
    form = _Form(cfg)
    try:
        parser = MultipartParser(boundary, form.callbacks())
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
            form.check_new_images()
        parser.finalize()
    except FormParserError as exc:
        raise HTTPException(400, f"not a readable multipart form: {exc}") from exc
    except RequestTooLarge as exc:  # BodyLimit answers (the same 413); this makes the endpoint count it as one
        raise HTTPException(413, str(exc)) from exc
    if not form.ended:
        raise HTTPException(400, "not a readable multipart form: the body ended before the closing boundary")
    if not form.images and form.other_names:
        raise HTTPException(400, f"multipart parts must be named 'files'; got {', '.join(sorted(form.other_names))}")
    return form.images


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's RequestValidationError (e.g. /v1/feedback) as one line naming each bad field. FastAPI's own
    answer echoes the input back, and an input it cannot serialise (`1e999` is inf) made that answer a 500."""
    errors = getattr(exc, "errors", list)()
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    return JSONResponse({"detail": "; ".join(parts) or "the request body is not valid"}, status_code=422)


def _decoded_size(text: str) -> int:
    return (len(text) * 3) // 4


async def _json_images(request: Request, cfg: ServeConfig) -> list[bytes]:
    try:
        body = await request.body()
    except RequestTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise HTTPException(400, "not valid JSON: nested too deeply") from exc
    images = payload.get("images") if isinstance(payload, dict) else None
    if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
        raise HTTPException(422, 'JSON body must be {"images": ["<base64>", ...]}')
    if len(images) > cfg.max_images:
        raise HTTPException(413, f"{len(images)} images in one request; the limit is {cfg.max_images}")
    out = []
    for i, text in enumerate(images):
        text = text.split(",", 1)[-1] if text.startswith("data:") else text
        if _decoded_size(text) > cfg.max_image_bytes + 2:
            raise HTTPException(413, f"image {i}: about {_decoded_size(text)} bytes is larger than the limit of {cfg.max_image_bytes}")
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(422, f"image {i}: not valid base64 ({exc})") from exc
        check_image(blob, i, cfg)
        out.append(blob)
    return out
