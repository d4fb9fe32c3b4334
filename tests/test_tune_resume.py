"""A strategy search resumed after an interruption draws new settings, not its first trials again."""

from __future__ import annotations

from pathlib import Path


def test_a_resumed_search_does_not_redraw_its_first_trial(tmp_path: Path) -> None:
    import optuna

    from ifd.tune.space import suggest
    from ifd.tune.strategies import resume_strategy_study

    space = {"lr": {"type": "float", "low": 0.0002, "high": 0.003, "log": True}}
    study, offset = resume_strategy_study("naive", tmp_path, seed=0)
    assert offset == 0
    first = study.ask()
    suggest(first, space)
    study.tell(first, 0.5)
    study.ask()  # a trial left RUNNING by a killed search still counts as drawn
    resumed, offset = resume_strategy_study("naive", tmp_path, seed=0)
    assert offset == 2
    again = resumed.ask()
    suggest(again, space)
    assert again.params["lr"] != first.params["lr"]
    # what the fix prevents: a sampler seeded as at the start proposes the first trial's value again
    plain = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    t = plain.ask()
    suggest(t, space)
    assert t.params["lr"] == first.params["lr"]
