"""The prediction log on a real PostgreSQL 15 cluster (Debian's binaries, started once for this module):
several writer processes, one reader; the workspace picks the URL from the environment or params.yaml;
Optuna keeps a study in the same cluster. The SQLite default keeps taking two writer processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pg_cluster import free_port, started_cluster

from ifd.errors import IfdError
from ifd.monitoring.prediction_log import PredictionLog
from ifd.servers.postgres import Cluster

WRITER = """
import sys, numpy as np
from ifd.monitoring.prediction_log import PredictionLog
url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = PredictionLog(url)
rng = np.random.default_rng(abs(hash(name)) % 2**32)
for k in range(n):
    rows = [{"p_fake": float(p), "label": "fake" if p > 0.5 else "real", "generator": None, "unknown": False,
             "unknown_score": 0.1} for p in rng.random(4)]
    log.record(f"{name}-{k}", "champion", "3", rows, rng.normal(size=(4, 8)))
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with started_cluster() as c:
        yield c


def _writers(url: str, names: list[str], n: int) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(n)], stderr=subprocess.PIPE, text=True)
             for name in names]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err


def _fresh(cluster: Cluster, name: str) -> str:
    import psycopg

    with psycopg.connect(cluster.url("postgres").replace("+psycopg", ""), autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.execute(f'CREATE DATABASE "{name}"')
    return cluster.url("postgres").rsplit("/", 1)[0] + f"/{name}"


def test_two_writer_processes_one_reader(cluster: Cluster) -> None:
    url = _fresh(cluster, "two_writers")
    _writers(url, ["replica-a", "replica-b"], 25)
    log = PredictionLog(url)
    assert log.count() == 2 * 25 * 4
    win = log.window("champion", limit=1000)
    assert len(win) == 200
    assert {r.split("-")[1] for r in win.request_ids} == {"a", "b"}
    assert win.embeddings.shape == (200, 8) and win.embeddings.dtype == np.float32
    for name in ("replica-a", "replica-b"):
        per = [i for r, i in zip(win.request_ids, win.items, strict=True) if r.startswith(name)]
        assert per == [0, 1, 2, 3] * 25  # each request's items stay in input order
    assert log.window("shadow").p_fake.size == 0


def test_feedback_and_shadow_pairs_across_processes(cluster: Cluster) -> None:
    url = _fresh(cluster, "pairs")
    writer = PredictionLog(url)
    rows = [{"p_fake": 0.9, "label": "fake", "generator": "gan", "unknown": True, "unknown_score": 2.5}]
    writer.record("req", "champion", "3", rows, np.ones((1, 4)))
    writer.record("req", "shadow", "4", [dict(rows[0], p_fake=0.2)], np.ones((1, 4)))
    reader = PredictionLog(url.replace("postgresql+psycopg://", "postgresql://"))  # the plain scheme works too
    reader.add_feedback("req", 0, "real")
    reader.add_feedback("req", 0, "fake")  # the last label wins
    assert writer.paired() == [(0.9, 0.2, "fake")]
    win = reader.window("champion")
    assert win.generators == ["gan"] and win.unknown.tolist() == [True] and win.unknown_scores.tolist() == [2.5]
    with pytest.raises(IfdError, match="no prediction"):
        reader.add_feedback("nope", 0, "real")


def test_workspace_takes_the_url_from_env_then_params(cluster: Cluster, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ifd.monitoring.run import prediction_log
    from ifd.workspace import Workspace

    ws = Workspace.at(tmp_path)
    assert prediction_log(ws).path == tmp_path / ".ifd" / "monitoring" / "predictions.db"
    url = _fresh(cluster, "from_params")
    (tmp_path / "params.yaml").write_text(f"monitoring:\n  prediction_log_url: {url}\n")
    prediction_log(ws).record("p", "champion", "1", [{"p_fake": 0.5, "label": "real", "unknown": False}],
                              np.zeros((1, 2)))
    assert PredictionLog(url).count() == 1
    monkeypatch.setenv("IFD_PREDICTION_LOG_URL", _fresh(cluster, "from_env"))
    assert prediction_log(ws).count() == 0  # the environment overrides params.yaml
    assert PredictionLog(tmp_path / ".ifd" / "monitoring" / "predictions.db").count() == 0  # nothing went to SQLite


def test_unreachable_server_names_it_without_the_password() -> None:
    url = f"postgresql://ifd:s3cret@127.0.0.1:{free_port()}/predictions"
    with pytest.raises(IfdError, match=r"prediction log postgresql\+psycopg://ifd:\*\*\*@127.0.0.1") as err:
        PredictionLog(url)
    assert "s3cret" not in str(err.value)


def test_params_and_env_refuse_an_unknown_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ifd.config import load_config
    from ifd.monitoring.run import prediction_log
    from ifd.workspace import Workspace

    (tmp_path / "params.yaml").write_text("monitoring:\n  prediction_log_url: mysql://x/y\n")
    with pytest.raises(IfdError, match="monitoring.prediction_log_url"):
        load_config(tmp_path / "params.yaml")
    monkeypatch.setenv("IFD_PREDICTION_LOG_URL", "mysql://x/y")
    with pytest.raises(IfdError, match="IFD_PREDICTION_LOG_URL"):
        prediction_log(Workspace.at(tmp_path))


def test_optuna_study_in_the_cluster(cluster: Cluster) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=cluster.url("optuna"), direction="maximize",
                                load_if_exists=True)
    study.optimize(lambda t: -(t.suggest_float("x", -1, 1) ** 2), n_trials=3)
    again = optuna.load_study(study_name="s", storage=cluster.url("optuna"))
    assert len(again.trials) >= 3


def test_sqlite_default_takes_two_writer_processes(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    PredictionLog(path)
    _writers(str(path), ["w-a", "w-b"], 20)
    assert PredictionLog(path).count() == 160


OLD_SCHEMA = """
CREATE TABLE predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT NULL,
  item INTEGER NOT NULL, role TEXT NOT NULL, version TEXT NOT NULL, p_fake REAL NOT NULL, label TEXT NOT NULL,
  generator TEXT, unknown INTEGER NOT NULL, unknown_score REAL NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX predictions_role_id ON predictions (role, id);
CREATE TABLE feedback (request_id TEXT NOT NULL, item INTEGER NOT NULL,
  label TEXT NOT NULL CHECK (label IN ('real', 'fake')), ts REAL NOT NULL, PRIMARY KEY (request_id, item));
INSERT INTO predictions VALUES (NULL, 1.0, 'old', 0, 'champion', '1', 0.25, 'real', NULL, 0, 0.0, x'003c003c');
"""


def test_a_sqlite_log_written_before_sqlalchemy_keeps_working(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "predictions.db"
    with sqlite3.connect(path) as con:
        con.executescript(OLD_SCHEMA)
    log = PredictionLog(path)
    log.record("new", "champion", "1", [{"p_fake": 0.75, "label": "fake", "unknown": False}], np.ones((1, 2)))
    log.add_feedback("old", 0, "real")
    win = log.window("champion")
    assert win.request_ids == ["old", "new"] and win.embeddings.tolist() == [[1.0, 1.0], [1.0, 1.0]]
