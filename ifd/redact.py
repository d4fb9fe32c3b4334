"""Secrets out of what ifd prints, logs, reports and returns as JSON.

- A URL keeps its scheme, host, port and path; a password in it becomes `***` (the user name stays,
  so a reader still sees who), and so does every query value (`?token=***`).
- A webhook URL is a secret as a whole (Slack, Teams and most others put the key in the path): only
  its scheme and host are kept, `https://hooks.example.com/***`.
- `redact_text` applies both to free text (error messages, report lines): every URL in it, plus the
  exact secrets it is given.
- `install_log_redaction()` adds a logging filter doing the same to the records (and their tracebacks)
  that reach the handlers of the root, MLflow's, Prefect's and ifd's loggers (MLflow prints run URLs,
  Prefect logs a failed task's traceback).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{},]+")


def redact_url(url: str, keep_path: bool = True) -> str:
    """`url` without its password and query values (and without its path unless `keep_path`)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or (not parts.netloc and keep_path):
        return url
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None:
        user = parts.username if parts.password is None else f"{parts.username}:{MASK}"
        netloc = f"{user}@{netloc}"
    if not keep_path:
        path = "/" + MASK if parts.path not in ("", "/") or parts.query else parts.path
        return urlunsplit((parts.scheme, netloc, path, "", ""))
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_webhook(url: str | None) -> str | None:
    """A webhook URL as `scheme://host/***`."""
    return None if url is None else redact_url(url, keep_path=False)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with each of `secrets` masked (as a webhook) and every URL in it redacted."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, redact_url(secret, keep_path=False))
        try:
            path = urlsplit(secret).path
        except ValueError:
            path = ""
        if len(path) > 1:  # error texts quote the path alone ("... with url: /services/T0/B0/XXXX")
            text = text.replace(path, "/" + MASK)
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message through `redact_text` (formatting its args first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:  # the formatter reuses exc_text: redact the traceback once
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Add the filter to the handlers of the root, `mlflow`, `prefect` and `ifd` loggers (once each)."""
    for name in (None, "mlflow", "prefect", "prefect.flow_runs", "prefect.task_runs", "ifd"):
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
