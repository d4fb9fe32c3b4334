"""The scoring API (FastAPI): POST /v1/score, POST /v1/feedback, GET /healthz, GET /metrics.

`/v1/score` takes a multipart form with one or more parts named `files`, or JSON `{"images": [base64, ...]}`,
and answers `{"model_version", "request_id", "results": [{p_fake, label, generator, unknown, ...}]}` in
request order, scored as one batch by the champion. The challenger, when there is one, scores the same
pixels after the answer has gone (shadow: logged, never returned). Every scored image goes to the
prediction log the monitor reads. Bad input gets a 4xx with `{"detail": ...}` naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ifd.inference.decode import BadImage, DecodeLimits, UnsupportedImage
from ifd.monitoring.run import gauges_path, prediction_log
from ifd.serving.config import ServeConfig
from ifd.serving.metrics import ApiMetrics
from ifd.serving.model_source import ModelSource, NoChampion
from ifd.workspace import Workspace


class Feedback(BaseModel):
    request_id: str
    item: int
    label: str


def create_app(ws: Workspace, cfg: ServeConfig, source: ModelSource) -> FastAPI:
    app = FastAPI(title="ifd scoring API", version="1")
    metrics = ApiMetrics()
    log = prediction_log(ws)
    limits = DecodeLimits(max_pixels=cfg.max_pixels, min_side=cfg.min_side, formats=cfg.formats)

    @app.exception_handler(NoChampion)
    async def _no_champion(request: Request, exc: NoChampion) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.post("/v1/score")
    async def score(request: Request, background: BackgroundTasks) -> dict[str, Any]:
        started = time.perf_counter()
        status = 200
        try:
            blobs = await read_images(request, cfg)
            loaded = source.champion()
            try:
                pixels = await run_in_threadpool(loaded.scorer.pixels, blobs, limits)
            except UnsupportedImage as exc:
                raise HTTPException(415, str(exc)) from exc
            except BadImage as exc:
                raise HTTPException(422, str(exc)) from exc
            scores = await run_in_threadpool(loaded.scorer.score_pixels, pixels)
            request_id = uuid.uuid4().hex
            rows = scores.rows()
            background.add_task(log.record, request_id, "champion", loaded.version, rows, scores.embeddings)
            if cfg.shadow:
                background.add_task(_shadow, source, log, request_id, pixels, metrics)
            metrics.observe_scores(loaded.version, scores.p_fake)
            return {"model_version": loaded.version, "request_id": request_id, "results": rows}
        except HTTPException as exc:
            status = exc.status_code
            raise
        except NoChampion:
            status = 503
            raise
        finally:
            metrics.observe_request(status, time.perf_counter() - started)

    @app.post("/v1/feedback")
    async def feedback(body: Feedback) -> dict[str, str]:
        from ifd.errors import IfdError

        try:
            log.add_feedback(body.request_id, body.item, body.label)
        except IfdError as exc:
            raise HTTPException(404 if "no prediction" in str(exc) else 422, str(exc)) from exc
        return {"status": "recorded"}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            champ = source.champion()
        except NoChampion as exc:
            return JSONResponse({"status": "no champion", "detail": str(exc)}, status_code=503)
        shadow = source.challenger()
        return JSONResponse({"status": "ok", "champion": champ.version, "challenger": shadow.version if shadow else None})

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render(gauges_path(ws))
        return Response(body, media_type=content_type)

    return app


async def read_images(request: Request, cfg: ServeConfig) -> list[bytes]:
    """The encoded images of a request, in order; 4xx for a request that cannot be scored."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cfg.max_request_bytes:
        raise HTTPException(413, f"request of {length} bytes is larger than {cfg.max_request_bytes}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        blobs = await _multipart(request, cfg)
    elif kind == "application/json":
        blobs = await _json_images(request, cfg)
    else:
        raise HTTPException(415, f"send multipart/form-data with parts named 'files' or JSON {{\"images\": [...]}}, not {kind or 'no content type'}")
    if not blobs:
        raise HTTPException(400, "no images in the request")
    if len(blobs) > cfg.max_images:
        raise HTTPException(413, f"{len(blobs)} images in one request; the limit is {cfg.max_images}")
    for i, b in enumerate(blobs):
        if len(b) > cfg.max_image_bytes:
            raise HTTPException(413, f"image {i}: {len(b)} bytes is larger than {cfg.max_image_bytes}")
    return blobs


async def _multipart(request: Request, cfg: ServeConfig) -> list[bytes]:
    try:
        form = await request.form(max_files=cfg.max_images + 1, max_fields=cfg.max_images + 1, max_part_size=cfg.max_image_bytes)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001  (Starlette raises its own MultiPartException subclasses)
        raise HTTPException(400, f"not a readable multipart form: {exc}") from exc
    parts = form.getlist("files")
    if not parts and len(form):
        raise HTTPException(400, f"multipart parts must be named 'files'; got {', '.join(sorted(set(form.keys())))}")
    out = []
    for part in parts:
        if isinstance(part, str):
            raise HTTPException(400, "a 'files' part must be a file upload, not a text field")
        out.append(await part.read())
    return out


async def _json_images(request: Request, cfg: ServeConfig) -> list[bytes]:
    body = await request.body()
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"not valid JSON: {exc}") from exc
    images = payload.get("images") if isinstance(payload, dict) else None
    if not isinstance(images, list) or not all(isinstance(x, str) for x in images):
        raise HTTPException(422, 'JSON body must be {"images": ["<base64>", ...]}')
    if len(images) > cfg.max_images:
        raise HTTPException(413, f"{len(images)} images in one request; the limit is {cfg.max_images}")
    out = []
    for i, text in enumerate(images):
        try:
            out.append(base64.b64decode(text.split(",", 1)[-1] if text.startswith("data:") else text, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(422, f"image {i}: not valid base64 ({exc})") from exc
    return out


def _shadow(source: ModelSource, log: Any, request_id: str, pixels: Any, metrics: ApiMetrics) -> None:
    """Score the same pixels with the challenger and log them; never affects the answer."""
    try:
        shadow = source.challenger()
        if shadow is None:
            return
        scores = shadow.scorer.score_pixels(pixels)
        log.record(request_id, "shadow", shadow.version, scores.rows(), scores.embeddings)
        metrics.shadow_scored.inc(len(scores.p_fake))
    except Exception as exc:  # noqa: BLE001  (a shadow failure is logged and counted, never raised to the client)
        import logging

        logging.getLogger("ifd.serving").error("shadow scoring failed: %s", exc)
        metrics.shadow_errors.inc()
