"""Unknown-generator scores (ifd/eval/unknown): each ranks an off-manifold cluster above known points, the
Mahalanobis score is a scaled Euclidean distance under an identity covariance, kNN scores its own bank
leave-one-out, the kNN bank holds exactly the budgeted calibration set, every index survives a weights-only
round trip (an old centroid-only index too), the served model scores with it, and one training run reports
every score side by side."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_data import write_tiny_batch

from ifd.data.tasks import tasks_from_stream
from ifd.errors import ConfigError, IfdError
from ifd.eval.attribution import AttributionIndex, fit_attribution, score_auc
from ifd.eval.unknown import (
    UNKNOWN_SCORERS,
    UnknownFitData,
    calibrated_scorer,
    fit_scorer,
    report_scorers,
    scorer_from_dict,
)
from ifd.eval.unknown.mahalanobis import MahalanobisScorer

D = 8


def blobs(seed: int = 0, n: int = 60) -> list[torch.Tensor]:
    """Eight separated blobs in 8-D: 0-5 the (task, class) clusters of three known tasks, 6-7 unseen."""
    g = torch.Generator().manual_seed(seed)
    return [c + 0.3 * torch.randn(n, D, generator=g) for c in torch.eye(D) * 3]


def fit_data(feats: list[torch.Tensor]) -> tuple[UnknownFitData, torch.Tensor, torch.Tensor]:
    """Fit data from the first 30 rows of each known cluster; (data, known held-out rows, unseen rows)."""
    known = feats[:6]
    bank = torch.cat([f[:30] for f in known])
    tasks = np.repeat([0, 0, 1, 1, 2, 2], 30)
    labels = np.tile(np.repeat([1, 0], 30), 3)
    means = torch.stack([f[:30].mean(0) for f in known]).reshape(3, 2, D)  # a head per task: logit = z . mean
    heads = (means, torch.zeros(3, 2))
    data = UnknownFitData([f[:30] for f in known], bank, labels, tasks, heads)
    return data, torch.cat([f[30:] for f in known]), torch.cat(feats[6:])


@pytest.mark.parametrize("method", UNKNOWN_SCORERS.names())
def test_every_score_ranks_an_off_manifold_cluster_above_known_points(method: str) -> None:
    data, known, unseen = fit_data(blobs())
    scorer = fit_scorer(method, data)
    s_known, s_unseen = scorer.scores(known), scorer.scores(unseen)
    assert s_known.dtype == np.float64 and s_known.shape == (len(known),)
    assert score_auc(s_known, s_unseen) > 0.95
    # moving a point away from every known cluster raises its score
    assert float(scorer.scores(known[:1] * 0.0 + torch.eye(D)[6:7] * 3)[0]) > float(np.median(s_known))


def test_mahalanobis_is_scaled_euclidean_under_an_identity_covariance() -> None:
    g = torch.Generator().manual_seed(1)
    means, x = torch.randn(4, D, generator=g), torch.randn(50, D, generator=g)
    scale = 2.5
    scorer = MahalanobisScorer.from_moments(means, np.eye(D) * scale, normalize=False)
    expected = (torch.cdist(x, means) ** 2).min(dim=1).values / scale
    assert np.allclose(scorer.scores(x), expected.numpy(), rtol=1e-4, atol=1e-5)
    # Ledoit-Wolf on isotropic clusters shrinks toward (close to) a scaled identity: the same ranking
    centres = torch.eye(D)[:4] * 4
    z = torch.cat([c + torch.randn(400, D, generator=g) for c in centres])
    labels, tasks = np.tile(np.repeat([1, 0], 400), 2), np.repeat([0, 1], 800)
    fitted = MahalanobisScorer.fit(UnknownFitData([], z, labels, tasks), normalize=False)
    euclid = (torch.cdist(x, centres) ** 2).min(dim=1).values.numpy()
    from scipy.stats import spearmanr

    assert spearmanr(fitted.scores(x), euclid).statistic > 0.99


def test_knn_scores_a_bank_image_leave_one_out() -> None:
    data, known, _ = fit_data(blobs())
    scorer, held = calibrated_scorer("knn", data, k=1)
    bank = torch.nn.functional.normalize(data.bank, dim=1)
    dist = 1.0 - bank @ bank.T
    dist.fill_diagonal_(float("inf"))
    nearest_other = dist.min(dim=1).values.numpy()
    assert np.allclose(scorer.scores(data.bank), nearest_other, atol=1e-5)  # not 0: a bank row skips itself
    assert np.array_equal(held, scorer.scores(data.bank)) and held.min() > 1e-4
    near = data.bank[:1] + 1e-2  # a new image close to a bank row is not that row
    assert float(scorer.scores(near)[0]) < float(nearest_other[0])
    index = fit_attribution([data.bank[:30]], [data.bank[30:60]], ["g0"], data.bank, 0.95, scorer=scorer, calibration_scores=held)
    assert index.threshold == pytest.approx(float(np.quantile(nearest_other, 0.95)), abs=1e-5)
    assert (scorer.scores(known) > index.threshold).mean() < 0.2  # the leave-one-out threshold holds out of sample


def twins(seed: int = 3, n: int = 40) -> UnknownFitData:
    """Pairs of near-identical rows (a real and the fake forged from it), each pair one source, in 8-D."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, D, generator=g)
    order = torch.randperm(n, generator=g)  # the fakes in another order than their reals, as a replay store keeps them
    bank = torch.cat([base, base[order] + 1e-3 * torch.randn(n, D, generator=g)])
    groups = np.asarray([f"0:s{i}" for i in range(n)] + [f"0:s{i}" for i in order.tolist()], dtype=object)
    return UnknownFitData([], bank, np.repeat([0, 1], n), np.zeros(2 * n, dtype=np.int64), groups=groups)


