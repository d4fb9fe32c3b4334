"""Replay selectors by name (registry SELECTORS): one file each, registered on import."""

from ifd.continual.selectors import herding, random, sparse_uniform  # noqa: F401  (register the selectors)
from ifd.continual.selectors.base import SELECTORS, ReplaySelector, build_selector

__all__ = ["SELECTORS", "ReplaySelector", "build_selector"]
