"""`ifd` commands of this area (filled in by its issue)."""

from __future__ import annotations

from ifd.commands.common import AddCommand


def register(add: AddCommand) -> None:
    """Add this area's sub-commands."""
