"""Budgeted calibration (issue 12): Platt scaling and the unknown threshold read only the replay store plus
the newest task's val split; AUC is computed on the raw margin, so calibration never changes it; a batch
without val rows gets an explicit seeded hold-out from train, never a silent fallback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from test_train_data import write_tiny_batch

from ifd.data.tasks import TaskData, tasks_from_stream
from ifd.errors import IfdError


def tiny_cfg(**kw: object):
    from ifd.continual.config import LIDConfig

    return LIDConfig(**{"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 8, "step_size": 1,
                        "budget_per_task": 4, "replay_per_class_per_task": 2, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    from ifd.train.loop import train_sequence

    root = tmp_path_factory.mktemp("stream")
    for t in range(2):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=12)
    lines: list[str] = []
    state = train_sequence(tasks_from_stream(root), tiny_cfg(), tmp_path_factory.mktemp("run"), resume=False,
                           progress=lines.append)
    return root, state, lines


def _poison(path: Path) -> None:
    path.write_bytes(b"not an image: reading this file is a budget leak")


def test_missing_val_split_is_an_explicit_seeded_holdout_from_train(trained) -> None:
    from ifd.train.val_split import with_val

    root, _, lines = trained
    task = tasks_from_stream(root)[0]
    assert not task.has_split("val")
    held = with_val(task)
    again = with_val(task)
    assert held.frame["split"].tolist() == again.frame["split"].tolist()  # seeded: the same every time
    val, train = held.split("val"), held.split("train")
    assert sorted(val["label"].value_counts().tolist()) == [2, 2]  # 20% of the 8 sources of each class
    assert set(val["path"]).isdisjoint(train["path"])  # held-out rows are not trained on
    assert held.split("test")["path"].tolist() == task.split("test")["path"].tolist()  # test untouched
    assert any("no val split" in line and "held out" in line for line in lines)  # said, not silent
    one_source = TaskData(task.name, task.root, task.frame.assign(source_id=task.frame["label"]))
    with pytest.raises(IfdError, match="too few to hold"):
        with_val(one_source)


def test_calibration_and_thresholds_read_only_budgeted_samples(trained, tmp_path: Path) -> None:
    """Every image outside the replay store and the newest task's val split (the old task's val and test, every
    test image, every train image not kept for replay) is made unreadable; calibration and the attribution
    index must still be fitted."""
    from ifd.data.image_dataset import ImageCache
    from ifd.train.attribution_fit import calibrate, calibration_set, fit_index
    from ifd.train.evaluate import predict_task
    from ifd.train.val_split import with_val

    root, state, _ = trained
    copy = tmp_path / "stream"
    shutil.copytree(root, copy)
    tasks = [with_val(t) for t in tasks_from_stream(copy)]
    roots = {t.name: str(t.root) for t in tasks}
    kept = {str(copy / e.task_name / e.path) for e in state.store.entries_for()}
    kept |= {str(copy / "t1" / p) for p in tasks[1].split("val")["path"]}
    for t in tasks:
        for p in t.frame["path"]:
            if str(t.root / p) not in kept:
                _poison(t.root / p)
    model = state.model
    cache = ImageCache()
    cal = calibration_set(model, tasks, state.store, roots, 16, cache)
    assert cal.n_replay == len(state.store.entries_for(task=0)) == 4
    assert cal.n_val == len(tasks[1].split("val"))
    a, b = calibrate(model, cal)
    assert a > 0
    index = fit_index(model, tasks, state.store, roots, state.cfg, cache, cal, state.centroids)
    assert index.generators == ["t0", "t1"] and np.isfinite(index.threshold)
    assert {k[0] for k in cache._items} <= kept
    with pytest.raises(IfdError, match="not a readable image"):  # the poison works: a test read would fail
        predict_task(model, tasks[0], "test", img_size=16, cache=ImageCache())


def test_calibrated_auc_equals_the_raw_auc(trained) -> None:
    from ifd.train.evaluate import predict_task
    from ifd.train.raw_row import raw_score_row

    root, state, _ = trained
    tasks = tasks_from_stream(root)
    model = state.model
    a, b = model.calibration.tolist()
    assert a > 0
    row, scores = raw_score_row(model, tasks, img_size=16)
    assert row.auc == pytest.approx(state.matrix.final_row("auc"))
    for task, auc, s in zip(tasks, row.auc, scores, strict=True):
        y, p, _, _ = predict_task(model, task, "test", img_size=16)
        margin = np.asarray(s["score"])
        calibrated = 1.0 / (1.0 + np.exp(-(a * margin + b)))  # float64: no saturation ties
        assert roc_auc_score(y, calibrated) == pytest.approx(auc, abs=1e-12)
        assert roc_auc_score(y, margin) == pytest.approx(auc, abs=1e-12)
    # a calibration that would invert the ranking does not touch the reported AUC
    model.set_calibration(-3.0, 0.5)
    try:
        inverted, _ = raw_score_row(model, tasks, img_size=16)
    finally:
        model.set_calibration(a, b)
    assert inverted.auc == pytest.approx(row.auc, abs=1e-12)


def test_platt_never_fits_an_inverting_slope() -> None:
    from ifd.continual.calibration import fit_platt

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(50), np.ones(50)]
    margins = np.r_[rng.normal(1, 1, 50), rng.normal(-1, 1, 50)]  # ranked backwards
    assert fit_platt(margins, y) == (1.0, 0.0)
    a, _ = fit_platt(-margins, y)
    assert a > 0
    assert torch.isfinite(torch.tensor(a))
