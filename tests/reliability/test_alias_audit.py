"""`champion` moved outside `ifd approve` (as the MLflow UI does: a plain alias call) is reported by the
monitor with the revert command, and `ifd revert-champion` puts it back."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.cli import main
from ifd.lifecycle import retrain as rt
from ifd.lifecycle.review import approve
from ifd.monitoring.alias_audit import KIND, audit_champion
from ifd.tracking import model_registry as reg
from ifd.tracking.model_tags import model_tags
from ifd.workspace import Workspace

quiet = lambda _: None  # noqa: E731


def cli(*args: str) -> tuple[int, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*args, "--json"])
    return code, (json.loads(buf.getvalue()) if buf.getvalue().strip() else None)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """v1 approved (champion), v2 trained on v1 waiting as challenger."""
    ws = fresh_workspace(tmp_path_factory, "alias")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=quiet)
    approve(ws, "1", "alice", "first")
    rt.run_retrain(ws, "task1", tiny_lid(), progress=quiet)
    return ws


def _ui_moves_champion(ws: Workspace, version: str | None) -> None:
    """What the MLflow UI does: an alias call, no ifd checks, no record."""
    c = reg.client(ws)
    if version is None:
        c.delete_registered_model_alias(reg.MODEL_NAME, reg.CHAMPION)
    else:
        c.set_registered_model_alias(reg.MODEL_NAME, reg.CHAMPION, version)


def test_champion_set_by_ifd_approve_passes_the_audit(ws: Workspace) -> None:
    values, alerts = audit_champion(ws)
    assert alerts == [] and values["champion_alias"] == "ok" and values["champion_recorded"] == "1"


def test_the_monitor_reports_a_champion_moved_in_the_ui_and_one_command_reverts_it(ws: Workspace) -> None:
    from ifd.monitoring.service import monitor_champion

    _ui_moves_champion(ws, "2")
    report = monitor_champion(str(ws.root), holdout=False)
    (alert,) = [a for a in report["alerts"] if a["kind"] == KIND]
    assert "points at version 2" in alert["message"] and "version 1" in alert["message"] and "alice" in alert["message"]
    assert "ifd revert-champion" in alert["action"]
    assert KIND in report["markdown"]

    code, out = cli("revert-champion", "--reviewer", "bob", "--note", "moved in the UI", "--workspace", str(ws.root))
    assert code == 0 and (out["champion"], out["reverted_from"]) == ("1", "2")
    assert reg.version_by_alias(ws, reg.CHAMPION).version == "1"
    assert reg.get_version(ws, "2").tags["champion_reverted_by"] == "bob"
    assert audit_champion(ws)[1] == []
    code, _ = cli("revert-champion", "--reviewer", "bob", "--note", "again", "--workspace", str(ws.root))
    assert code == 6  # nothing to revert


def test_a_deleted_champion_alias_is_reported_and_restored(ws: Workspace) -> None:
    from ifd.lifecycle.champion import revert

    _ui_moves_champion(ws, None)
    values, (alert,) = audit_champion(ws)
    assert values["champion_alias"] == "moved" and "alias was deleted" in alert.message
    assert revert(ws, "bob", "deleted by mistake")["champion"] == "1"
    assert reg.version_by_alias(ws, reg.CHAMPION).version == "1"


def test_without_a_record_an_unapproved_champion_is_still_reported(ws: Workspace) -> None:
    c = reg.client(ws)
    for key in [k for k in model_tags(ws) if k.startswith("ifd.champion")]:
        c.delete_registered_model_tag(reg.MODEL_NAME, key)
    assert audit_champion(ws)[1] == []  # v1 is approved: a registry from before the record is fine
    _ui_moves_champion(ws, "2")
    _, (alert,) = audit_champion(ws)
    assert "which no reviewer approved" in alert.message
    _ui_moves_champion(ws, "1")
