"""Generator families of the synthetic stream, one file each, registered by file name in FAMILIES."""

from __future__ import annotations

import numpy as np

from ifd.synth.families import autoencoder, blend, checkerboard, diffusion, fingerprint, warp  # noqa: F401
from ifd.synth.families.base import FAMILIES, Family

# the stream's default order: neighbours differ in the kind of trace (upsampling, blur, splice, spectrum, ...)
DEFAULT_ORDER: tuple[str, ...] = ("checkerboard", "autoencoder", "blend", "fingerprint", "diffusion", "warp")


def create_family(name: str, variant: int, rng: np.random.Generator) -> Family:
    """The family registered as `name`, with the parameters of its `variant`; unknown names list the known."""
    return FAMILIES.get(name)(variant, rng)


__all__ = ["DEFAULT_ORDER", "FAMILIES", "Family", "create_family"]
