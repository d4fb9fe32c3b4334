"""Creates are safe to repeat (real MLflow on SQLite): a repeated create finds what the first one made,
by the job's client token or the run's version, instead of making a second run, model or version."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.lifecycle import retrain as rt
from ifd.tracking import idempotent as idem
from ifd.tracking import model_registry as reg
from ifd.tracking.retrain_run import EXPERIMENT, log_retrain
from ifd.tracking.store import ensure_experiment

quiet = lambda _: None  # noqa: E731


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> dict:
    ws = fresh_workspace(tmp_path_factory, "idem")
    return {"ws": ws, "result": rt.run_retrain(ws, "task0", tiny_lid(), progress=quiet)}


def test_a_repeated_run_create_finds_the_run_by_its_token(done: dict, tmp_path: Path) -> None:
    ws = done["ws"]
    c = reg.client(ws)
    exp = ensure_experiment(ws, EXPERIMENT)
    token = idem.client_token(tmp_path / "client_token")
    assert idem.client_token(tmp_path / "client_token") == token  # kept on disk before the first create
    first, created = idem.find_or_create_run(c, exp, token, {"k": "v"}, "r", None)
    again, created_again = idem.find_or_create_run(c, exp, token, {"k": "v"}, "r", None)
    assert (created, created_again) == (True, False) and first == again
    assert len(c.search_runs([exp], filter_string=f"tags.`{idem.TOKEN_TAG}` = '{token}'")) == 1


def test_a_repeated_registration_reuses_the_version_with_all_its_tags(done: dict) -> None:
    ws, result = done["ws"], done["result"]
    v1 = reg.get_version(ws, result["version"])
    model_id = reg.client(ws).get_model_version(reg.MODEL_NAME, v1.version).model_id
    again = reg.register_version(ws, result["run_id"], model_id, dict(v1.tags), log=quiet)
    assert again.version == v1.version and again.tags == v1.tags
    assert [v.version for v in reg.list_versions(ws)] == [v1.version]


def test_relogging_a_recorded_job_logs_nothing_twice(done: dict) -> None:
    from ifd.lifecycle.record import build_record

    ws, result = done["ws"], done["result"]
    job = Path(result["job"])
    c = reg.client(ws)
    before = {k: len(c.get_metric_history(result["run_id"], k)) for k in ("AA", "AA_curve")}
    candidate = {"job": str(job), "state": str(job / "state.pt"), "tasks": ["task0"], "data_version": result["data_version"]}
    rec = build_record(ws, candidate, {}, result["gate"])
    redone = log_retrain(ws, rec, run_id_file=job / rt.RUN_ID_FILE, log=quiet)  # as if result.json were lost
    assert (redone["run_id"], redone["version"]) == (result["run_id"], result["version"])
    assert {k: len(c.get_metric_history(result["run_id"], k)) for k in before} == before
    exp = c.get_experiment_by_name(EXPERIMENT).experiment_id
    token = (job / "client_token").read_text().strip()
    assert len(list(c.search_logged_models([exp], filter_string=f"tags.`{idem.TOKEN_TAG}` = '{token}'"))) == 1
