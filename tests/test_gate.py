"""The retention gate on hand-made numbers: each rule alone, the first version, boundaries, the policy file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ifd.errors import ConfigError
from ifd.lifecycle.gate import GateReport, evaluate_gate
from registry.policy import DEFAULT_POLICY_FILE, GatePolicy, load_policy, policy_path

POLICY = GatePolicy()
CHAMPION = {"a": 0.95, "b": 0.93}  # AA 0.94


def gate(candidate: dict[str, float], champion: dict[str, float] | None = CHAMPION, new: str = "c") -> GateReport:
    return evaluate_gate(candidate, new, champion, POLICY, champion_version="4" if champion else None)


def test_defaults_are_the_contract_and_the_packaged_file_says_the_same() -> None:
    assert (POLICY.max_old_task_auc_drop, POLICY.min_new_task_auc, POLICY.max_aa_drop) == (0.02, 0.90, 0.01)
    assert load_policy(path=DEFAULT_POLICY_FILE) == POLICY


def test_a_good_candidate_passes_every_rule() -> None:
    report = gate({"a": 0.94, "b": 0.93, "c": 0.96})
    assert report.passed and report.failed_rules() == []
    assert [r.rule for r in report.rules] == ["old_task_auc_drop", "new_task_auc", "aa_drop"]
    assert report.rule("old_task_auc_drop").value == pytest.approx(0.01)
    assert report.tags()["gate"] == "passed"


def test_old_task_drop_alone_fails_and_names_the_task() -> None:
    # a drops 0.03 (> 0.02); b improves, so the mean on old tasks (0.92 + 0.96) / 2 = 0.94 >= 0.93 passes.
    report = gate({"a": 0.92, "b": 0.96, "c": 0.99})
    assert report.failed_rules() == ["old_task_auc_drop"]
    rule = report.rule("old_task_auc_drop")
    assert "a 0.9500 -> 0.9200" in rule.detail
    assert rule.per_task["a"]["drop"] == pytest.approx(0.03)
    assert report.tags()["gate.failed_rules"] == "old_task_auc_drop"


def test_new_task_auc_alone_fails() -> None:
    report = gate({"a": 0.97, "b": 0.96, "c": 0.89})
    assert report.failed_rules() == ["new_task_auc"]
    assert "0.8900 < 0.9000" in report.rule("new_task_auc").detail


def test_aa_drop_alone_fails() -> None:
    # every old task within 0.02 and the new task >= 0.90, but on the champion's tasks the mean
    # (0.935 + 0.915) / 2 = 0.925 < 0.94 - 0.01
    report = gate({"a": 0.935, "b": 0.915, "c": 0.99})
    assert report.failed_rules() == ["aa_drop"]
    assert report.rule("aa_drop").limit == pytest.approx(0.93)
    assert report.rule("aa_drop").value == pytest.approx(0.925)


def test_a_new_task_below_the_champions_average_does_not_trip_the_aa_rule() -> None:
    # nothing forgotten; the new task (0.91) is below the champion's AA (0.94) but has its own rule
    report = gate({"a": 0.95, "b": 0.93, "c": 0.91})
    assert report.passed, report.text()


def test_exact_boundaries_pass_despite_float_noise() -> None:
    report = gate({"a": 0.93, "b": 0.91, "c": 0.90}, champion={"a": 0.95, "b": 0.93})
    assert report.rule("old_task_auc_drop").passed and report.rule("new_task_auc").passed


def test_first_version_only_the_new_task_rule_applies() -> None:
    report = gate({"c": 0.91}, champion=None)
    assert report.passed
    assert [r.applied for r in report.rules] == [False, True, False]
    assert report.tags()["gate.old_task_auc_drop"].startswith("skipped")
    assert not gate({"c": 0.5}, champion=None).passed


def test_a_missing_or_undefined_auc_fails_its_rule() -> None:
    report = gate({"b": 0.93, "c": math.nan})
    assert set(report.failed_rules()) >= {"old_task_auc_drop", "new_task_auc"}
    assert "undefined" in report.rule("new_task_auc").detail


def test_report_round_trips_through_a_dict() -> None:
    report = gate({"a": 0.92, "b": 0.93, "c": 0.99})
    again = GateReport.from_dict(report.to_dict())
    assert again == report and again.text() == report.text()
    assert "FAILED: old_task_auc_drop" in report.text()


def test_workspace_policy_wins_and_bad_files_name_the_field(tmp_path: Path) -> None:
    assert policy_path(tmp_path) == DEFAULT_POLICY_FILE
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "gate.yaml").write_text("min_new_task_auc: 0.8\n")
    assert policy_path(tmp_path) == tmp_path / "registry" / "gate.yaml"
    assert load_policy(tmp_path) == GatePolicy(min_new_task_auc=0.8)
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_new_task_auc: 2\n")
    with pytest.raises(ConfigError, match="min_new_task_auc"):
        load_policy(tmp_path, bad)
    bad.write_text("max_auc_drop: 0.1\n")
    with pytest.raises(ConfigError, match="max_auc_drop"):
        load_policy(tmp_path, bad)
