"""A pure ASGI middleware that bounds the bytes of every request body, counted as they arrive.

Starlette reads a multipart form to its end (spooling file parts to disk, then `read()` puts them in
memory) and `Request.body()` reads any JSON body, so a Content-Length check alone lets a chunked upload
(`Transfer-Encoding: chunked`, no Content-Length) of any size through. This middleware wraps `receive`:

- a declared `Content-Length` above the limit is answered 413 before the app runs or a byte is read;
- otherwise every `http.request` message is counted, and the moment the total passes the limit the app's
  next `receive` raises `RequestTooLarge`; whatever the app does with that (its own 400, a traceback),
  its answer is dropped and a 413 JSON `{"detail": ...}` goes out instead, with `Connection: close` so
  the server stops reading the rest of the body instead of draining it;
- any answer the app sends before the body has ended (e.g. uploads.py's 413 for one image too large)
  gets `Connection: close` too, for the same reason.

The server never holds more than the limit plus one network chunk of a request body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestTooLarge(Exception):
    """Raised from `receive` once a request body has passed the byte limit."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _has_body(scope: Scope, declared: int | None) -> bool:
    """HTTP/1.1 framing: a body comes with a positive Content-Length or a Transfer-Encoding."""
    chunked = any(name.lower() == b"transfer-encoding" for name, _ in scope.get("headers", []))
    return chunked or bool(declared)


async def send_json(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer `{"detail": detail}` with `status` and close the connection after it."""
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ],
    })
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """At most `max_bytes` of body per HTTP request; 413 as soon as a request passes it."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_refuse: Callable[[str, int], None] | None = None) -> None:
        """`on_refuse(path, status)` is told of each request answered here without the app seeing it."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.app = app
        self.max_bytes = int(max_bytes)
        self.on_refuse = on_refuse

    def _detail(self, size: str) -> str:
        return f"request body of {size} bytes is larger than the limit of {self.max_bytes} bytes (max_request_bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            if self.on_refuse is not None:
                self.on_refuse(scope.get("path", ""), 413)
            await send_json(send, 413, self._detail(str(declared)))
            return

        received = 0
        exceeded = False
        started = False
        body_done = not _has_body(scope, declared)

        async def limited_receive() -> Message:
            nonlocal received, exceeded, body_done
            if exceeded:
                raise RequestTooLarge(self._detail(f"more than {self.max_bytes}"))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_bytes:
                    exceeded = True
                    raise RequestTooLarge(self._detail(f"more than {self.max_bytes}"))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's own answer to the cut-off body is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
                if not body_done:  # answered before the body ended (an early 4xx): close, do not drain the rest
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await send_json(send, 413, self._detail(f"more than {self.max_bytes}"))
