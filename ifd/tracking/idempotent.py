"""Creates that are safe to repeat: a client token, looked up before anything is made.

A retried call whose answer was lost, or a retrain killed and run again, must not make a second run,
logged model or model version. Each retrain job holds one token (`<job>/client_token`, written before
the first create); the run, its logged model and the version carry it as the tag `ifd.client_token`,
set in the create call itself. Every create first searches for the token and reuses what it finds.
A run also records the logging steps it finished (`ifd.step.<name>` tags), so a resumed run does not
log its metrics or tables twice.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ifd.tracking.retry import with_retries

TOKEN_TAG = "ifd.client_token"
STEP_TAG = "ifd.step."
Log = Callable[[str], None]


def client_token(path: Path | None) -> str:
    """The token kept in `path` (made and written atomically on first use); a fresh one without a path."""
    if path is not None and Path(path).is_file():
        token = Path(path).read_text().strip()
        if token:
            return token
    token = secrets.token_hex(16)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(token + "\n")
        os.replace(tmp, path)
    return token


def _token_filter(token: str) -> str:
    return f"tags.`{TOKEN_TAG}` = '{token}'"


def find_or_create_run(c: Any, exp_id: str, token: str, tags: dict[str, str], run_name: str, log: Log | None) -> tuple[str, bool]:
    """(run id, created): the run with `token`, else a new one carrying it (and `tags`)."""

    def find_or_create() -> tuple[str, bool]:
        found = c.search_runs([exp_id], filter_string=_token_filter(token), max_results=5)
        if found:
            return str(sorted(found, key=lambda r: r.info.start_time)[0].info.run_id), False
        run = c.create_run(exp_id, tags={**tags, TOKEN_TAG: token}, run_name=run_name)
        return str(run.info.run_id), True

    run_id, created = with_retries(find_or_create, "create run", log=log)
    if not created:
        with_retries(lambda: c.update_run(run_id, status="RUNNING"), "reopen run", log=log)
    return run_id, created


def _is_ready(model: Any) -> bool:
    return str(getattr(model.status, "value", model.status)).upper().endswith("READY")


def find_logged_model(c: Any, exp_id: str, token: str, log: Log | None) -> Any | None:
    """The logged model with `token`: a READY one first, else an unfinished one (to upload into again)."""
    found = with_retries(lambda: list(c.search_logged_models([exp_id], filter_string=_token_filter(token))), "find the logged model", log=log)
    found.sort(key=lambda m: (not _is_ready(m), m.creation_timestamp))
    return found[0] if found else None


def logged_model_for(c: Any, exp_id: str, run_id: str, token: str, params: dict[str, str], log: Log | None) -> tuple[str, bool]:
    """(model id, ready): the run's logged model with `token`, created (PENDING) when there is none."""

    def find_or_create() -> tuple[str, bool]:
        found = find_logged_model(c, exp_id, token, None)
        if found is not None:
            return str(found.model_id), _is_ready(found)
        made = c.create_logged_model(exp_id, name="model", source_run_id=run_id, tags={TOKEN_TAG: token}, params=params)
        return str(made.model_id), False

    return with_retries(find_or_create, "create logged model", log=log)


def done_steps(c: Any, run_id: str, log: Log | None) -> set[str]:
    """The logging steps this run already finished."""
    tags = with_retries(lambda: dict(c.get_run(run_id).data.tags), "read run tags", log=log)
    return {k.removeprefix(STEP_TAG) for k, v in tags.items() if k.startswith(STEP_TAG) and v == "done"}


def once(c: Any, run_id: str, name: str, done: set[str], fn: Callable[[], Any], log: Log | None) -> None:
    """Run logging step `name` unless the run already finished it; then record it as finished."""
    if name in done:
        if log is not None:
            log(f"[tracking] {name}: already logged in run {run_id}")
        return
    fn()
    with_retries(lambda: c.set_tag(run_id, STEP_TAG + name, "done"), f"mark {name} logged", log=log)
    done.add(name)
