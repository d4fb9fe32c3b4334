"""The benchmark's strategies by name (CONTRACT.md): one registry entry per strategy.

- ours: `lid` and its ablations (`lid-no-ida`, `lid-no-iso`, `lid-no-dr`, `lid-no-lsda`,
  `lid-random-replay`; `lid:<preset>` for any preset), via `ifd.continual.config.variant_config`;
- bounds: `finetune` (our loop, fine-tuning only: the lower bound), `joint-lid` (LID's own architecture
  and losses retrained on the union of all tasks seen so far: LID's upper bound) and `joint-ce` (one CE
  head on the same union; `joint` is its CONTRACT name);
- Avalanche: `naive`, `replay`, `ewc`, `lwf`, `der`, `gdumb`, `agem` (and `icarl`, registered so that
  asking for it says why it does not apply here).

Importing this module is cheap: runners import Lightning / Avalanche when they run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ifd.bench.spec import PRESET_PREFIX, RunContext, RunResult
from ifd.errors import IfdError, UnknownNameError
from ifd.registry_utils import Registry

Runner = Callable[[str, RunContext], RunResult]
"""runner(strategy name, context) -> its result (the worker adds peak RSS and wall time)."""


@dataclass(frozen=True)
class Strategy:
    """A registered strategy: how it runs, which family it belongs to, and why it cannot run, if so."""

    name: str
    run: Runner
    family: str
    summary: str
    unsupported: str | None = None


STRATEGIES: Registry[Strategy] = Registry("benchmark strategy")


def _register(name: str, run: Runner, family: str, summary: str, unsupported: str | None = None) -> None:
    STRATEGIES.add(name, Strategy(name, run, family, summary, unsupported))


def _populate() -> None:
    from ifd.bench import lid_runner
    from ifd.bench.avalanche_adapter import BASELINES
    from ifd.continual.config import VARIANTS

    for name, deltas in VARIANTS.items():
        what = ", ".join(f"{k}={v}" for k, v in deltas.items()) or "default preset"
        _register(name, lid_runner.run_lid, "ours", f"LID + SUR + LSDA ({what})")
    _register("finetune", lid_runner.run_finetune, "bound", "our loop, detection loss only, no replay (lower bound)")
    _register("joint-lid", _joint_lid_runner, "bound",
              "LID's heads and losses retrained from scratch on all tasks seen so far (LID's upper bound)")
    _register("joint-ce", lid_runner.run_joint_ce, "bound", "one CE head retrained from scratch on all tasks seen so far")
    _register("joint", lid_runner.run_joint_ce, "bound", "= joint-ce (CONTRACT.md's name for it)")
    for name in BASELINES.names():
        baseline = BASELINES.get(name)
        _register(name, _avalanche_runner, "avalanche", baseline.summary, baseline.unsupported)


def _joint_lid_runner(name: str, ctx: RunContext) -> RunResult:
    from ifd.bench.joint_lid import run_joint_lid  # imports Lightning

    return run_joint_lid(name, ctx)


def _avalanche_runner(name: str, ctx: RunContext) -> RunResult:
    from ifd.bench.avalanche_adapter import run_avalanche

    return run_avalanche(name, ctx)


def known_strategies() -> list[str]:
    """Registered names plus the `lid:<preset>` pattern (what an unknown name's error lists)."""
    return [*STRATEGIES.names(), f"{PRESET_PREFIX}<preset>"]


def resolve(name: str) -> Strategy:
    """The strategy called `name`; `lid:<preset>` needs an existing preset. Unknown names list the known."""
    from ifd.bench import lid_runner

    if name.startswith(PRESET_PREFIX):
        from ifd.continual.config import preset_deltas

        preset_deltas(name[len(PRESET_PREFIX) :])
        return Strategy(name, lid_runner.run_lid, "ours", f"LID with preset {name[len(PRESET_PREFIX):]!r}")
    if name not in STRATEGIES:
        raise UnknownNameError("benchmark strategy", name, known_strategies())
    return STRATEGIES.get(name)


def parse_names(text: str) -> list[str]:
    """'lid,naive, replay' -> ['lid', 'naive', 'replay'], each checked, duplicates refused."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UnknownNameError("benchmark strategy", text, known_strategies())
    for n in names:
        resolve(n)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise IfdError(f"strategies named twice: {', '.join(dupes)}")
    return names


_populate()
