"""Progress: plain lines with the step and the time left when not a terminal, a rich bar with the current
item and the time left on a terminal (a real pty), Lightning epochs through the same bars, and the CLI's
choice of display."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ifd.progress import (
    Reporter,
    activate,
    active,
    epoch_callback,
    format_duration,
    reporter_from_env,
    steps,
    time_left,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_format_duration_and_time_left() -> None:
    assert [format_duration(s) for s in (0, 12.4, 185, 3725, None)] == ["0s", "12s", "3m05s", "1h02m", "?"]
    assert time_left(60.0, 2, 3) == pytest.approx(90.0)  # 30 s per step, 3 to go
    assert time_left(60.0, 2, 3, since_last_s=20.0) == pytest.approx(70.0)  # the current step is 20 s in
    assert time_left(10.0, 0, 3) is None  # nothing done yet: no estimate
    assert time_left(10.0, 3, 0) == 0.0


def test_plain_lines_one_per_step_with_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    rep = Reporter(out, mode="plain", clock=clock)
    assert rep.mode == "plain"
    with steps(rep, 4, "runs") as bar:
        bar.advance("lid seed 0", skipped=True)  # reused from an earlier campaign: not in the time per step
        clock.now += 5
        bar.start("naive seed 0")
        clock.now += 60
        bar.advance()
        rep("[bench] a message between steps")
        clock.now += 120
        bar.advance("ewc seed 0")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[progress] runs 1/4 (25%): lid seed 0: done;")
    assert lines[1] == "[progress] runs 2/4 (50%): naive seed 0: done; 1m05s elapsed, about 2m10s left"
    assert lines[2] == "[bench] a message between steps"
    assert lines[3] == "[progress] runs 3/4 (75%): ewc seed 0: done; 3m05s elapsed, about 1m32s left"  # 185 s for 2 runs
    assert len(lines) == 4


def test_a_plain_function_gets_no_bar_and_inner_bars_stay_off_plain_output() -> None:
    seen: list[str] = []
    with steps(seen.append, 2, "tasks") as bar:  # no reporter active: a bar that does nothing
        bar.start("x")
        bar.advance()
    assert seen == []
    out = io.StringIO()
    with activate(Reporter(out, mode="plain")) as rep:
        assert active() is rep
        with steps(seen.append, 2, "epochs", lines=False) as inner:  # found through the active reporter
            inner.advance()
        with steps(print, 1, "tasks") as outer:
            outer.advance("task 0 'blend'")
    assert active() is None
    assert len(out.getvalue().splitlines()) == 1  # the epochs bar (lines=False) printed nothing
    assert out.getvalue().startswith("[progress] tasks 1/1 (100%): task 0 'blend': done;")


def test_terminal_bar_shows_item_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    rep = Reporter(out, mode="bar", width=140, clock=clock)
    with steps(rep, 3, "runs") as bar:
        bar.start("lid seed 1")
        clock.now += 30
        bar.advance()
        bar.start("naive seed 1")
        rep("[bench] naive seed 1 ...")
        with steps(rep, 10, "task 2 epochs") as epochs:
            epochs.start("epoch 4")
    text = out.getvalue()
    assert "\x1b[" in text  # rendered as a terminal
    assert "runs" in text and "1/3" in text and "naive seed 1" in text
    assert "1m00s left" in text  # 30 s per run, 2 to go
    assert "task 2 epochs" in text and "epoch 4" in text
    assert "[bench] naive seed 1 ..." in text
    assert rep._live is None  # the display stops when its last bar closes


def test_the_mode_follows_the_terminal_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Reporter(io.StringIO()).mode == "plain"
    monkeypatch.setenv("TERM", "xterm-256color")
    assert Reporter(Tty()).mode == "bar"
    monkeypatch.setenv("TERM", "dumb")  # e.g. an editor's shell: no cursor movement
    assert Reporter(Tty()).mode == "plain"
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("IFD_PROGRESS", raising=False)
    assert reporter_from_env(json_output=True, stream=Tty()).mode == "plain"  # --json: plain lines
    monkeypatch.setenv("IFD_PROGRESS", "off")
    assert reporter_from_env(stream=Tty()).mode == "off"
    monkeypatch.setenv("IFD_PROGRESS", "sometimes")
    from ifd.errors import ConfigError

    with pytest.raises(ConfigError, match="IFD_PROGRESS='sometimes'"):
        reporter_from_env()


SCRIPT = textwrap.dedent(
    """
    import time
    from ifd.commands.common import progress
    from ifd.progress import activate, reporter_from_env, steps

    with activate(reporter_from_env()):
        with steps(progress, 3, "runs") as bar:
            for i in range(3):
                bar.start(f"strategy{i} seed 0")
                progress(f"[bench] strategy{i} seed 0 ...")
                time.sleep(0.6)
                bar.advance()
    """
)


def _run_under_pty(env: dict[str, str], cmd: list[str] | None = None) -> str:
    """Run `cmd` (default: SCRIPT) with stderr on a real pseudo-terminal; what the terminal received."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd or [sys.executable, "-c", SCRIPT], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_a_real_terminal_gets_the_bar_and_a_pipe_gets_lines() -> None:
    env = {**os.environ, "COLUMNS": "140", "TERM": "xterm-256color"}
    env.pop("IFD_PROGRESS", None)
    tty = _run_under_pty(env)
    assert "\x1b[" in tty and "runs" in tty and "strategy2 seed 0" in tty and " left" in tty
    assert "[progress]" not in tty  # the bar, not the plain lines
    piped = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)
    lines = piped.stderr.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("[progress]")] == [
        "[progress] runs 1/3 (33%)", "[progress] runs 2/3 (67%)", "[progress] runs 3/3 (100%)"]
    assert "about" in lines[1] and "\x1b[" not in piped.stderr


