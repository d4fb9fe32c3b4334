"""A child process's progress as bars of this one: `ifd bench` runs each (strategy, seed) in a worker
process whose plain progress lines (`[progress] tasks 2/6 (33%): task 1 'blend': done; ...`, what a plain
`ifd.progress.Reporter` prints) the parent reads from its output; `Relay.feed` turns them into a bar per
run, labelled with the run ("lid seed 0 tasks"), on the parent's display.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from ifd.progress import Bar, steps

PLAIN_LINE = re.compile(r"^\[progress\] (?P<what>.+?) (?P<done>\d+)/(?P<total>\d+|\?)")


class Relay:
    """The plain progress lines of a child process (`[progress] tasks 2/6 ...`, what a worker prints with a
    plain reporter) turned into bars of this process, labelled `label` (e.g. "lid seed 0")."""

    def __init__(self, progress: Callable[[str], None] | None, label: str, clock: Callable[[], float] = time.monotonic,
                 outer: Bar | None = None) -> None:
        """Make it when the child starts: its bars count their time from then (the reporter's `clock`). With
        `outer` (the bar whose running item `label` the child is), the child's share done feeds its estimate."""
        self.progress, self.label, self.clock, self.outer = progress, label, clock, outer
        self.created = clock()
        self.bars: dict[str, Bar] = {}

    def feed(self, line: str) -> bool:
        """Take `line` if it is a progress line (True), else leave it to the caller (False)."""
        match = PLAIN_LINE.match(line.strip())
        if match is None:
            return False
        what, done = match["what"], int(match["done"])
        total = None if match["total"] == "?" else int(match["total"])
        bar = self.bars.get(what)
        if bar is None:
            bar = self.bars[what] = steps(self.progress, total, f"{self.label} {what}")
            bar.started = bar.last = self.created  # the first step began when the child did
        while bar.done < done:
            bar.advance(line.strip().split(": ")[1] if line.count(": ") >= 2 else None)
        if self.outer is not None and total:
            self.outer.part(self.label, done / total)
        return True

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
