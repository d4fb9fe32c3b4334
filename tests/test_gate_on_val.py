"""The retention gate decides on val and never reads test: a real champion and a real candidate on a tiny
workspace, then copies of the candidate's pinned data with the test split poisoned (labels flipped, then
the images removed) or the val split changed. The monitor's reference is made of val rows too."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.data.tasks import TaskData
from ifd.lifecycle import retrain as rt
from ifd.lifecycle.gate_scores import split_aucs
from ifd.train.state import IncrementalState
from ifd.train.val_split import with_val
from ifd.workspace import Workspace

LID = tiny_lid(epochs=4, lr=5e-3)
quiet = lambda _: None  # noqa: E731
STRICT_NEW = "max_old_task_auc_drop: 1.0\nmin_new_task_auc: 0.5\nmax_aa_drop: 1.0\n"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """task0 -> version 1 (approved champion); a task1 candidate learned on top of it, not yet gated."""
    from ifd.lifecycle.review import approve

    ws = fresh_workspace(tmp_path_factory, "gate-on-val")
    rt.run_retrain(ws, "task0", LID, progress=quiet)
    approve(ws, "1", "vera", "champion for the gate tests")
    champion = rt.fetch_champion(ws, quiet)
    candidate = rt.learn_candidate(ws, "task1", champion, LID, quiet)
    return {"ws": ws, "champion": champion, "candidate": candidate, "policy": str(tmp_path_factory.mktemp("policy") / "gate.yaml")}


def _copy_data(candidate: dict[str, Any], dest: Path) -> dict[str, Any]:
    """The candidate with its own copy of the pinned data (plain files: editing them leaves DVC's objects alone)."""
    shutil.copytree(candidate["data_root"], dest)
    return {**candidate, "data_root": str(dest)}


def _manifest(data_root: str, name: str) -> Path:
    return Path(data_root) / "batches" / name / "manifest.csv"


def _gate(s: dict[str, Any], candidate: dict[str, Any], policy: str | None = None) -> dict[str, Any]:
    return rt.gate_candidate(s["ws"], candidate, s["champion"], policy, quiet)


def test_the_gate_compares_val_aucs_of_champion_and_candidate(setup: dict[str, Any]) -> None:
    s = setup
    gate = _gate(s, s["candidate"])
    root = Path(s["candidate"]["data_root"]) / "batches"
    tasks = [with_val(TaskData.from_batch(root / n)) for n in ("task0", "task1")]
    cand = IncrementalState.load(Path(s["candidate"]["state"]))
    champ = IncrementalState.load(Path(s["champion"]["state"]))
    assert gate["split"] == "val"
    assert gate["candidate_auc"] == pytest.approx(split_aucs(cand, tasks, "val"))
    assert gate["champion_auc"] == pytest.approx(split_aucs(champ, tasks[:1], "val"))
    assert gate["rules"][1]["value"] == pytest.approx(gate["candidate_auc"]["task1"])
    assert all(r["detail"].startswith(("largest val", "val ")) for r in gate["rules"])


def test_poisoned_test_labels_and_images_leave_the_verdict_unchanged(setup: dict[str, Any], tmp_path: Path) -> None:
    s = setup
    before = _gate(s, s["candidate"])
    poisoned = _copy_data(s["candidate"], tmp_path / "data")
    for name in ("task0", "task1"):
        path = _manifest(poisoned["data_root"], name)
        frame = pd.read_csv(path)
        test = frame["split"] == "test"
        frame.loc[test, "label"] = frame.loc[test, "label"].map({"real": "fake", "fake": "real"})
        frame.to_csv(path, index=False)
    # The poison is real: a read of test now sees flipped labels (AUC 1 - a on every task).
    cand = IncrementalState.load(Path(s["candidate"]["state"]))
    tasks = [TaskData.from_batch(Path(poisoned["data_root"]) / "batches" / n) for n in ("task0", "task1")]
    recorded_test = dict(zip(cand.matrix.task_names, cand.matrix.final_row("auc"), strict=True))
    flipped = split_aucs(cand, tasks, "test")
    assert flipped == pytest.approx({n: 1.0 - a for n, a in recorded_test.items()})
    assert _gate(s, poisoned) == before

    for task in tasks:  # now a test read could not even open the images
        for rel in task.split("test")["path"]:
            (task.root / rel).unlink()
    assert _gate(s, poisoned) == before


def test_the_verdict_follows_the_val_split(setup: dict[str, Any], tmp_path: Path) -> None:
    """Swapping the pixels of task1's real and fake val images (its seeded hold-out) turns its val AUC b
    into 1 - b: under a new-task floor of 0.5 a pass becomes a refusal, while test stays as it was."""
    s = setup
    Path(s["policy"]).write_text(STRICT_NEW)
    before = _gate(s, s["candidate"], s["policy"])
    b = before["candidate_auc"]["task1"]
    assert b > 0.5, f"the tiny candidate did not learn task1 on val (AUC {b}); the test needs it to"
    assert before["passed"]

    changed = _copy_data(s["candidate"], tmp_path / "data")
    task = with_val(TaskData.from_batch(Path(changed["data_root"]) / "batches" / "task1"))
    val = task.split("val")
    reals = [task.root / p for p in val.loc[val["label"] == "real", "path"]]
    fakes = [task.root / p for p in val.loc[val["label"] == "fake", "path"]]
    assert len(reals) == len(fakes) >= 1
    for real, fake in zip(reals, fakes, strict=True):
        r, f = real.read_bytes(), fake.read_bytes()
        real.write_bytes(f)
        fake.write_bytes(r)
    after = _gate(s, changed, s["policy"])
    assert after["candidate_auc"]["task1"] == pytest.approx(1.0 - b)
    cand = IncrementalState.load(Path(s["candidate"]["state"]))
    assert split_aucs(cand, [task], "test")["task1"] == pytest.approx(cand.matrix.final_row("auc")[-1])  # test untouched
    assert not after["passed"] and after["failed_rules"] == ["new_task_auc"]
    assert "val AUC on task1" in after["rules"][1]["detail"]


def test_the_record_labels_val_gate_numbers_and_test_report_numbers(setup: dict[str, Any]) -> None:
    from ifd.lifecycle.record import build_record

    s = setup
    gate = _gate(s, s["candidate"])
    rec = build_record(s["ws"], s["candidate"], s["champion"], gate)
    assert rec.tags["gate.split"] == "val" and rec.version_tags["gate.split"] == "val"
    assert rec.tags["gate.new_task_auc"].split(": ", 1)[1].startswith("val AUC on task1")
    cand = IncrementalState.load(Path(s["candidate"]["state"]))
    assert rec.metrics["auc.task1"] == pytest.approx(cand.matrix.final_row("auc")[-1])  # test, for the report
    card = (Path(rec.files_dir) / "model_card.md").read_text()
    assert "Decided on the `val` split of every task" in card
    assert "| task | champion val AUC | this model's val AUC |" in card
    assert f"| task1 | - | {gate['candidate_auc']['task1']:.4f} |" in card
    assert "## Retention (test split, for the report)" in card


def test_an_old_report_without_a_split_reads_as_decided_on_test() -> None:
    from ifd.lifecycle.gate import GateReport, evaluate_gate
    from registry.policy import GatePolicy

    old = evaluate_gate({"a": 0.95}, "a", None, GatePolicy(), split="test").to_dict()
    for key in ("split", "candidate_auc", "champion_auc"):
        old.pop(key)
    report = GateReport.from_dict(old)
    assert report.split == "test" and "decided on the test split" in report.text()


class _Scorer:
    """Records which files the reference scored (the monitor's DetectorScorer, reduced to its output shape)."""

    def __init__(self) -> None:
        self.seen: list[Path] = []

    def score(self, paths: list[Path]) -> Any:
        from types import SimpleNamespace

        self.seen += [Path(p) for p in paths]
        n = len(paths)
        return SimpleNamespace(p_fake=np.full(n, 0.5), embeddings=np.zeros((n, 2)), unknown=np.zeros(n, bool), unknown_score=np.zeros(n))


def test_the_monitor_reference_uses_val_or_the_training_hold_out_never_test(setup: dict[str, Any]) -> None:
    from ifd.errors import IfdError
    from ifd.monitoring.reference import build_reference

    ws: Workspace = setup["ws"]
    task = TaskData.from_batch(ws.batch_dir("task0"))
    assert not task.has_split("val")
    scorer = _Scorer()
    build_reference(scorer, [task], "1")
    held = with_val(task).split("val")
    assert scorer.seen == [task.root / p for p in held["path"]]
    assert not set(scorer.seen) & {task.root / p for p in task.split("test")["path"]}

    one_fake = task.frame[(task.frame["split"] != "train") | (task.frame["label"] == "real") | (task.frame["source_id"] == "fake0")]
    lonely = TaskData(name="lonely", root=task.root, frame=one_fake.reset_index(drop=True))
    with pytest.raises(IfdError, match="task 'lonely' has no val split and 1 fake train source"):
        build_reference(_Scorer(), [lonely], "1")
