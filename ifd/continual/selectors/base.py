"""The replay-selector interface and its registry (one file per selector, registry key = file name).

A selector ranks the samples of one (task, class): given their pooled features and stability scores it
returns indices in priority order, at most `budget` of them. Keeping a prefix of the answer keeps the
most important samples; the replay store and the loop never look inside a selector.
"""

from __future__ import annotations

from typing import Any

import torch

from ifd.registry_utils import Registry


class ReplaySelector:
    """Ranks the samples of one class for replay."""

    def select(
        self, features: torch.Tensor, stability: torch.Tensor, budget: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """LongTensor of at most `budget` distinct row indices of `features` (N, D), most important first."""
        raise NotImplementedError


SELECTORS: Registry[type[ReplaySelector]] = Registry("replay selector")


def build_selector(cfg: Any) -> ReplaySelector:
    """The selector named by `cfg.selector`, built from the config's SUR settings."""
    import ifd.continual.selectors  # noqa: F401  (registers every selector)

    cls = SELECTORS.get(cfg.selector)
    return cls.from_config(cfg) if hasattr(cls, "from_config") else cls()