def test_lightning_epochs_report_through_the_bar(tmp_path: Path) -> None:
    import lightning.pytorch as pl
    import torch

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            (x,) = batch
            return self.layer(x).pow(2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=4)
    out = io.StringIO()
    rep = Reporter(out, mode="bar", width=140)
    seen: list[str] = []
    with activate(rep):
        trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path,
                             callbacks=[epoch_callback(seen.append, "task 0 epochs")])
        trainer.fit(Tiny(), data)
        assert rep._live is None  # the epoch bar closed at the end of the fit
    text = out.getvalue()
    assert "task 0 epochs" in text and "3/3" in text and "epoch 3" in text


def test_train_sequence_reports_tasks_and_epochs(tmp_path: Path) -> None:
    """The real loop: one plain line per task with the time left; on a terminal the tasks bar and each
    task's epochs bar (through the Lightning callback)."""
    from test_train_data import write_tiny_batch

    from ifd.continual.config import LIDConfig
    from ifd.data.tasks import tasks_from_dirs
    from ifd.train.loop import train_sequence

    tasks = tasks_from_dirs([write_tiny_batch(tmp_path / f"task{t}", seed=t) for t in range(2)])
    cfg = LIDConfig(backbone="ifd_cnn_tiny", img_size=16, epochs=2, batch_size=8, step_size=1,
                    replay_per_class_per_task=2, budget_per_task=8, seed=3)
    plain = io.StringIO()
    train_sequence(tasks, cfg, tmp_path / "plain", resume=False, progress=Reporter(plain, mode="plain"))
    lines = plain.getvalue().splitlines()
    marks = [line.split(";")[0] for line in lines if line.startswith("[progress]")]
    assert marks == ["[progress] tasks 1/2 (50%): task 0 'task0': done", "[progress] tasks 2/2 (100%): task 1 'task1': done"]
    assert "about" in next(line for line in lines if line.startswith("[progress] tasks 1/2"))
    assert any(line.startswith("[train] task 1 'task1' epoch") for line in lines)  # the loop's own lines still come
    term = io.StringIO()
    train_sequence(tasks, cfg, tmp_path / "bar", resume=False, progress=Reporter(term, mode="bar", width=160))
    text = term.getvalue()
    assert "tasks" in text and "task 1 'task1'" in text and "task 1 epochs" in text and "epoch 2" in text
    assert "[progress]" not in text


