"""`dvc repro` runs the research path (synth -> train -> evaluate) from dvc.yaml in a copy of the
repository with tiny params, and `dvc metrics show` sees the evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "synth": {"tasks": 2, "per_class": 12, "size": 32, "seed": 0},
    "ingest": {"min_size": 16},
    "train": {
        "preset": "paper",
        "overrides": {"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 8, "step_size": 1,
                      "budget_per_task": 8, "replay_per_class_per_task": 2},
    },
}


def test_dvc_repro_runs_synth_train_evaluate_and_shows_metrics(tmp_path: Path) -> None:
    from dvc.repo import Repo

    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy2(REPO / "dvc.yaml", work / "dvc.yaml")
    shutil.copytree(REPO / "ifd", work / "ifd", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "params.yaml").write_text(yaml.safe_dump(TINY))
    Repo.init(str(work), no_scm=True)
    stages = set(yaml.safe_load((work / "dvc.yaml").read_text())["stages"])
    assert {"synth", "train", "evaluate"} <= stages

    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("IFD_WORKSPACE", "MLFLOW_TRACKING_URI")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    dvc = str(bin_dir / "dvc")
    run = subprocess.run([dvc, "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    metrics = json.loads((work / "artifacts" / "eval" / "metrics.json").read_text())
    assert len(metrics["learned"]) == 2
    assert set(metrics["tasks"]) == set(metrics["learned"])
    assert 0.0 <= metrics["mean_auc"] <= 1.0

    shown = subprocess.run([dvc, "metrics", "show", "--json"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    files = json.dumps(json.loads(shown.stdout))
    assert "artifacts/eval/metrics.json" in files and "mean_auc" in files and "artifacts/train/metrics.json" in files

    again = subprocess.run([dvc, "status", "--json"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and json.loads(again.stdout or "{}") == {}
