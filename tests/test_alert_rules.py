"""monitoring/prometheus/alerts.yml: valid for promtool, proven to fire on the right series by promtool's
unit tests (alerts_test.yml), and written over series a real `ifd serve` /metrics really exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from exported_metrics import exported_series, ifd_names, metrics_text

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "monitoring" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)")
# The alerts issue 15 asks for, by what they watch.
REQUIRED = {"IfdDrift", "IfdForgetting", "IfdUnknownGenerator", "IfdShadowDisagreement", "IfdNoChampion", "IfdHighErrorRate"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


@needs_promtool
def test_promtool_checks_the_rules_and_the_scrape_config() -> None:
    rules = _promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0 and "SUCCESS" in rules.stdout, rules.stdout + rules.stderr
    config = _promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_promtool_unit_tests_fire_each_rule_on_its_series() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_would_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: the same tests fail against rules with a changed threshold."""
    (tmp_path / "alerts.yml").write_text(RULES.read_text().replace("> 0.05", "> 0.5"))
    shutil.copy(RULES_DIR / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = subprocess.run([str(PROMTOOL), "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "IfdHighErrorRate" in result.stdout + result.stderr


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_the_required_ones_exist() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    assert REQUIRED <= set(names)
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    from ifd.workspace import Workspace
    from ifd.workspace_init import init_workspace

    ws = init_workspace(Workspace.at(tmp_path_factory.mktemp("metrics") / "ws"))
    return exported_series(metrics_text(ws))


def test_the_monitor_and_the_api_export_what_the_rules_watch(exported: set[str]) -> None:
    for name in ("ifd_monitor_alert", "ifd_task_auc", "ifd_task_auc_registered", "ifd_monitor_last_run_timestamp_seconds",
                 "ifd_score_psi", "ifd_shadow_agreement", "ifd_requests_total", "ifd_request_seconds_bucket", "ifd_p_fake_bucket"):
        assert name in exported, name


def test_every_series_in_the_rules_and_their_tests_is_exported(exported: set[str]) -> None:
    used: dict[str, set[str]] = {}
    for rule in _rules():
        text = rule["expr"] + " " + " ".join(rule["annotations"].values())
        used[rule["alert"]] = ifd_names(text)
    assert {alert for alert, names in used.items() if not names} == {"IfdScrapeDown"}  # that one watches `up`
    missing = {alert: names - exported for alert, names in used.items() if names - exported}
    assert not missing, f"series not exported by ifd serve: {missing}"
    tests = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text())
    series = {ifd_names(s["series"].split("{")[0]).pop() for t in tests["tests"] for s in t["input_series"] if s["series"].startswith("ifd_")}
    assert series <= exported, series - exported


def test_the_monitor_verdict_kinds_in_the_rules_are_the_monitor_s() -> None:
    import re

    from ifd.monitoring.alerts import ALERT_KINDS

    kinds = set()
    for rule in _rules():
        for match in re.findall(r'ifd_monitor_alert\{kind=~?"([^"]+)"\}', rule["expr"]):
            kinds.update(match.split("|"))
    assert kinds == set(ALERT_KINDS)