def test_knn_held_out_scores_leave_the_whole_source_out() -> None:
    """With only the row itself left out, its twin answers at distance ~0 and the threshold collapses."""
    data = twins()
    alone = UnknownFitData([], data.bank, data.labels, data.tasks)  # no groups: the old, leaky hold-out
    leaky = calibrated_scorer("knn", alone, k=1)[1]
    scorer, held = calibrated_scorer("knn", data, k=1)
    assert leaky.max() < 1e-3 and held.min() > 1e-2
    bank = torch.nn.functional.normalize(data.bank, dim=1)
    dist = 1.0 - bank @ bank.T
    same = torch.as_tensor(np.equal.outer(data.groups.astype(str), data.groups.astype(str)))
    dist[same] = float("inf")
    assert np.allclose(held, dist.min(dim=1).values.numpy(), atol=1e-5)  # nearest row of another source
    fresh = torch.randn(200, D, generator=torch.Generator().manual_seed(9))  # same distribution, unseen sources
    flagged = lambda t: float((scorer.scores(fresh) > np.quantile(t, 0.95)).mean())  # noqa: E731
    assert flagged(held) < 0.2 and flagged(leaky) > 0.9  # about 5% flagged, against nearly all with the leak


def test_a_bank_of_one_source_falls_back_to_leaving_the_row_out() -> None:
    """After a first task with a single val source the bank is one real and its fake: no other source."""
    data = twins(n=1)
    held = calibrated_scorer("knn", data, k=1)[1]
    assert np.isfinite(held).all() and held.max() < 1e-2  # the row-level hold-out, not an infinite distance


def test_mahalanobis_folds_keep_a_source_together() -> None:
    data = twins()
    held = calibrated_scorer("mahalanobis", data)[1]
    leaky = calibrated_scorer("mahalanobis", UnknownFitData([], data.bank, data.labels, data.tasks))[1]
    assert held.mean() > leaky.mean()  # the twin no longer sits in the fitting folds


