"""ServeConfig: limits and behaviour of the scoring API (defaults in code; `ifd serve` flags override)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_images: int = Field(64, ge=1)
    """Most images in one request."""
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """Largest encoded image (bytes) accepted."""
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Largest request body (bytes), counted as it arrives (chunked too): 413 the moment it is passed."""
    max_pixels: int = Field(4096 * 4096, ge=256)
    min_side: int = Field(16, ge=1)
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
    """Image formats (as PIL names them) the API decodes; anything else is refused with 415."""
    alias_poll_s: float = Field(5.0, ge=0.0)
    """How often the API asks the registry where `champion` and `challenger` point, in a background thread
    (0: on every request, on the request path; for tests)."""
    stale_after_s: float | None = Field(None, gt=0)
    """Seconds without an answer from the registry after which /healthz calls the served model stale
    (None: 3 x alias_poll_s, at least 15 s)."""
    api_keys_file: str | None = None
    """File of API key hashes (`sha256:<hex> [name]` per line); with it or api_key_hashes, /v1/* needs a key."""
    api_key_hashes: tuple[str, ...] = ()
    """API key hashes given directly (IFD_API_KEY_HASHES)."""
    shadow: bool = True
    batching: bool = True
    """Score concurrent requests together in one scoring thread (ifd/serving/batcher.py); False: each
    request is its own batch, scored in the request's worker thread (the path before batching)."""
    max_batch_images: int = Field(32, ge=1)
    """Most images in one scored batch (a request with more is scored alone)."""
    max_wait_ms: float = Field(5.0, ge=0.0)
    """Longest a queued request waits for others to join its batch (only while others are on their way)."""
    decode_workers: int = Field(2, ge=1)
    """Threads that decode uploaded images for the batcher."""
    shadow_queue: int = Field(64, ge=0)
    """Requests waiting for the challenger in shadow; beyond it shadow work is dropped and counted."""
    runtime: Literal["auto", "onnx", "eager"] = "auto"
    """auto: a version's ONNX graph (ONNX Runtime) when it passes the parity check, else eager PyTorch with a
    log line and `ifd_runtime_fallbacks`; onnx: a version without a passing graph is not served; eager: PyTorch."""
