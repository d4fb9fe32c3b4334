"""Stability of a sample under a patch shuffle (SUR-LID, CVPR 2025, arXiv 2411.11396, §SUR step 4).

The image's 2x2 patch grid is permuted (a random non-identity permutation per image) and the pooled
features of the original and the shuffled image are compared: cosine similarity (paper) or the raw dot
product (official code). A sample whose feature survives the shuffle carries a trace that is spread over
the image rather than tied to its layout: a stable representative of its class.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import permutations
from typing import Literal

import torch
import torch.nn.functional as F

from ifd.errors import IfdError

SHUFFLES: tuple[tuple[int, ...], ...] = tuple(p for p in permutations(range(4)) if p != (0, 1, 2, 3))
"""The 23 non-identity orders of the four quadrants."""


def shuffle_patches(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C, H, W) with each image's four quadrants permuted (H and W even)."""
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise IfdError(f"patch shuffle needs an even image size, got {h}x{w}")
    hh, hw = h // 2, w // 2
    quads = x.reshape(b, c, 2, hh, 2, hw).permute(0, 2, 4, 1, 3, 5).reshape(b, 4, c, hh, hw)
    perms = torch.tensor(SHUFFLES, device=x.device)
    pick = torch.randint(len(perms), (b,), generator=generator).to(x.device)
    order = perms[pick]
    shuffled = quads[torch.arange(b, device=x.device)[:, None], order]
    return shuffled.reshape(b, 2, 2, c, hh, hw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


@torch.no_grad()
def stability_scores(
    features: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    mode: Literal["cosine", "dot"] = "cosine",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B,) stability of each image of `x` under `features` (the backbone's pooled features)."""
    z = features(x).float()
    zs = features(shuffle_patches(x, generator)).float()
    if mode == "cosine":
        return F.cosine_similarity(z, zs, dim=1)
    if mode == "dot":
        return (z * zs).sum(dim=1)
    raise IfdError(f"unknown stability mode {mode!r}; known: cosine, dot")
