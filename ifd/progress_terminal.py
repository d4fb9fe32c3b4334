"""The terminal side of ifd.progress: the rich display of the bars (what, bar, M/N, the current item,
elapsed and left from the Bar's own clock), and the logging handlers pointed above the bars while they
show (Prefect's console handler holds a rich Console of its own, so it gets the bars' console instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ifd.progress import format_duration

if TYPE_CHECKING:
    from ifd.progress import Bar


def point_log_handlers(old: IO[str], new: IO[str], live_console: Any) -> list[Callable[[], None]]:
    """While the bars show, point the logging handlers that write to `old` at `new` (the stream that prints
    above the bars), and a handler that prints through a rich Console of its own (Prefect's) at the bars'
    console, so that log lines do not cut through the bars. Returns the undo steps."""
    import logging

    from rich.console import Console

    if new is old:
        return []
    undo: list[Callable[[], None]] = []
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not isinstance(handler, logging.StreamHandler) or handler.stream is not old:
            continue
        handler.setStream(new)
        undo.append(lambda h=handler: h.setStream(old))
        console = getattr(handler, "console", None)
        if isinstance(console, Console):  # rich unwraps a proxied file, so swap the console itself
            handler.console = live_console  # type: ignore[attr-defined]
            undo.append(lambda h=handler, c=console: setattr(h, "console", c))
    return undo


def rich_progress(stream: IO[str], width: int | None) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
    )
    from rich.text import Text

    class Times(ProgressColumn):
        """Elapsed and left, from the Bar's own clock (the same numbers as the plain lines)."""

        def render(self, task: Any) -> Text:
            bar: Bar = task.fields["bar"]
            elapsed = Text(format_duration(bar.clock() - bar.started), style="progress.elapsed")
            finished = bar.total is not None and bar.done >= bar.total
            left = "done" if finished else f"{format_duration(bar.eta_s())} left"
            return elapsed + Text(f"  {left}", style="progress.remaining")

    console = Console(file=stream, force_terminal=True, width=width)
    return Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"), Times(),
        console=console, redirect_stdout=False, redirect_stderr=True, refresh_per_second=2,
    )