def test_calibration_groups_pair_a_real_with_its_fake(trained) -> None:
    from ifd.data.image_dataset import ImageCache
    from ifd.train.attribution_fit import calibration_set
    from ifd.train.val_split import with_val

    root, _, state = trained
    tasks = [with_val(t) for t in tasks_from_stream(root)]
    cal = calibration_set(state.model.eval(), tasks, state.store, state.task_roots, 16, ImageCache())
    assert cal.groups is not None and len(cal.groups) == len(cal.y)
    newest = cal.groups[cal.task == len(tasks) - 1]
    val = tasks[-1].split("val")
    assert list(newest) == [f"{len(tasks) - 1}:{s}" for s in val["source_id"]]
    old = [e for e in state.store.entries_for() if e.task < len(tasks) - 1]
    frame = tasks[old[0].task].frame.set_index("path")
    assert cal.groups[0] == f"{old[0].task}:{frame.loc[old[0].path, 'source_id']}"  # replay rows looked up by path


def test_mahalanobis_threshold_is_cross_fitted() -> None:
    """Few samples in many dimensions: in-sample distances are too small, held-out ones are not."""
    g = torch.Generator().manual_seed(2)
    dim, n = 64, 12
    centres = torch.eye(dim)[:4] * 3
    bank = torch.cat([c + torch.randn(n, dim, generator=g) for c in centres])
    fresh = torch.cat([c + torch.randn(200, dim, generator=g) for c in centres])
    data = UnknownFitData([], bank, np.tile(np.repeat([1, 0], n), 2), np.repeat([0, 1], 2 * n))
    scorer, held = calibrated_scorer("mahalanobis", data, normalize=False)
    in_sample = scorer.scores(bank)
    assert held.mean() > 1.2 * in_sample.mean()
    flagged = lambda t: float((scorer.scores(fresh) > np.quantile(t, 0.95)).mean())  # noqa: E731
    assert flagged(held) < 0.1 and flagged(in_sample) > 0.5  # about 5% as promised, against most of them


@pytest.mark.parametrize("method", UNKNOWN_SCORERS.names())
def test_index_round_trip_is_weights_only_loadable(method: str) -> None:
    data, known, unseen = fit_data(blobs())
    scorer = fit_scorer(method, data)
    index = fit_attribution(data.clusters[:3], data.clusters[3:], ["g0", "g1", "g2"], data.bank, 0.95, scorer=scorer, calibration_scores=calibrated_scorer(method, data)[1])
    buf = io.BytesIO()
    torch.save(index.to_dict(), buf)
    buf.seek(0)
    again = AttributionIndex.from_dict(torch.load(buf, weights_only=True))
    assert again.method == index.method and again.threshold == index.threshold
    z = torch.cat([known, unseen])
    assert np.array_equal(again.unknown_scores(z), index.unknown_scores(z))
    assert again.attribute(z)[0] == index.attribute(z)[0]
    assert scorer_from_dict(scorer.to_dict()).nbytes() == scorer.nbytes() > 0


def test_an_index_saved_before_the_scores_were_pluggable_loads_as_the_centroid_score() -> None:
    data, known, _ = fit_data(blobs())
    cents = torch.nn.functional.normalize(torch.stack([f.mean(0) for f in data.clusters]), dim=1)
    old = {"generators": ["g0"], "fake_centroids": cents[:1], "centroids": cents, "threshold": 0.3, "quantile": 0.95}
    index = AttributionIndex.from_dict(old)
    assert index.method == "centroid" and index.threshold == 0.3
    f = torch.nn.functional.normalize(known, dim=1)
    assert np.allclose(index.unknown_scores(known), (1 - f @ cents.T).min(dim=1).values.numpy(), atol=1e-6)
    assert torch.equal(index.to_dict()["centroids"], cents)  # and it saves in the layout an older reader expects


def test_bad_scores_and_settings_fail_clearly() -> None:
    from ifd.continual.config import load_lid_config

    with pytest.raises(ConfigError, match="unknown.method.*known: centroid, energy, knn, mahalanobis"):
        load_lid_config("cpu", {"unknown": {"method": "nearest"}})
    with pytest.raises(ConfigError, match="unknown.k"):
        load_lid_config("cpu", {"unknown": {"k": 0}})
    data, _, _ = fit_data(blobs())
    with pytest.raises(IfdError, match="needs the task heads"):
        fit_scorer("energy", UnknownFitData(data.clusters, data.bank, data.labels, data.tasks))
    with pytest.raises(IfdError, match="at least one calibration sample"):
        fit_scorer("knn", UnknownFitData([], data.bank[:0], data.labels[:0], data.tasks[:0]))
    with pytest.raises(IfdError, match="at least two"):
        fit_scorer("mahalanobis", UnknownFitData([], data.bank[:1], data.labels[:1], data.tasks[:1]))
    assert "energy" not in report_scorers(UnknownFitData(data.clusters, data.bank, data.labels, data.tasks), 10)


