"""A champion version that fails to load is skipped with an alert, never served half-loaded: the API
keeps answering with the version that served before, /healthz lists the skipped version and why,
/metrics counts it, and the alert goes out as the `ifd.alerts` JSON log line and to the policy's
webhook (a real HTTP listener here).

Two faults, each in the version's local copy (`.ifd/models/v<N>/state.pt`, what serving loads):
garbage bytes (the state does not load) and NaN weights (it loads, but scores NaN: caught by the
smoke batch every version is scored on before it is swapped in).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import torch
from lifecycle_helpers import tiny_lid
from serving_helpers import QUIET, champion_workspace, png_bytes

from ifd.workspace import Workspace

pytestmark = pytest.mark.slow  # three tiny retrains (~40 s on 2 cores)


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        body = self.rfile.read(int(self.headers["content-length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    finally:
        server.shutdown()


def corrupt_bytes(ws: Workspace, version: str) -> None:
    from ifd.tracking import model_registry as reg

    reg.download_state(ws, version).write_bytes(b"not a torch file" * 100)


def nan_weights(ws: Workspace, version: str) -> None:
    from ifd.tracking import model_registry as reg
    from ifd.train.state import IncrementalState

    path = reg.download_state(ws, version)
    state = IncrementalState.load(path)
    with torch.no_grad():
        for p in state.model.parameters():
            p.fill_(float("nan"))
    state.save(path)


def test_versions_that_fail_to_load_are_skipped_with_an_alert(tmp_path_factory: pytest.TempPathFactory, webhook: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve
    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource

    ws = champion_workspace(tmp_path_factory, "bad-version")
    source = ModelSource(ws, poll_s=3600.0, webhook_url=webhook)  # checks run when the test says so
    assert source.refresh(force=True) and source.champion().version == "1"
    client = TestClient(create_app(ws, ServeConfig(alias_poll_s=3600.0, shadow=False), source))
    files = [("files", ("a.png", png_bytes(), "image/png"))]

    rt.run_retrain(ws, "task1", tiny_lid(), progress=QUIET)
    approve(ws, "2", "alice", "second")
    rt.run_retrain(ws, "task2", tiny_lid(), progress=QUIET)  # v3 on top of v2, while v2 is still whole
    corrupt_bytes(ws, "2")
    nan_weights(ws, "3")

    caplog.clear()
    with caplog.at_level("WARNING", logger="ifd.alerts"):
        assert source.refresh(force=True)  # the registry answered; neither new version loads
    alerts = {(a["version"], a["alert"]) for a in (json.loads(r.getMessage()) for r in caplog.records if r.name == "ifd.alerts")}
    assert alerts == {("2", "model_load_failed"), ("3", "model_load_failed")}  # v2 the champion, v3 the challenger
    assert [h["alerts"][0]["version"] for h in Hook.received] == ["2", "3"]
    assert "scores a plain grey image as [nan" in source.skipped["3"]
    assert source.champion().version == "1"

    for champion_alias in ("2", "3"):
        if champion_alias == "3":
            approve(ws, "3", "alice", "third")
            caplog.clear()
            with caplog.at_level("WARNING", logger="ifd.alerts"):
                assert source.refresh(force=True)
            assert not [r for r in caplog.records if r.name == "ifd.alerts"]  # skipped once, not retried or re-alerted
        r = client.post("/v1/score", files=files)
        assert r.status_code == 200 and r.json()["model_version"] == "1"
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["champion"] == "1" and health["challenger"] is None
        assert health["registry"]["aliases"]["champion"] == champion_alias
        assert set(health["skipped_versions"]) == {"2", "3"}
        text = client.get("/metrics").text
        assert 'ifd_model_load_failures_total{version="2"} 1.0' in text and 'ifd_model_load_failures_total{version="3"} 1.0' in text
        assert 'ifd_model_version{alias="champion"} 1.0' in text
    source.close()
