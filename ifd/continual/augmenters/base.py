"""The latent augmenter interface and its registry: (features, cluster labels) -> extra (features, labels)."""

from __future__ import annotations

from typing import Any

import torch

from ifd.registry_utils import Registry


class LatentAugmenter:
    """Maps a batch of per-sample latent vectors to extra, augmented ones with their cluster labels.

    The extras are meant to be appended next to the originals; an augmenter never returns an
    original row unchanged and never edits its input.
    """

    def augment(
        self, f: torch.Tensor, cluster_labels: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


AUGMENTERS: Registry[type[LatentAugmenter]] = Registry("latent augmenter")


def create_augmenter(name: str, **kwargs: Any) -> LatentAugmenter:
    """An augmenter by registry name (unknown name -> error listing the known ones)."""
    return AUGMENTERS.get(name)(**kwargs)
