"""Against a real `mlflow server --app-name basic-auth` (configured like `make mlflow AUTH=1`): the
reviewer recorded by approve is the user the server authenticated, not a free-text flag; a user the
server does not allow to edit the model is refused with one line; a wrong password is refused."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid
from mlflow_server import ADMIN, ADMIN_PASSWORD, mlflow_server

from ifd.cli import main
from ifd.lifecycle import retrain as rt
from ifd.lifecycle.champion import recorded
from ifd.lifecycle.review import ReviewRefused, approve
from ifd.tracking import model_registry as reg
from ifd.tracking.identity import NotAuthenticated
from ifd.tracking.retry import TrackingRefused

quiet = lambda _: None  # noqa: E731


def cli(*args: str) -> tuple[int, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*args, "--json"])
    return code, (json.loads(buf.getvalue()) if buf.getvalue().strip() else None)


def sign_in(monkeypatch: pytest.MonkeyPatch, user: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


@pytest.mark.slow
def test_the_reviewer_is_the_authenticated_mlflow_user(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server.auth.client import AuthServiceClient

    ws = fresh_workspace(tmp_path_factory, "auth")
    with mlflow_server(tmp_path / "server", auth=True) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
        assert rt.run_retrain(ws, "task0", tiny_lid(), progress=quiet)["version"] == "1"
        admin = AuthServiceClient(server.url)
        admin.create_user("alice", "alice-password-1")
        admin.create_user("mallory", "mallory-password-1")
        admin.grant_user_permission("alice", "registered_model", reg.MODEL_NAME, "EDIT")

        sign_in(monkeypatch, "alice", "alice-password-1")
        with pytest.raises(ReviewRefused, match="signed in to the tracking server as 'alice'; --reviewer 'bob'"):
            approve(ws, "1", "bob", "pretending")
        # EDIT may tag and set aliases, not delete one (MLflow wants MANAGE): refused before anything changed.
        with pytest.raises(TrackingRefused, match="refused alice permission to delete alias challenger"):
            approve(ws, "1", None, "too early")
        v1 = reg.get_version(ws, "1")
        assert "decision" not in v1.tags and v1.aliases == ["challenger"] and recorded(ws) is None
        sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
        admin.revoke_user_permission("alice", "registered_model", reg.MODEL_NAME)
        admin.grant_user_permission("alice", "registered_model", reg.MODEL_NAME, "MANAGE")
        sign_in(monkeypatch, "alice", "alice-password-1")
        code, out = cli("approve", "1", "--note", "AUC fine", "--workspace", str(ws.root))
        assert code == 0 and out["reviewer"] == "alice"
        v1 = reg.get_version(ws, "1")
        assert (v1.tags["reviewer"], v1.tags["reviewer_source"], v1.aliases) == ("alice", "mlflow-auth", ["champion"])
        assert recorded(ws)["by"] == "alice"

        sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
        assert rt.run_retrain(ws, "task1", tiny_lid(), progress=quiet)["version"] == "2"
        sign_in(monkeypatch, "mallory", "mallory-password-1")  # READ only (the default permission)
        with pytest.raises(TrackingRefused, match="refused mallory permission"):
            approve(ws, "2", None, "let me in")
        assert "decision" not in reg.get_version(ws, "2").tags
        assert reg.version_by_alias(ws, reg.CHAMPION).version == "1"

        sign_in(monkeypatch, "alice", "wrong-password")
        with pytest.raises(NotAuthenticated, match="refused the credentials"):
            approve(ws, "2", None, "x")
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        code, _ = cli("registry", "--workspace", str(ws.root))
        assert code == 6  # the server wants to know who asks