def test_log_lines_print_above_the_bars_and_handlers_are_restored() -> None:
    """Prefect's console handler (a rich Console of its own) and a plain StreamHandler on the same stream
    print through the bars' console while they show, and get their own stream back after."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    out = io.StringIO()
    plain, prefect = logging.StreamHandler(out), PrefectConsoleHandler(stream=out)
    own_console = prefect.console
    logger = logging.getLogger("ifd.test_progress")
    logger.propagate = False
    for handler in (plain, prefect):
        logger.addHandler(handler)
    try:
        rep = Reporter(out, mode="bar", width=120)
        with steps(rep, 2, "runs") as bar:
            assert plain.stream is not out and prefect.console is rep._live.console
            logger.warning("a log line while the bar shows")
            bar.advance()
        assert plain.stream is out and prefect.console is own_console
    finally:
        for handler in (plain, prefect):
            logger.removeHandler(handler)
    text = out.getvalue()
    assert text.count("a log line while the bar shows") == 2 and "1/2" in text


def test_parallel_runs_show_together_and_finish_by_name() -> None:
    """`ifd bench --jobs 2`: two runs at once; each finishes by name, from its own thread."""
    import threading

    out = io.StringIO()
    rep = Reporter(out, mode="plain")
    with steps(rep, 2, "runs") as bar:
        bar.start("lid seed 0")
        bar.start("naive seed 0")
        assert bar.item == "lid seed 0, naive seed 0"
        worker = threading.Thread(target=bar.advance, args=("naive seed 0",))
        worker.start()
        worker.join()
        assert bar.item == "lid seed 0"
        bar.advance("lid seed 0")
    lines = out.getvalue().splitlines()
    assert [line.split(";")[0] for line in lines] == ["[progress] runs 1/2 (50%): naive seed 0: done",
                                                      "[progress] runs 2/2 (100%): lid seed 0: done"]


def test_a_worker_s_plain_lines_become_a_bar_of_the_parent() -> None:
    """`ifd bench`: the worker prints plain lines; the parent shows them as a per-run bar and leaves other lines."""
    from ifd.progress_relay import Relay

    child, clock = io.StringIO(), Clock()
    child_rep = Reporter(child, mode="plain", clock=clock)
    out = io.StringIO()
    parent = Reporter(out, mode="plain", clock=clock)
    relay = Relay(parent, "lid seed 0", clock=clock)
    assert not relay.feed("[train] task 0 'fam0' epoch 1: det=0.6")
    with steps(child_rep, 3, "tasks") as bar:
        for t in range(2):
            bar.start(f"task {t} 'fam{t}'")
            clock.now += 40
            bar.advance()
            assert relay.feed(child.getvalue().splitlines()[-1])  # as the parent reads it, line by line
    relay.close()
    lines = out.getvalue().splitlines()
    assert lines == ["[progress] lid seed 0 tasks 1/3 (33%): task 0 'fam0': done; 40s elapsed, about 1m20s left",
                     "[progress] lid seed 0 tasks 2/3 (67%): task 1 'fam1': done; 1m20s elapsed, about 40s left"]


@pytest.mark.slow  # a subprocess that imports torch and trains: ~30 s on 2 busy cores
def test_ifd_train_on_a_terminal_shows_tasks_and_epochs(tmp_path: Path) -> None:
    """The whole CLI path under a real pseudo-terminal: `ifd train --stream` draws the tasks and epochs bars
    on stderr while the summary goes to stdout."""
    from test_train_data import write_tiny_batch

    stream = tmp_path / "stream"
    for t in range(2):
        write_tiny_batch(stream / f"fam{t}", seed=t)
    (stream / "stream.json").write_text('{"tasks": ["fam0", "fam1"]}')
    (tmp_path / "params.yaml").write_text(
        "train:\n  overrides: {backbone: ifd_cnn_tiny, img_size: 16, epochs: 2, batch_size: 8, budget_per_task: 8}\n")
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm-256color"}
    env.pop("IFD_PROGRESS", None)
    tty = _run_under_pty(env, [sys.executable, "-m", "ifd.cli", "train", "--stream", str(stream), "--out", str(tmp_path / "out"),
                               "--workspace", str(tmp_path)])
    assert "\x1b[" in tty and "task 1 'fam1'" in tty and "task 1 epochs" in tty and "epoch 2" in tty and " left" in tty
    assert "[progress]" not in tty and "Traceback" not in tty
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_the_campaign_estimate_starts_with_the_first_run_s_tasks() -> None:
    """Before any run is done, the runs bar estimates from the running one's share of tasks done."""
    from ifd.progress_relay import Relay

    clock = Clock()
    parent = Reporter(io.StringIO(), mode="plain", clock=clock)
    with steps(parent, 2, "runs") as runs:
        runs.start("lid seed 0")
        assert runs.eta_s() is None
        relay = Relay(parent, "lid seed 0", clock=clock, outer=runs)
        clock.now += 40
        assert relay.feed("[progress] tasks 1/4 (25%): task 0 'fam0': done; 40s elapsed, about 2m00s left")
        assert runs.eta_s() == pytest.approx(160 * 2 - 40)  # 160 s per run at this pace, 40 s of it spent
        relay.close()
        runs.advance()
        assert runs.parts == {} and runs.eta_s() == pytest.approx(40.0)  # then by finished runs: 40 s each
