"""The scoring API (FastAPI): POST /v1/score, POST /v1/feedback, GET /healthz, GET /metrics.

`/v1/score` takes a multipart form with one or more parts named `files`, or JSON `{"images": [base64, ...]}`,
and answers `{"model_version", "request_id", "results": [{p_fake, label, generator, unknown, ...}]}` in
request order, scored by the champion, together with concurrent requests (ifd/serving/batcher.py; or as
its own batch with `batching: false`). The challenger, when there is one, scores the same
pixels after the answer has gone (shadow: logged, never returned). Every scored image goes to the
prediction log the monitor reads. Bad input gets a 4xx with `{"detail": ...}` naming the problem.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ifd.inference.decode import BadImage, DecodeLimits, UnsupportedImage
from ifd.monitoring.run import gauges_path, prediction_log
from ifd.serving.auth import ApiKeyAuth, api_keys_from
from ifd.serving.batcher import Batcher
from ifd.serving.body_limit import BodyLimit
from ifd.serving.config import ServeConfig
from ifd.serving.log_writer import LogWriter
from ifd.serving.metrics import ApiMetrics
from ifd.serving.model_source import ModelSource, NoChampion
from ifd.serving.uploads import invalid_body, read_images
from ifd.workspace import Workspace


class Feedback(BaseModel):
    request_id: str
    item: int
    label: str


def create_app(ws: Workspace, cfg: ServeConfig, source: ModelSource) -> FastAPI:
    app = FastAPI(title="ifd scoring API", version="1")
    metrics = ApiMetrics()
    log = prediction_log(ws)
    batcher = writer = None  # cfg.batching: concurrent requests scored together by one thread (ifd/serving/batcher.py)
    if cfg.batching:
        writer = LogWriter(log.record_many)  # the requests of a batch share one log transaction
        batcher = Batcher(metrics, cfg.max_batch_images, cfg.max_wait_ms, cfg.decode_workers, cfg.shadow_queue,
                          challenger=source.challenger if cfg.shadow else None, record=writer.put)
        app.router.on_shutdown.append(batcher.close)  # queued requests are answered before the thread stops
        app.router.on_shutdown.append(writer.close)  # then everything answered is written
    app.state.batcher = batcher
    limits = DecodeLimits(max_pixels=cfg.max_pixels, min_side=cfg.min_side, formats=cfg.formats)

    def refused(path: str, status: int) -> None:  # answered by a middleware: counted like the endpoint's answers
        if path == "/v1/score":
            metrics.requests.labels(status=str(status)).inc()

    app.add_middleware(BodyLimit, max_bytes=cfg.max_request_bytes, on_refuse=refused)  # bodies counted as they arrive (413)
    keys = api_keys_from(cfg.api_keys_file, cfg.api_key_hashes)
    if keys is not None:
        app.add_middleware(ApiKeyAuth, keys=keys, on_refuse=refused)  # outermost: no key, no byte of the body is read

    app.add_exception_handler(RequestValidationError, invalid_body)  # one-line 422 naming the field, never a 500

    @app.exception_handler(NoChampion)
    async def _no_champion(request: Request, exc: NoChampion) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.post("/v1/score")
    async def score(request: Request, background: BackgroundTasks) -> dict[str, Any]:
        started = time.perf_counter()
        status = 200
        ticket = batcher.ticket() if batcher is not None else None  # on its way: a batch may wait for it
        try:
            blobs = await read_images(request, cfg)
            loaded = source.champion()
            metrics.observe_model(loaded.version, loaded.scorer)
            try:
                if batcher is None:
                    pixels = await run_in_threadpool(loaded.scorer.pixels, blobs, limits)
                else:
                    pixels = await batcher.decode(loaded.scorer, blobs, limits)
            except UnsupportedImage as exc:
                raise HTTPException(415, str(exc)) from exc
            except BadImage as exc:
                raise HTTPException(422, str(exc)) from exc
            if batcher is None:
                scores = await run_in_threadpool(loaded.scorer.score_pixels, pixels)
            else:
                scores = await batcher.score(loaded.scorer, pixels, ticket)
            request_id = uuid.uuid4().hex
            rows = scores.rows()
            if writer is None:
                background.add_task(log.record, request_id, "champion", loaded.version, rows, scores.embeddings)
            else:
                writer.put(request_id, "champion", loaded.version, rows, scores.embeddings)
            if cfg.shadow and batcher is None:
                background.add_task(_shadow, source, log, request_id, pixels, metrics)
            elif cfg.shadow:
                batcher.shadow(request_id, pixels)  # bounded queue, scored when the champion is idle
            metrics.observe_scores(loaded.version, scores.p_fake)
            return {"model_version": loaded.version, "request_id": request_id, "results": rows}
        except HTTPException as exc:
            status = exc.status_code
            raise
        except NoChampion:
            status = 503
            raise
        finally:
            if ticket is not None:
                ticket.close()
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
            source.champion()
        except NoChampion as exc:
            return JSONResponse({**source.health(), "status": "no champion", "detail": str(exc)}, status_code=503)
        return JSONResponse(source.health())  # 200 also when stale: the last good champion still answers

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render(gauges_path(ws))
        body += source.metrics_text()
        return Response(body, media_type=content_type)

    return app


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
