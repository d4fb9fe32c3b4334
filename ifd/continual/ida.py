"""Incremental Decision Alignment (IDA; SUR-LID, CVPR 2025, arXiv 2411.11396).

After an optimiser step, each task head's weight rows (one per class) are rotated a little toward
the same rows of a partner head, keeping every row's norm:
    w <- ||w|| * normalize((1 - g) * w / ||w|| + g * w_p / ||w_p||).
All heads move from the weights as they were before the call; biases are left alone.

Partners and gammas (METHOD.md §2):
- "paper" (the paper, theta^t <- theta^(t-1)): only the newest head moves, toward the previous head,
  with g = `newest_gamma` (the paper's 0.001); every older head stays exactly as it is.
- "lowest_cos" (the official code's schedule, the `official` and `cpu` presets): each head's partner is
  the other head whose flattened weight has the lowest cosine similarity to its own; g = `newest_gamma`
  for the newest head, `previous_gamma` for the one before, `older_gamma` for all older ones (official:
  0.01, 0.001, 0.0001).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ifd.continual.heads import TaskHeads
from ifd.errors import IfdError

Partner = Literal["lowest_cos", "paper"]


def head_cosines(weights: torch.Tensor) -> torch.Tensor:
    """(T, T) cosine similarity between flattened head weights (T, C, D)."""
    flat = F.normalize(weights.flatten(1), dim=1)
    return flat @ flat.T


def choose_partners(weights: torch.Tensor, partner: Partner) -> list[int]:
    """Partner head index of each head (needs at least two heads)."""
    t = weights.shape[0]
    cos = head_cosines(weights)
    cos.fill_diagonal_(float("inf"))
    lowest = cos.argmin(dim=1).tolist()
    if partner == "lowest_cos":
        return lowest
    if partner == "paper":
        return [t - 2 if i == t - 1 else i for i in range(t)]  # only the newest has a partner; others: itself
    raise IfdError(f"unknown IDA partner rule {partner!r}; known: lowest_cos, paper")


def head_gammas(
    t: int, newest_gamma: float, previous_gamma: float, older_gamma: float, partner: Partner = "lowest_cos"
) -> list[float]:
    """g per head: newest, previous, then older for all the rest; the paper's rule moves the newest only."""
    if partner == "paper":
        return [newest_gamma if i == t - 1 else 0.0 for i in range(t)]
    return [newest_gamma if i == t - 1 else previous_gamma if i == t - 2 else older_gamma for i in range(t)]


def rotate_rows(w: torch.Tensor, target: torch.Tensor, gamma: float, eps: float = 1e-12) -> torch.Tensor:
    """Rows of `w` moved by `gamma` toward the directions of the rows of `target`, row norms kept."""
    norm = w.norm(dim=-1, keepdim=True)
    mixed = (1 - gamma) * w / norm.clamp_min(eps) + gamma * F.normalize(target, dim=-1, eps=eps)
    return norm * F.normalize(mixed, dim=-1, eps=eps)


@torch.no_grad()
def align_heads(
    heads: TaskHeads,
    newest_gamma: float = 0.001,
    previous_gamma: float = 0.001,
    older_gamma: float = 0.001,
    partner: Partner = "paper",
) -> None:
    """Apply one IDA step to every head of `heads`, in place (no-op with fewer than two heads)."""
    t = len(heads)
    if t < 2:
        return
    weights = torch.stack([h.weight.detach() for h in heads.heads])
    partners = choose_partners(weights, partner)
    gammas = head_gammas(t, newest_gamma, previous_gamma, older_gamma, partner)
    for i, head in enumerate(heads.heads):
        if gammas[i] > 0:
            head.weight.copy_(rotate_rows(weights[i], weights[partners[i]], gammas[i]))
