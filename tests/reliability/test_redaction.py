"""Webhook URLs and tracking URIs are redacted in logs, reports and JSON; the registered pyfunc model
reads a file path only when the caller enables it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ifd.redact import RedactingFilter, redact_text, redact_url, redact_webhook
from ifd.workspace import Workspace

HOOK = "http://127.0.0.1:9/services/T000/B000/SECRETXYZ"
URI = "http://bob:hunter2@127.0.0.1:9"


def test_urls_lose_passwords_query_values_and_webhook_paths() -> None:
    assert redact_url("http://alice:s3cret@host:5000/api?token=abc") == "http://alice:***@host:5000/api?token=***"
    assert redact_url("sqlite:////tmp/ws/.ifd/mlflow.db") == "sqlite:////tmp/ws/.ifd/mlflow.db"
    assert redact_url("postgresql://u:pw@db/mlflow") == "postgresql://u:***@db/mlflow"
    assert redact_webhook("https://hooks.slack.com/services/T0/B0/XXXX") == "https://hooks.slack.com/***"
    text = f"POST {HOOK} failed: Max retries exceeded with url: /services/T000/B000/SECRETXYZ"
    assert "SECRETXYZ" not in redact_text(text, [HOOK])


def test_a_failed_webhook_is_reported_without_its_url(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ifd.monitoring.alerts import Alert
    from ifd.monitoring.run import MonitorReport, _emit, markdown
    from monitoring.policy import MonitorPolicy

    policy = MonitorPolicy.model_validate({"alerts": {"webhook_url": HOOK, "webhook_timeout_s": 2}})
    report = MonitorReport("1", alerts=[Alert("score_drift", "p(fake) moved", 0.2, 0.1, "1")])
    with caplog.at_level(logging.INFO):
        _emit(Workspace.at(tmp_path), policy, report)
    assert report.webhook_error and "127.0.0.1" in report.webhook_error  # reported, not swallowed
    for text in (report.webhook_error, markdown(report), json.dumps(report.to_dict()), caplog.text):
        assert "SECRETXYZ" not in text and "T000" not in text


def test_tracking_uri_credentials_never_reach_the_error_or_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ifd.cli import main
    from ifd.tracking import model_registry as reg
    from ifd.tracking.retry import TrackingUnavailable
    from ifd.workspace_init import init_workspace

    ws = init_workspace(Workspace.at(tmp_path / "ws"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", URI)
    monkeypatch.setenv("IFD_TRACKING_BUDGET_S", "1")
    monkeypatch.setenv("IFD_TRACKING_TIMEOUT_S", "1")
    with pytest.raises(TrackingUnavailable) as err:
        reg.list_versions(ws)
    assert "hunter2" not in str(err.value) and "bob:***@127.0.0.1" in str(err.value)
    out, errs = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errs):
        code = main(["registry", "--workspace", str(ws.root)])
    assert code == 5 and "hunter2" not in errs.getvalue() + out.getvalue()


def test_the_log_filter_redacts_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("ifd.test_redaction")
    log.addHandler(handler)
    try:
        log.warning("run at %s", URI + "/#/experiments/1")
        try:
            raise ConnectionError(f"API request to {URI}/api/2.0/mlflow/runs/get failed")
        except ConnectionError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    assert "hunter2" not in stream.getvalue() and "bob:***@" in stream.getvalue()


def test_the_pyfunc_model_opens_files_only_when_asked(tmp_path: Path) -> None:
    import base64

    import pandas as pd
    from PIL import Image

    from ifd.inference.decode import BadImage
    from ifd.tracking.pyfunc_model import input_items

    path = tmp_path / "face.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    frame = pd.DataFrame({"image": [str(path)]})
    with pytest.raises(BadImage, match="allow_paths"):
        input_items(frame)
    with pytest.raises(BadImage, match="allow_paths"):
        input_items({"image": [path]})  # a Path object is a path too
    assert input_items(frame, allow_paths=True) == [str(path)]
    encoded = base64.b64encode(path.read_bytes()).decode()
    assert input_items(pd.DataFrame({"image": [encoded]})) == [path.read_bytes()]
