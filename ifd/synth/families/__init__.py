"""Generator families of the synthetic stream, one file each, registered by file name in FAMILIES."""

from __future__ import annotations

import numpy as np

from ifd.synth.families import (  # noqa: F401  (each module registers its family)
    autoencoder,
    blend,
    checkerboard,
    colour_cast,
    diffusion,
    fingerprint,
    gain_field,
    haze,
    warp,
)
from ifd.synth.families.base import FAMILIES, Family

# the stream's default order: neighbours differ in the kind of trace (upsampling, blur, splice, spectrum, ...)
DEFAULT_ORDER: tuple[str, ...] = ("checkerboard", "autoencoder", "blend", "fingerprint", "diffusion", "warp")
# families whose trace is weak and low-frequency (a smooth gain, a drifting colour cast, a thin veil)
LOW_FREQUENCY: tuple[str, ...] = ("gain_field", "colour_cast", "haze")
FAMILY_SETS: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_ORDER,
    "lowfreq": LOW_FREQUENCY,
    "widened": DEFAULT_ORDER + LOW_FREQUENCY,
}
"""Named family lists for `ifd synth --families NAME`; `widened` is the default six, then the low-frequency three."""


def expand_families(names: list[str] | tuple[str, ...]) -> list[str]:
    """Family names in order, each set name (`default`, `lowfreq`, `widened`) replaced by its families;
    an unknown name fails with the known families and sets."""
    from ifd.errors import UnknownNameError

    out: list[str] = []
    for name in names:
        if name in FAMILY_SETS:
            out.extend(FAMILY_SETS[name])
        elif name in FAMILIES:
            out.append(name)
        else:
            raise UnknownNameError("generator family", name, [*FAMILIES.names(), *(f"{k} (set)" for k in FAMILY_SETS)])
    return out


def create_family(name: str, variant: int, rng: np.random.Generator) -> Family:
    """The family registered as `name`, with the parameters of its `variant`; unknown names list the known."""
    return FAMILIES.get(name)(variant, rng)


__all__ = ["DEFAULT_ORDER", "FAMILIES", "FAMILY_SETS", "LOW_FREQUENCY", "Family", "create_family", "expand_families"]
