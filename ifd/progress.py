"""Progress of long work: on a terminal a bar per loop (rich) with the current run/task/epoch, the time
spent and an estimate of the time left; otherwise (not a TTY, `--json`, `IFD_PROGRESS=plain`) one plain
line on stderr per finished step.

A `Reporter` is the display of one command. Called with a message it prints the line (above the bars on
a terminal), which is what every loop's `progress(msg)` did before. `steps(progress, total, what)` opens a
`Bar` on it; loops call `bar.start(item)` when an item begins and `bar.advance()` when it is done. When
`progress` is not a Reporter (a library caller's `print`, a test's list.append), the bar goes to the
command's reporter if one is active (`ifd.cli.main` activates one per command), else it does nothing, so
a loop needs no branch. `epoch_callback` reports Lightning epochs through the same bars. The terminal
rendering is ifd/progress_terminal.py (rich); a worker process's lines become bars by ifd/progress_relay.py.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import IO, Any, Literal

Mode = Literal["auto", "bar", "plain", "off"]
MODES: tuple[str, ...] = ("auto", "bar", "plain", "off")
ENV = "IFD_PROGRESS"

_ACTIVE: list[Reporter] = []  # the reporter of the running command (one command per process)
_ACTIVE_LOCK = threading.Lock()


def format_duration(seconds: float | None) -> str:
    """12 -> '12s', 185 -> '3m05s', 3725 -> '1h02m'; None -> '?'."""
    if seconds is None:
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def time_left(elapsed_s: float, worked: int, remaining: int, since_last_s: float = 0.0) -> float | None:
    """Seconds left at the mean time per step worked so far (skipped steps do not count), less the time
    already spent on the current step; None before the first step is done."""
    if remaining <= 0:
        return 0.0
    if worked <= 0:
        return None
    return max(0.0, elapsed_s / worked * remaining - since_last_s)


class Bar:
    """One loop's progress: `total` steps of `what` (e.g. 'runs', 'tasks', 'epochs')."""

    def __init__(self, reporter: Reporter | None, total: int | None, what: str, done: int = 0, lines: bool = True) -> None:
        self.reporter, self.total, self.what, self.lines = reporter, total, what, lines
        self.clock: Callable[[], float] = reporter.clock if reporter is not None else time.monotonic
        self.done, self.worked = done, 0
        self.running: list[str] = []  # items started and not done yet (several with `ifd bench --jobs N`)
        self.finished = ""  # the item of the last step done
        self.parts: dict[str, float] = {}  # running item -> share of it done (known from an inner loop)
        self.started = self.last = self.clock()
        self.skipped_s = 0.0  # time spent on skipped steps: not work, not in the time per step
        self.key: Any = None
        self._lock = threading.Lock()  # bench runs finish in pool threads
        if reporter is not None:
            reporter._open(self)

    def eta_s(self, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
        if self.total is None:
            return None
        since = now - self.last
        if self.worked == 0 and self.parts and max(self.parts.values()) > 0:  # no step done yet: go by the running one
            return time_left(since / max(self.parts.values()), 1, self.total - self.done, since)
        return time_left(self.last - self.started - self.skipped_s, self.worked, self.total - self.done, since)

    def part(self, item: str, share: float) -> None:
        """`share` (0..1) of the running `item` is done: before the first step is done, the estimate uses it."""
        with self._lock:
            self.parts[item] = min(1.0, max(0.0, float(share)))

    @property
    def item(self) -> str:
        """What the bar shows as current: the items running, else the last one done."""
        return ", ".join(self.running) or self.finished

    def start(self, item: str) -> None:
        """`item` (e.g. "lid seed 2", "task 3 'blend'") is what the loop works on now."""
        with self._lock:
            self.running.append(item)
        if self.reporter is not None:
            self.reporter._update(self)

    def advance(self, item: str | None = None, skipped: bool = False) -> None:
        """One step done: `item`, or else the oldest item started; `skipped` (reused, resumed) steps count
        as done but not into the time per step."""
        with self._lock:
            now = self.clock()
            self.done += 1
            if skipped:
                self.skipped_s += now - self.last
            else:
                self.worked += 1
            self.last = now
            if item is not None and item in self.running:
                self.running.remove(item)
            elif item is None and self.running:
                item = self.running.pop(0)
            self.parts.pop(item or "", None)
            self.finished = item or ""
            line = self.line()
        if self.reporter is not None:
            self.reporter._update(self, finished_step=True, line=line)

    def line(self) -> str:
        total = "?" if self.total is None else str(self.total)
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        item = f" {self.finished}:" if self.finished else ""
        eta = None if self.total is not None and self.done >= self.total else self.eta_s()
        left = "" if eta is None else f", about {format_duration(eta)} left"
        return f"[progress] {self.what} {self.done}/{total}{pct}:{item} done; {format_duration(self.clock() - self.started)} elapsed{left}"

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter._close(self)
            self.reporter = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Reporter:
    """The progress display of one command; call it with a message to print a line."""

    def __init__(self, stream: IO[str] | None = None, mode: Mode = "auto", width: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in MODES:
            from ifd.errors import ConfigError

            raise ConfigError(f"{ENV}={mode!r}: use one of {', '.join(MODES)}")
        self.stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"
        self.mode: Mode = ("bar" if tty else "plain") if mode == "auto" else mode
        self.width, self.clock = width, clock
        self._lock = threading.RLock()
        self._bars: list[Bar] = []
        self._live: Any = None
        self._undo: list[Callable[[], None]] = []

    def __call__(self, msg: str) -> None:
        with self._lock:
            if self._live is not None:
                self._live.console.print(msg, markup=False, highlight=False, soft_wrap=True)
            else:
                print(msg, file=self.stream, flush=True)

    def bar(self, total: int | None, what: str, done: int = 0, lines: bool = True) -> Bar:
        return Bar(self, total, what, done, lines)

    # -- called by Bar -----------------------------------------------------------------------------
    def _open(self, bar: Bar) -> None:
        with self._lock:
            self._bars.append(bar)
            if self.mode != "bar":
                return
            if self._live is None:
                from ifd.progress_terminal import point_log_handlers, rich_progress

                self._live = rich_progress(self.stream, self.width)
                self._live.start()  # from here on sys.stderr prints above the bars
                self._undo = point_log_handlers(self.stream, sys.stderr, self._live.console)
            bar.key = self._live.add_task(bar.what, total=bar.total, completed=bar.done, item="", bar=bar)
            self._live.refresh()

    def _update(self, bar: Bar, finished_step: bool = False, line: str = "") -> None:
        with self._lock:
            if self._live is not None and bar.key is not None:
                self._live.update(bar.key, completed=bar.done, item=bar.item)
                self._live.refresh()  # at once: an update is a step or an epoch, seconds apart
            elif self.mode == "plain" and finished_step and bar.lines:
                print(line or bar.line(), file=self.stream, flush=True)

    def _close(self, bar: Bar) -> None:
        with self._lock:
            if bar in self._bars:
                self._bars.remove(bar)
            if self._live is not None and bar.key is not None:
                if self._bars:
                    self._live.remove_task(bar.key)  # an inner loop's bar goes when it ends
                else:
                    for undo in self._undo:
                        undo()
                    self._live.stop()  # the outermost stays on the terminal as the last frame
                    self._live = None

    def close(self) -> None:
        for bar in list(self._bars):
            bar.close()


def reporter_from_env(json_output: bool = False, stream: IO[str] | None = None) -> Reporter:
    """The command's reporter: `IFD_PROGRESS` (auto|bar|plain|off, default auto); `--json` means plain."""
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if json_output and mode in ("auto", "bar"):
        mode = "plain"
    return Reporter(stream, mode)  # type: ignore[arg-type]  (checked in Reporter)


@contextmanager
def activate(reporter: Reporter) -> Iterator[Reporter]:
    """Make `reporter` the command's display (what `active()` and `steps()` find) until the block ends."""
    with _ACTIVE_LOCK:
        _ACTIVE.append(reporter)
    try:
        yield reporter
    finally:
        reporter.close()
        with _ACTIVE_LOCK:
            _ACTIVE.remove(reporter)


def active() -> Reporter | None:
    with _ACTIVE_LOCK:
        return _ACTIVE[-1] if _ACTIVE else None


def steps(progress: Callable[[str], None] | None, total: int | None, what: str, done: int = 0, lines: bool = True) -> Bar:
    """A bar for a loop of `total` steps on `progress` if it is a Reporter, else on the active one, else a
    bar that does nothing. `done` steps are already finished (resumed work); `lines=False` keeps the bar
    off the plain output (for inner loops that print their own line per step)."""
    reporter = progress if isinstance(progress, Reporter) else active()
    return Bar(reporter, total, what, done, lines)


def epoch_callback(progress: Callable[[str], None] | None, what: str) -> Any:
    """A Lightning callback showing one fit's epochs as a bar (`what`, e.g. "task 2 'blend' epochs")."""
    return _epoch_callback_class()(progress, what)


@cache
def _epoch_callback_class() -> type:
    import lightning.pytorch as pl

    class EpochProgress(pl.Callback):
        def __init__(self, progress: Callable[[str], None] | None, what: str) -> None:
            self.progress, self.what, self.bar = progress, what, Bar(None, None, what)

        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
            self.bar = steps(self.progress, total, self.what, done=trainer.current_epoch, lines=False)

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.bar.start(f"epoch {trainer.current_epoch + 1}")

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.bar.advance()

        def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.bar.close()

        def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
            self.bar.close()

    return EpochProgress
