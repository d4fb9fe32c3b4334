"""ServeConfig: limits and behaviour of the scoring API (defaults in code; `ifd serve` flags override)."""

from __future__ import annotations

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
    max_pixels: int = Field(4096 * 4096, ge=256)
    min_side: int = Field(16, ge=1)
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
    """Image formats (as PIL names them) the API decodes; anything else is refused with 415."""
    alias_poll_s: float = Field(5.0, ge=0.0)
    """How often the API asks the registry where `champion` and `challenger` point (0: every request)."""
    shadow: bool = True
