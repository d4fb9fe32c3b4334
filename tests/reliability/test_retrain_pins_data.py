"""A retrain trains on the data version it pinned at its start: an `ingest --replace` of the very batch it
is learning, landing while it runs, changes neither what it reads nor what it records."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid
from test_train_data import write_tiny_batch

from ifd.data.catalog import load_catalog
from ifd.data.dvc_store import data_version
from ifd.lifecycle import data_pin
from ifd.lifecycle import retrain as rt
from ifd.tracking import model_registry as reg
from ifd.train.state import IncrementalState

_RETRAIN = """
import json, sys
from ifd.lifecycle.retrain import run_retrain
from ifd.workspace import Workspace
out = run_retrain(Workspace.at(sys.argv[1]), "task1", json.loads(sys.argv[2]), progress=lambda m: print(m, file=sys.stderr, flush=True))
print(json.dumps(out, default=str))
"""


def test_the_snapshot_is_the_dvc_version_byte_for_byte(tmp_path_factory: pytest.TempPathFactory) -> None:
    ws = fresh_workspace(tmp_path_factory, "pin-unit")
    pin = data_pin.read_pin(ws)
    assert pin["data_version"] == data_version(ws)
    snap = data_pin.materialise(ws, ws.state_dir / "retrain" / "job", pin, ["task0"])
    files = sorted(p for p in snap.rglob("*") if p.is_file())
    assert {str(p.relative_to(snap)) for p in files} == {k for k in pin["files"] if k == "catalog.json" or k.startswith("batches/task0/")}
    for p in files:
        assert hashlib.md5(p.read_bytes()).hexdigest() == pin["files"][str(p.relative_to(snap))]
    assert data_pin.pinned_catalog(ws, pin).names() == load_catalog(ws.catalog_path).names()


@pytest.mark.slow
def test_an_ingest_replacing_the_batch_during_a_retrain_does_not_change_it(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    from ifd.data.ingest import ingest_batch
    from ifd.data.ingest_config import IngestConfig

    ws = fresh_workspace(tmp_path_factory, "pin")
    before_version = data_version(ws)
    before = load_catalog(ws.catalog_path).get("task1")
    env = {**os.environ, "IFD_FAULT_AT": "retrain.pinned=sleep:30"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-c", _RETRAIN, str(ws.root), json.dumps(tiny_lid())], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        for line in proc.stderr:  # wait until the retrain has pinned its data (it then sleeps 30 s)
            if "pinned in" in line or time.monotonic() > deadline:
                break
        src = write_tiny_batch(tmp_path / "new-task1", seed=41, n_per_class=9)
        replaced = ingest_batch(src, "task1", ws, IngestConfig(min_size=16), replace=True)
        assert replaced.replaced and data_version(ws) != before_version
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])

    assert result["data_version"] == before_version  # the version it read, not the one that landed
    version = reg.get_version(ws, result["version"])
    assert version.tags["data_version"] == before_version
    run = reg.client(ws).get_run(result["run_id"])
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == before_version[:36] and run.data.tags["data_version"] == before_version
    assert load_catalog(ws.catalog_path).get("task1").digest != before.digest  # the replace did land
    # It learned the old batch: the job is keyed by the old content, and read from its pinned snapshot.
    job = Path(result["job"])
    assert job == rt.job_dir(ws, "task1", {}, tiny_lid(), before.digest)
    state = IncrementalState.load(job / "state.pt")
    assert Path(state.task_roots["task1"]) == job / "data" / "batches" / "task1"
    assert json.loads((job / "data_pin.json").read_text())["data_version"] == before_version
