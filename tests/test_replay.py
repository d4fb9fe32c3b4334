"""Sparse uniform replay, the other selectors, patch-shuffle stability and the replay store."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from ifd.continual.build_replay import class_budgets, select_replay
from ifd.continual.replay_store import ReplayEntry, ReplayStore
from ifd.continual.selectors import SELECTORS, build_selector
from ifd.continual.selectors.sparse_uniform import SparseUniformSelector, magnitudes
from ifd.continual.stability import shuffle_patches, stability_scores
from ifd.errors import UnknownNameError


def toy_class(n: int = 400, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An anisotropic Gaussian blob with a heavy tail, and random stability scores."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(0.2, 2.0, d)
    z = torch.randn(n, d, generator=g) * scale
    z[: n // 10] *= 3.0
    return z + 5.0, torch.rand(n, generator=g)


def mmd(a: torch.Tensor, b: torch.Tensor, sigma: float = 0.5) -> float:
    """Biased RBF-kernel MMD^2 between two sets of normalised rows."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)

    def k(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(x, y) ** 2 / (2 * sigma**2)).mean()

    return float(k(a, a) + k(b, b) - 2 * k(a, b))


@pytest.mark.parametrize("name", SELECTORS.names())
@pytest.mark.parametrize("budget", [1, 7, 50, 400, 1000])
def test_every_selector_returns_exactly_the_budget_of_distinct_rows(name: str, budget: int) -> None:
    z, s = toy_class()
    picked = SELECTORS.get(name)().select(z, s, budget, torch.Generator().manual_seed(0))
    assert picked.dtype == torch.long
    assert len(picked) == min(budget, len(z))
    assert len(set(picked.tolist())) == len(picked)
    assert 0 <= int(picked.min()) and int(picked.max()) < len(z)


def test_sur_takes_two_samples_from_every_magnitude_interval() -> None:
    z, s = toy_class()
    sel = SparseUniformSelector()
    picked = set(sel.select(z, s, 40).tolist())
    intervals = sel.intervals(z, 40)
    assert len(intervals) == 20
    for chunk in intervals:
        inside = picked & set(chunk.tolist())
        assert len(inside) == 2
        stable = int(chunk[torch.argmax(s[chunk])])
        assert stable in inside  # the most stable sample of the interval is kept


def test_sur_partner_is_the_least_similar_sample_of_its_interval() -> None:
    z, s = toy_class(seed=3)
    sel = SparseUniformSelector()
    picked = sel.select(z, s, 10)
    f = F.normalize(z, dim=1)
    stable, partners = picked[:5], picked[5:]
    for st, pa, chunk in zip(stable.tolist(), partners.tolist(), sel.intervals(z, 10), strict=True):
        others = [i for i in chunk.tolist() if i != st]
        cos = {i: float(f[i] @ f[st]) for i in others}
        assert pa == min(cos, key=cos.get)


def test_sur_subset_is_closer_to_the_full_set_than_random_subsets() -> None:
    z, s = toy_class(n=600)
    full = F.normalize(z, dim=1)
    sur = mmd(full[SparseUniformSelector().select(z, s, 30)], full)
    randoms = [
        mmd(full[SELECTORS.get("random")().select(z, s, 30, torch.Generator().manual_seed(k))], full) for k in range(20)
    ]
    assert sur < sum(randoms) / len(randoms)


def test_dot_ema_magnitude_differs_from_distance_and_follows_the_official_rule() -> None:
    z, _ = toy_class(n=50)
    f = F.normalize(z, dim=1)
    c = f[0].clone()
    for row in f[1:]:
        c = 0.9 * c + 0.1 * row
    torch.testing.assert_close(magnitudes(f, "dot_ema", 0.1), f @ c)
    assert not torch.equal(torch.argsort(magnitudes(f, "distance")), torch.argsort(magnitudes(f, "dot_ema")))


def test_budget_is_split_over_classes_and_indices_point_into_each_class() -> None:
    z, s = toy_class(n=100)
    labels = torch.tensor([0] * 60 + [1] * 40)
    chosen = select_replay(z, s, labels, 21, SparseUniformSelector())
    assert class_budgets(21) == [11, 10]
    assert len(chosen[0]) == 11 and len(chosen[1]) == 10
    assert (labels[chosen[0]] == 0).all() and (labels[chosen[1]] == 1).all()


def test_build_selector_by_config_name_and_unknown_names_list_the_known() -> None:
    cfg = SimpleNamespace(selector="sparse_uniform", magnitude="dot_ema", ema_alpha=0.2)
    sel = build_selector(cfg)
    assert isinstance(sel, SparseUniformSelector) and sel.magnitude == "dot_ema" and sel.ema_alpha == 0.2
    with pytest.raises(UnknownNameError, match="herding"):
        build_selector(SimpleNamespace(selector="nope"))


def test_patch_shuffle_permutes_the_four_quadrants_and_never_keeps_the_order() -> None:
    x = torch.arange(4.0).repeat_interleave(1).view(1, 1, 2, 2).repeat(64, 3, 1, 1)
    x = x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)  # (64, 3, 8, 8), quadrant values 0..3
    out = shuffle_patches(x, torch.Generator().manual_seed(0))
    quads = out[:, 0, ::4, ::4].reshape(64, 4)
    assert all(sorted(q.tolist()) == [0, 1, 2, 3] for q in quads)
    assert not (quads == torch.tensor([0.0, 1, 2, 3])).all(dim=1).any()


def test_stability_is_one_for_a_layout_blind_feature_and_lower_for_a_layout_aware_one() -> None:
    x = torch.randn(8, 3, 16, 16)
    blind = stability_scores(lambda t: t.mean(dim=(2, 3)) + 1.0, x)
    torch.testing.assert_close(blind, torch.ones(8))
    aware = stability_scores(lambda t: t.flatten(1), x, generator=torch.Generator().manual_seed(1))
    assert (aware < 0.9).all()


def entries(task: int, name: str, n: int = 4) -> list[ReplayEntry]:
    return [ReplayEntry(task, name, "/data/b", f"img/{i}.png", i % 2, torch.randn(5), 0.1 * i) for i in range(n)]


def test_store_state_dict_round_trip_and_weights_only_load(tmp_path) -> None:
    store = ReplayStore()
    store.add_task(0, "a", entries(0, "a"))
    store.add_task(1, "b", entries(1, "b", 6))
    torch.save(store.state_dict(), tmp_path / "s.pt")
    again = ReplayStore()
    again.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert again.tasks() == [0, 1] and len(again) == 10
    assert [e.path for e in again.entries_for(task=1)] == [e.path for e in store.entries_for(task=1)]
    torch.testing.assert_close(again.entries_for(label=1)[0].feature, store.entries_for(label=1)[0].feature)
    assert again.nbytes() == store.nbytes() > 0


def test_features_only_store_keeps_no_reference_to_an_image() -> None:
    store = ReplayStore(features_only=True)
    store.add_task(0, "a", entries(0, "a"))
    assert all(e.path == "" and e.batch == "" for e in store.entries_for())
    assert all(e.feature.shape == (5,) for e in store.entries_for())
    assert all(row["path"] == "" for row in store.manifest())
