"""LID core: task heads, the detector, the losses, distribution re-filling, the config and one training step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from ifd.continual.config import VARIANTS, LIDConfig, load_lid_config, load_preset, variant_config
from ifd.continual.detector import IncrementalDetector
from ifd.continual.lid_step import lid_losses
from ifd.continual.losses import cluster_labels, distillation_loss, supcon_loss
from ifd.continual.refill import distribution_refill
from ifd.errors import ConfigError, IfdError
from ifd.models import create_backbone


def _detector(n_heads: int) -> IncrementalDetector:
    torch.manual_seed(0)
    model = IncrementalDetector(create_backbone("ifd_cnn_tiny"))
    for _ in range(n_heads):
        model.start_task()
    return model


# --- heads and detector ---------------------------------------------------------------------------


def test_heads_are_saved_and_trained_modules() -> None:
    model = _detector(3)
    keys = model.state_dict().keys()
    assert {f"heads.heads.{i}.weight" for i in range(3)} <= set(keys)
    head_params = {id(p) for h in model.heads.heads for p in h.parameters()}
    assert head_params <= {id(p) for p in model.parameters()}


def test_each_sample_trains_only_its_own_head() -> None:
    model = _detector(3)
    z = torch.randn(4, model.num_features)
    F.cross_entropy(model.forward_head(z, torch.tensor([2, 2, 0, 0])), torch.tensor([0, 1, 0, 1])).backward()
    grads = [h.weight.grad.abs().sum().item() for h in model.heads.heads]
    assert grads[0] > 0 and grads[2] > 0 and grads[1] == 0


def test_many_tasks_and_reload_into_a_fresh_detector() -> None:
    model = _detector(6)
    assert model.start_task() == 6 and len(model.heads) == 7
    fresh = _detector(0)
    fresh.load_state_dict(model.state_dict())
    assert len(fresh.heads) == 7
    x = torch.randn(3, 3, 32, 32)
    assert torch.allclose(model.eval()(x), fresh.eval()(x))


def test_mean_of_logits_uses_exactly_the_existing_heads() -> None:
    model = _detector(2).eval()
    x = torch.randn(5, 3, 32, 32)
    z = model.forward_features(x)
    manual = torch.stack([h(z) for h in model.heads.heads]).mean(0)
    assert torch.allclose(model(x), manual, atol=1e-6)
    model.start_task()
    manual3 = torch.stack([h(z) for h in model.heads.heads]).mean(0)
    assert torch.allclose(model(x), manual3, atol=1e-6)
    p = model.predict_proba(x)
    assert torch.allclose(p, F.softmax(manual3, 1)[:, 1], atol=1e-6)


def test_no_head_and_bad_task_id_fail_clearly() -> None:
    with pytest.raises(IfdError, match="no task head"):
        _detector(0)(torch.randn(2, 3, 32, 32))
    model = _detector(2)
    with pytest.raises(IfdError, match="outside the 2 existing heads"):
        model.forward_head(torch.randn(1, model.num_features), torch.tensor([2]))


# --- losses ----------------------------------------------------------------------------------------


def _supcon_reference(f: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    f = F.normalize(f, dim=1)
    terms = []
    for i in range(len(f)):
        others = [a for a in range(len(f)) if a != i]
        pos = [p for p in others if labels[p] == labels[i]]
        if not pos:
            continue
        denom = torch.logsumexp(torch.stack([f[i] @ f[a] / t for a in others]), 0)
        terms.append(-torch.stack([f[i] @ f[p] / t - denom for p in pos]).mean())
    return torch.stack(terms).mean()


def test_supcon_matches_the_definition_and_skips_anchors_without_positives() -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.randn(7, 5, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3])
    assert torch.allclose(supcon_loss(f, labels, 0.2), _supcon_reference(f, labels, 0.2), atol=1e-5)
    assert torch.allclose(
        supcon_loss(f, labels, 0.2, scale_by_temperature=True), 0.2 * supcon_loss(f, labels, 0.2)
    )
    lonely = torch.randn(4, 5, requires_grad=True)
    loss = supcon_loss(lonely, torch.arange(4))
    loss.backward()
    assert loss.item() == 0.0 and lonely.grad is not None


def _nearest_centroid_accuracy(f: torch.Tensor, labels: torch.Tensor) -> float:
    f = F.normalize(f, dim=1)
    cents = F.normalize(torch.stack([f[labels == c].mean(0) for c in labels.unique()]), dim=1)
    return (f @ cents.T).argmax(1).eq(labels).float().mean().item()


def test_supcon_separates_task_class_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    task = torch.arange(2).repeat_interleave(20)
    y = torch.arange(2).repeat(20)
    labels = cluster_labels(task, y)
    emb = torch.randn(40, 8, generator=g).requires_grad_(True)
    before = _nearest_centroid_accuracy(emb.detach(), labels)
    opt = torch.optim.Adam([emb], lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        supcon_loss(emb, labels, 0.1).backward()
        opt.step()
    after = _nearest_centroid_accuracy(emb.detach(), labels)
    assert after == 1.0 and after > before


def test_shared_real_label_merges_reals_only() -> None:
    task, y = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 1, 0, 1, 0])
    assert cluster_labels(task, y).tolist() == [0, 1, 2, 3, 4]
    assert cluster_labels(task, y, shared_real_label=True).tolist() == [0, 1, 0, 3, 0]


def test_distillation_compares_directions_and_spares_the_teacher() -> None:
    teacher = torch.randn(4, 6, requires_grad=True)
    student = (3.0 * teacher.detach()).requires_grad_(True)
    assert distillation_loss(student, teacher).item() < 1e-10
    moved = torch.randn(4, 6, requires_grad=True)
    loss = distillation_loss(moved, teacher)
    loss.backward()
    assert loss.item() > 0 and moved.grad is not None and teacher.grad is None


# --- distribution re-filling -----------------------------------------------------------------------


def test_refill_points_lie_in_the_triangle_with_the_normalised_centroid() -> None:
    g = torch.Generator().manual_seed(0)
    f = F.normalize(torch.randn(3, 5, generator=g), dim=1)
    labels = torch.tensor([3, 3, 5])
    raw_centroid = 100.0 * torch.randn(5, generator=g)
    centroids = {3: raw_centroid, 5: -raw_centroid}
    out = distribution_refill(f, labels, centroids, generator=g, normalize=False)
    c = F.normalize(raw_centroid, dim=0)
    for i, (partner, ci) in enumerate([(1, c), (0, c), (2, -c)]):
        basis = torch.stack([f[i] - ci, f[partner] - ci], dim=1)
        coef = torch.linalg.lstsq(basis, (out[i] - ci).unsqueeze(1)).solution.squeeze(1)
        assert torch.allclose(basis @ coef + ci, out[i], atol=1e-5)
        assert coef.min() >= -1e-5 and coef.sum() <= 1 + 1e-5
    assert out.norm(dim=1).max() <= 1 + 1e-5
    unit = distribution_refill(f, labels, centroids, generator=g)
    assert torch.allclose(unit.norm(dim=1), torch.ones(3), atol=1e-5)


def test_refill_accepts_a_centroid_tensor_and_passes_gradients() -> None:
    f = torch.randn(4, 5, requires_grad=True)
    out = distribution_refill(
        f, torch.tensor([0, 0, 1, 7]), torch.randn(2, 5), torch.Generator().manual_seed(0)
    )
    out.sum().backward()
    assert torch.isfinite(out).all() and f.grad is not None and f.grad.abs().sum() > 0


# --- config ----------------------------------------------------------------------------------------


def test_presets_load_and_differ() -> None:
    paper, official = load_preset("paper"), load_preset("official")
    assert (paper.weight_iso, paper.weight_dis, paper.weight_det) == (1.0, 1.0, 0.1)
    assert (official.weight_det, official.weight_iso, official.weight_dis) == (1.0, 4.0, 10.0)
    assert official.ida_partner == "lowest_cos" and official.ida_newest_gamma > official.ida_previous_gamma
    assert official.magnitude == "dot_ema" and official.stability == "dot"
    assert paper == LIDConfig()


def test_overrides_apply_after_the_preset_and_errors_name_the_problem() -> None:
    cfg = load_lid_config("official", {"weight_iso": 2.0, "epochs": 3})
    assert cfg.weight_iso == 2.0 and cfg.epochs == 3 and cfg.weight_dis == 10.0
    with pytest.raises(IfdError, match="official, paper"):
        load_lid_config("nope", {})
    with pytest.raises(ConfigError, match="not_a_field"):
        load_lid_config(None, {"not_a_field": 1})
    with pytest.raises(ConfigError, match="lr"):
        load_lid_config(None, {"lr": -1.0})


def test_variants() -> None:
    base = LIDConfig(epochs=2)
    assert not variant_config("lid-no-ida", base).use_ida
    assert variant_config("lid-no-iso", base).weight_iso == 0.0
    assert not variant_config("lid-no-dr", base).use_dr
    assert variant_config("lid-no-lsda", base).augmenter_name() == "none"
    assert variant_config("lid-random-replay", base).selector == "random"
    assert variant_config("lid", base) == base
    official = variant_config("lid:official", base)
    assert official.weight_dis == 10.0 and official.epochs == 2
    assert set(VARIANTS) >= {
        "lid",
        "lid-no-ida",
        "lid-no-iso",
        "lid-no-dr",
        "lid-no-lsda",
        "lid-random-replay",
    }
    with pytest.raises(IfdError, match="lid-no-ida"):
        variant_config("lid-no-everything", base)


# --- one training step -----------------------------------------------------------------------------


def _batch(task: int, n_new: int, old_tasks: int, per: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(task)
    ys, tasks = [torch.arange(n_new) % 2], [torch.full((n_new,), task)]
    for t in range(old_tasks):
        ys.append(torch.tensor([0] * per + [1] * per))
        tasks.append(torch.full((2 * per,), t))
    y, t = torch.cat(ys), torch.cat(tasks)
    return {
        "x": torch.randn(len(y), 3, 32, 32, generator=g),
        "y": y,
        "task": t,
        "is_replay": t != task,
    }


def test_lid_losses_on_task_zero() -> None:
    model = _detector(1)
    out = lid_losses(model, None, _batch(0, 8, 0), LIDConfig(), None, torch.Generator().manual_seed(0))
    assert set(out) >= {"loss", "det", "iso", "dis"}
    assert all(torch.isfinite(v) for v in out.values()) and out["dis"].item() == 0.0
    assert not out["det"].requires_grad
    out["loss"].backward()
    assert model.heads.heads[0].weight.grad.abs().sum() > 0
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("through_heads", [False, True])
def test_lid_losses_on_task_two_with_replay_reach_old_heads(through_heads: bool) -> None:
    model = _detector(2)
    teacher = copy.deepcopy(model).eval()
    model.start_task()
    with torch.no_grad():
        model.backbone.stem[0].weight.add_(0.1 * torch.randn_like(model.backbone.stem[0].weight))
    cfg = LIDConfig(lsda_through_heads=through_heads)
    centroids = {c: torch.randn(model.num_features) for c in range(4)}
    out = lid_losses(model, teacher, _batch(2, 8, 2), cfg, centroids, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in out.values())
    assert out["dis"].item() > 0 and out["iso"].item() > 0
    total = cfg.weight_iso * out["iso"] + cfg.weight_dis * out["dis"] + cfg.weight_det * out["det"]
    assert torch.allclose(out["loss"].detach(), total)
    out["loss"].backward()
    assert all(h.weight.grad.abs().sum() > 0 for h in model.heads.heads)
    assert all(p.grad is None for p in teacher.parameters())


def test_lid_losses_with_stored_replay_features_and_no_iso() -> None:
    model = _detector(3)
    batch = _batch(2, 6, 0)
    batch.update(
        replay_features=torch.randn(4, model.num_features),
        replay_y=torch.tensor([0, 1, 0, 1]),
        replay_task=torch.tensor([0, 0, 1, 1]),
    )
    cfg = LIDConfig(weight_iso=0.0)
    out = lid_losses(model, copy.deepcopy(model), batch, cfg, None, torch.Generator().manual_seed(0))
    assert out["iso"].item() == 0.0 and out["dis"].item() == 0.0
    out["loss"].backward()
    assert all(h.weight.grad.abs().sum() > 0 for h in model.heads.heads)
