"""Retention metrics on hand-computed matrices, scores, the result matrix type and attribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ifd.errors import IfdError
from ifd.eval.attribution import attribution_accuracy, fit_attribution, unknown_auc
from ifd.eval.matrix import ResultMatrix
from ifd.eval.report import retention_summary, write_plots
from ifd.eval.retention import average_accuracy, average_forgetting, backward_transfer, chaudhry_forgetting
from ifd.eval.scoring import frame_scores, video_scores

# a[t][i]: task 0 learned to 0.9, peaks at 0.95 after task 1, ends at 0.7; task 1 0.8 -> 0.6.
ROWS = [[0.9], [0.95, 0.8], [0.7, 0.6, 0.99]]


def test_metrics_on_a_hand_computed_3x3_matrix() -> None:
    assert average_accuracy(ROWS) == pytest.approx((0.7 + 0.6 + 0.99) / 3)
    assert average_accuracy(ROWS, 1) == pytest.approx(0.875)
    assert average_forgetting(ROWS) == pytest.approx(((0.9 - 0.7) + (0.8 - 0.6)) / 2)
    assert chaudhry_forgetting(ROWS) == pytest.approx(((0.95 - 0.7) + (0.8 - 0.6)) / 2)
    assert backward_transfer(ROWS) == pytest.approx(-0.2)
    assert average_forgetting([[0.8]]) == 0.0 and chaudhry_forgetting([[0.8]]) == 0.0


def test_matrix_rows_must_cover_every_seen_task_and_round_trip() -> None:
    m = ResultMatrix()
    m.add_row("a", [0.9], [0.8])
    with pytest.raises(IfdError, match="needs 2"):
        m.add_row("b", [0.9], [0.8])
    m.add_row("b", [0.85, 0.7], [0.8, 0.6])
    assert ResultMatrix.from_dict(m.to_dict()) == m
    s = retention_summary(m)
    assert s["final_auc"] == {"a": 0.85, "b": 0.7}
    assert s["AF"] == pytest.approx(0.05) and s["aa_curve"] == pytest.approx([0.9, 0.775])


def test_frame_and_video_scores() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.7, 0.4, 0.9, 0.2])
    auc, acc = frame_scores(y, p)
    assert acc == pytest.approx(4 / 6) and auc == pytest.approx(8 / 9)
    vids = ["r/a", "r/a", "f/b", "f/b", "f/c", "r/d"]  # per video: 0.35, 0.55, 0.9, 0.2
    vauc, vacc, n = video_scores(y, p, vids)
    assert n == 4 and vauc == 1.0 and vacc == 1.0
    assert math.isnan(frame_scores(np.ones(3), np.ones(3))[0])


def test_plots_are_written(tmp_path) -> None:
    m = ResultMatrix()
    for t, row in enumerate(ROWS):
        m.add_row(f"t{t}", row, row)
    paths = write_plots(m, tmp_path)
    for p in paths.values():
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def clusters(seed: int = 0) -> list[torch.Tensor]:
    """Eight well separated blobs: 0-2 fakes of known generators, 3-5 their reals, 6-7 an unseen generator."""
    g = torch.Generator().manual_seed(seed)
    return [c + 0.3 * torch.randn(60, 8, generator=g) for c in torch.eye(8) * 3]


def test_attribution_names_the_nearest_generator_and_flags_an_unseen_one() -> None:
    feats = clusters()
    fakes, reals = feats[:3], feats[3:6]
    val = torch.cat([f[30:40] for f in fakes + reals])
    index = fit_attribution([f[:30] for f in fakes], [r[:30] for r in reals], ["g0", "g1", "g2"], val, 0.95)
    test_fakes = torch.cat([f[40:] for f in fakes])
    truth = ["g0"] * 20 + ["g1"] * 20 + ["g2"] * 20
    assert attribution_accuracy(index, test_fakes, truth) > 0.95
    known = torch.cat([test_fakes, *[r[40:] for r in reals]])
    unseen = torch.cat(feats[6:])
    assert unknown_auc(index, known, unseen) > 0.95
    assert index.attribute(unseen)[2].mean() > 0.9
    assert index.attribute(known)[2].mean() < 0.2
    again = type(index).from_dict(index.to_dict())
    assert again.attribute(test_fakes)[0] == index.attribute(test_fakes)[0]


def test_platt_calibration_makes_the_threshold_meaningful_and_keeps_the_ranking() -> None:
    from ifd.continual.calibration import calibrated_p_fake, fit_platt

    g = np.random.default_rng(0)
    y = np.r_[np.zeros(200), np.ones(200)].astype(int)
    margins = np.r_[g.normal(-6, 1, 200), g.normal(-3, 1, 200)]  # fakes score higher, yet all below 0
    raw = 1 / (1 + np.exp(-margins))
    assert np.mean((raw >= 0.5) == y) == pytest.approx(0.5, abs=0.02)
    a, b = fit_platt(margins, y)
    logits = torch.tensor(np.c_[np.zeros(400), margins], dtype=torch.float32)
    p = calibrated_p_fake(logits, torch.tensor([a, b])).numpy()
    assert np.mean((p >= 0.5) == y) > 0.9
    assert frame_scores(y, p)[0] == pytest.approx(frame_scores(y, raw)[0])