def tiny_cfg(**kw: object):
    from ifd.continual.config import LIDConfig

    return LIDConfig(**{"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 8, "step_size": 1,
                        "budget_per_task": 4, "replay_per_class_per_task": 2, "unknown": {"method": "knn", "k": 2}, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """Three tiny tasks learned with the open-set report on: (stream root, run folder, final state)."""
    from ifd.train.loop import train_sequence

    root = tmp_path_factory.mktemp("stream")
    for t in range(3):
        write_tiny_batch(root / f"t{t}", seed=t, n_per_class=12)
    out = tmp_path_factory.mktemp("run")
    state = train_sequence(tasks_from_stream(root), tiny_cfg(), out, resume=False, progress=lambda _: None, open_set=True)
    return root, out, state


def test_the_knn_bank_is_the_budgeted_calibration_set_only(trained) -> None:
    from ifd.data.image_dataset import ImageCache
    from ifd.train.attribution_fit import calibration_set
    from ifd.train.val_split import with_val

    root, _, state = trained
    index = AttributionIndex.from_dict(state.attribution)
    assert index.method == "knn@2"
    tasks = [with_val(t) for t in tasks_from_stream(root)]
    old_replay = [e for e in state.store.entries_for() if e.task < len(tasks) - 1]
    n_val = len(tasks[-1].split("val"))
    bank = index.scorer.bank
    assert len(bank) == len(old_replay) + n_val == 2 * 4 + n_val  # replay of the two old tasks + the newest val
    assert index.scorer.nbytes() == len(bank) * bank.shape[1] * 4
    cal = calibration_set(state.model.eval(), tasks, state.store, state.task_roots, 16, ImageCache())
    assert torch.allclose(bank, torch.nn.functional.normalize(cal.z, dim=1), atol=1e-5)


def test_one_run_reports_every_score_side_by_side(trained) -> None:
    _, _, state = trained
    assert len(state.open_set) == 3 and "unknown_auc" not in state.open_set[-1]  # the last task has no next one
    for rep in state.open_set[:2]:
        labels = {"centroid", "knn@1", "knn@2", "knn@10", "mahalanobis", "energy"}
        for key in ("unknown_auc_by_method", "unknown_auc_val_by_method", "unknown_fake_auc_by_method",
                    "unknown_fake_auc_val_by_method", "unknown_bytes_by_method"):
            assert set(rep[key]) == labels
        assert rep["unknown_method"] == "knn@2"
        assert rep["unknown_auc"] == pytest.approx(rep["unknown_auc_by_method"]["knn@2"])
        assert rep["unknown_auc_val"] == rep["unknown_auc_val_by_method"]["knn@2"]
        assert all(0.0 <= v <= 1.0 for v in rep["unknown_auc_by_method"].values())
        assert rep["unknown_bytes"] == rep["unknown_bytes_by_method"]["knn@2"]


def test_the_served_model_scores_with_the_saved_index(trained, tmp_path: Path) -> None:
    from ifd.inference.scorer import DetectorScorer
    from ifd.train.state import IncrementalState

    root, out, state = trained
    loaded = IncrementalState.load(out / "state.pt")
    scorer = DetectorScorer(loaded, device="cpu")
    assert scorer.index is not None and scorer.index.method == "knn@2"
    images = sorted((root / "t2" / "img").glob("*.png"))[:6]
    scores = scorer.score(images)
    expected = AttributionIndex.from_dict(state.attribution).unknown_scores(torch.as_tensor(scores.embeddings))
    assert np.allclose(scores.unknown_score, expected, atol=1e-6)
    assert np.array_equal(scores.unknown, scores.unknown_score > scorer.index.threshold)
