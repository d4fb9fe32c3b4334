"""Test-only fault injection: `IFD_FAULT_AT=<step>` makes the process SIGKILL itself at that named step.

Long operations call `maybe_fault("<area>.<step>")` between their durable steps (ingest:
`ingest.before_lock`, `ingest.journal_written`, `ingest.aside`, `ingest.moved_in`, `ingest.catalogued`,
`ingest.dvc_added`, `ingest.pushing`, `ingest.pushed`, `ingest.cleaned`, see ifd/data/journal.py;
retrain: `retrain.*`, see ifd/lifecycle/retrain.py). Unset, it does nothing and costs one environment lookup.

    IFD_FAULT_AT=ingest.catalogued            SIGKILL right after the catalogue write (no cleanup runs)
    IFD_FAULT_AT=ingest.before_lock=sleep:2   sleep 2 s there instead (to line up concurrent processes)

Several steps may be given, separated by commas. A kill is a real SIGKILL of the whole process: no
`finally`, no `atexit`, no cleanup: what `kill -9` or the OOM killer leaves behind.
"""

from __future__ import annotations

import os
import signal
import sys
import time

ENV = "IFD_FAULT_AT"


def _actions() -> dict[str, str]:
    spec = os.environ.get(ENV, "")
    actions: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        step, _, action = item.partition("=")
        actions[step] = action or "kill"
    return actions


def maybe_fault(step: str) -> None:
    """Kill (or pause) this process here when `IFD_FAULT_AT` names `step`; otherwise return at once."""
    if ENV not in os.environ:
        return
    action = _actions().get(step)
    if action is None:
        return
    if action.startswith("sleep:"):
        time.sleep(float(action.removeprefix("sleep:")))
        return
    print(f"ifd: fault injection: SIGKILL at {step}", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
