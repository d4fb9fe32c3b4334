"""Incremental Decision Alignment: rotates head rows toward a partner head, keeping each row's norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ifd.continual.heads import TaskHeads
from ifd.continual.ida import align_heads, choose_partners, head_cosines


def _heads(n: int, seed: int = 0, dim: int = 16) -> TaskHeads:
    torch.manual_seed(seed)
    heads = TaskHeads(dim)
    for _ in range(n):
        heads.add_head()
    return heads


def _weights(heads: TaskHeads) -> torch.Tensor:
    return torch.stack([h.weight.detach().clone() for h in heads.heads])


def test_keeps_row_norms_and_biases() -> None:
    heads = _heads(4)
    w0 = _weights(heads)
    b0 = torch.stack([h.bias.detach().clone() for h in heads.heads])
    align_heads(heads, 0.05, 0.02, 0.01, partner="lowest_cos")
    w1 = _weights(heads)
    assert not torch.allclose(w0, w1)
    assert torch.allclose(w0.norm(dim=-1), w1.norm(dim=-1), atol=1e-6)
    assert torch.equal(b0, torch.stack([h.bias.detach() for h in heads.heads]))


def test_raises_cosine_to_the_partner() -> None:
    for partner in ("lowest_cos", "paper"):
        heads = _heads(4, seed=1)
        w0 = _weights(heads)
        partners = choose_partners(w0, partner)
        align_heads(heads, 0.05, 0.05, 0.05, partner=partner)
        w1 = _weights(heads)
        for i, p in enumerate(partners):
            if p == i:  # the paper's rule: old heads have no partner
                continue
            before = F.cosine_similarity(w0[i], w0[p], dim=-1)
            after = F.cosine_similarity(w1[i], w0[p], dim=-1)
            assert (after > before).all()
        assert head_cosines(w1).triu(1).sum() > head_cosines(w0).triu(1).sum()


def test_partner_rules() -> None:
    heads = _heads(4, seed=2)
    w = _weights(heads)
    cos = head_cosines(w).fill_diagonal_(float("inf"))
    assert choose_partners(w, "lowest_cos") == cos.argmin(1).tolist()
    assert choose_partners(w, "paper") == [0, 1, 2, 2]  # the newest toward the previous; the rest: no partner


def test_paper_rule_moves_only_the_newest_head_toward_the_previous() -> None:
    """The paper (theta^t <- theta^(t-1), g = 0.001): every old head stays bit for bit, the newest moves by g."""
    for n in (2, 3, 5):
        heads = _heads(n, seed=5 + n)
        w0 = _weights(heads)
        for _ in range(3):
            align_heads(heads, 0.001, 0.05, 0.05, partner="paper")  # previous/older gammas are ignored
        w1 = _weights(heads)
        assert torch.equal(w1[:-1], w0[:-1])
        assert not torch.equal(w1[-1], w0[-1])
        before = F.cosine_similarity(w0[-1], w0[-2], dim=-1)
        after = F.cosine_similarity(w1[-1], w0[-2], dim=-1)
        assert (after > before).all()
        assert torch.allclose(w1[-1].norm(dim=-1), w0[-1].norm(dim=-1), atol=1e-6)
        # one step of g = 0.001 is the formula of METHOD.md §2 exactly
        heads = _heads(n, seed=5 + n)
        align_heads(heads, 0.001, partner="paper")
        u, p = F.normalize(w0[-1], dim=-1), F.normalize(w0[-2], dim=-1)
        expected = w0[-1].norm(dim=-1, keepdim=True) * F.normalize(0.999 * u + 0.001 * p, dim=-1)
        assert torch.allclose(_weights(heads)[-1], expected, atol=1e-6)


def test_newest_head_moves_most_under_official_gammas() -> None:
    heads = _heads(4, seed=3)
    w0 = _weights(heads)
    align_heads(heads, 0.01, 0.001, 0.0001, partner="lowest_cos")
    w1 = _weights(heads)
    moved = (1 - F.cosine_similarity(w0, w1, dim=-1)).mean(dim=1)
    assert moved[3] > moved[2] > moved[1] and moved[3] > moved[0]


def test_full_step_points_rows_at_the_partner() -> None:
    heads = _heads(2, seed=4)
    w0 = _weights(heads)
    align_heads(heads, 1.0, 1.0, 1.0, partner="lowest_cos")
    w1 = _weights(heads)
    assert torch.allclose(F.normalize(w1[0], dim=-1), F.normalize(w0[1], dim=-1), atol=1e-6)
    assert torch.allclose(F.normalize(w1[1], dim=-1), F.normalize(w0[0], dim=-1), atol=1e-6)


def test_single_head_and_zero_gamma_are_no_ops() -> None:
    heads = _heads(1)
    w0 = _weights(heads)
    align_heads(heads, 0.5, 0.5, 0.5)
    assert torch.equal(w0, _weights(heads))
    heads = _heads(3)
    params = [h.weight for h in heads.heads]
    w0 = _weights(heads)
    align_heads(heads, 0.0, 0.0, 0.0, partner="lowest_cos")
    assert torch.equal(w0, _weights(heads))
    assert all(a is b for a, b in zip(params, [h.weight for h in heads.heads], strict=True))
