"""Drift statistics, the monitor's checks, its policy and its prediction log, on generated numbers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ifd.errors import ConfigError, IfdError
from ifd.monitoring.alerts import Alert, log_alert, write_gauges
from ifd.monitoring.checks import check_drift, check_forgetting, check_unknown, shadow_report
from ifd.monitoring.drift import ks, mmd_test, psi
from ifd.monitoring.prediction_log import PredictionLog
from monitoring.policy import load_policy

RNG = np.random.default_rng(0)
POLICY = load_policy()


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    a = RNG.beta(2, 5, 2000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-9)
    assert psi(a, RNG.beta(2, 5, 2000)) < 0.05
    assert psi(a, RNG.beta(5, 2, 2000)) > 1.0


def test_ks_and_mmd_separate_shifted_samples_but_not_equal_ones() -> None:
    x = RNG.normal(size=(150, 8))
    same = RNG.normal(size=(150, 8))
    shifted = RNG.normal(size=(150, 8)) + np.r_[0.8, np.zeros(7)]
    assert mmd_test(x, same, n_permutations=100)[1] > 0.05
    assert mmd_test(x, shifted, n_permutations=100)[1] < 0.02
    assert ks(x[:, 0], same[:, 0])[1] > 0.01 and ks(x[:, 0], shifted[:, 0])[1] < 1e-4


def test_drift_check_alerts_on_a_score_shift_and_stays_quiet_otherwise() -> None:
    ref_p, ref_z = RNG.beta(2, 5, 400), RNG.normal(size=(400, 6))
    values, alerts = check_drift(ref_p, ref_z, RNG.beta(2, 5, 300), RNG.normal(size=(300, 6)), POLICY, "3")
    assert alerts == [] and values["ks_pvalue"] > POLICY.drift.ks_pvalue_alert
    _, alerts = check_drift(ref_p, ref_z, RNG.beta(5, 2, 300), RNG.normal(size=(300, 6)) + 1.0, POLICY, "3")
    assert {a.kind for a in alerts} == {"score_drift", "embedding_drift"}
    values, alerts = check_drift(ref_p, ref_z, RNG.beta(5, 2, 10), RNG.normal(size=(10, 6)), POLICY, "3")
    assert alerts == [] and "not judged" in values["drift"]


def window_and_reference(n: int, flag_rate: float, score_shift: float = 0.0, real_shift: float = 0.0):
    from ifd.monitoring.prediction_log import Window
    from ifd.monitoring.reference import Reference

    p = np.r_[RNG.uniform(0, 0.4, n // 2), RNG.uniform(0.6, 1, n - n // 2)]
    z = RNG.normal(size=(n, 6))
    z[: n // 2, 0] += real_shift  # moves only the images scored real
    win = Window([f"r{i}" for i in range(n)], np.zeros(n, int), ["1"] * n, p, [], [], RNG.random(n) < flag_rate,
                 RNG.normal(size=n) + score_shift, z)
    ref_p = np.r_[RNG.uniform(0, 0.4, 150), RNG.uniform(0.6, 1, 150)]
    return win, Reference("1", ref_p, RNG.normal(size=(300, 6)), 0.05, RNG.normal(size=300))


def test_unknown_check_fires_on_each_of_its_three_signs_and_not_on_known_traffic() -> None:
    assert check_unknown(*window_and_reference(400, 0.05), POLICY, "1")[1] == []
    _, alerts = check_unknown(*window_and_reference(400, 0.4), POLICY, "1")
    assert [a.kind for a in alerts] == ["unknown_generator"] and "beyond every known cluster" in alerts[0].message
    assert "ingest" in alerts[0].action
    _, alerts = check_unknown(*window_and_reference(400, 0.05, score_shift=0.5), POLICY, "1")
    assert alerts and "further from every known cluster" in alerts[0].message
    _, alerts = check_unknown(*window_and_reference(400, 0.05, real_shift=1.5), POLICY, "1")
    assert alerts and "images scored real no longer look like" in alerts[0].message
    assert check_unknown(*window_and_reference(400, 0.05, score_shift=-0.5), POLICY, "1")[1] == []  # closer is not unknown
    assert check_unknown(*window_and_reference(10, 1.0), POLICY, "1")[1] == []  # too few to judge


def test_forgetting_check_names_the_task_that_fell() -> None:
    values, alerts = check_forgetting({"a": 0.97, "b": 0.90}, {"a": 0.98, "b": 0.95}, POLICY, "2")
    assert [a.details["task"] for a in alerts] == ["b"]
    assert values["ifd_forgetting_max_drop"] == pytest.approx(0.05)


def test_shadow_report_agreement_and_feedback_auc() -> None:
    pairs = [(0.9, 0.8, "fake"), (0.1, 0.6, "real"), (0.7, 0.9, None), (0.2, 0.1, "real")]
    rep = shadow_report(pairs, 0.5)
    assert rep["ifd_shadow_agreement"] == pytest.approx(0.75)
    assert rep["feedback_labels"] == 3 and rep["champion_auc"] == 1.0 and rep["challenger_auc"] == 1.0


def test_policy_defaults_overrides_and_errors(tmp_path: Path) -> None:
    assert POLICY.forgetting.max_drop == 0.02 and POLICY.alerts.webhook_url is None
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "policy.yaml").write_text("drift:\n  psi_alert: 0.5\n")
    pol = load_policy(tmp_path)
    assert pol.drift.psi_alert == 0.5 and pol.drift.min_samples == POLICY.drift.min_samples
    (tmp_path / "monitoring" / "policy.yaml").write_text("drift:\n  psi_alrt: 0.5\n")
    with pytest.raises(ConfigError, match="psi_alrt"):
        load_policy(tmp_path)


def test_alerts_are_logged_as_json_and_gauges_written(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alert = Alert("forgetting", "task fell", 0.05, 0.02, "4", "roll back")
    with caplog.at_level(logging.WARNING, logger="ifd.alerts"):
        line = log_alert(alert)
    assert json.loads(line)["alert"] == "forgetting" and line in caplog.text
    text = write_gauges(tmp_path / "g.prom", {"ifd_unknown_share": 0.4}, {"version": "4"}).read_text()
    assert 'ifd_unknown_share{version="4"} 0.4' in text


def test_prediction_log_window_pairs_and_feedback(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db")
    rows = [{"p_fake": 0.9, "label": "fake", "generator": "g", "unknown": False, "unknown_score": 0.1},
            {"p_fake": 0.2, "label": "real", "generator": None, "unknown": True, "unknown_score": 0.5}]
    emb = RNG.normal(size=(2, 4)).astype(np.float32)
    log.record("r1", "champion", "3", rows, emb)
    log.record("r1", "shadow", "4", [dict(r, p_fake=0.7) for r in rows], emb)
    win = log.window("champion")
    assert len(win) == 2 and win.versions == ["3", "3"] and win.unknown.tolist() == [False, True]
    assert win.unknown_scores.tolist() == [0.1, 0.5]
    np.testing.assert_allclose(win.embeddings, emb, atol=1e-2)
    log.add_feedback("r1", 0, "fake")
    assert log.paired() == [(0.9, 0.7, "fake"), (0.2, 0.7, None)]
    with pytest.raises(IfdError, match="no prediction"):
        log.add_feedback("nope", 0, "fake")
