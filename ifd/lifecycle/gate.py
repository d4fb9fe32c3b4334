"""The retention gate: does a retrained candidate keep what the champion knew and learn the new task?

Three rules (CONTRACT.md; thresholds in registry/gate.yaml):
- `old_task_auc_drop`: for every task the champion knows, champion AUC - candidate AUC <= max drop;
- `new_task_auc`: the candidate's AUC on the task just learned >= the minimum;
- `aa_drop`: the candidate's mean AUC over the champion's tasks >= the champion's AA - max AA drop.
  Both averages are over the same tasks: the candidate's AA with the new task included would refuse a
  candidate that forgets nothing whenever the new task's AUC sits below the champion's average (the new
  task has its own rule). So the rule caps the average drop on old tasks, the first rule each one.
With no champion (the first version) only `new_task_auc` applies; the other two are reported as
skipped. An undefined AUC (NaN: a one-class split) fails the rule it enters. Pure functions only.

The gate is a choice, so its numbers are val AUCs (train fits, val chooses, test reports: METHOD.md §4):
the retrain scores the champion and the candidate on every task's val split (ifd/lifecycle/gate_scores.py)
and passes those here; `split` names them in every detail line, the report and the tags. Test AUC is
logged beside it for the report and never enters a rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.policy import GatePolicy

EPS = 1e-9
"""Tolerance for float noise: a drop of exactly the limit passes."""


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict with the numbers it used (`value` compared against `limit`)."""

    rule: str
    passed: bool
    applied: bool
    value: float | None
    limit: float | None
    detail: str
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """`skipped` (no champion to compare with), `passed` or `failed`."""
        return "skipped" if not self.applied else ("passed" if self.passed else "failed")


@dataclass(frozen=True)
class GateReport:
    """All rules for one candidate; `passed` when every applied rule passed."""

    new_task: str
    rules: list[RuleResult]
    policy: dict[str, float]
    candidate_aa: float
    champion_aa: float | None = None
    champion_version: str | None = None
    split: str = "val"
    """The split every number of the report was measured on (older reports, without the field: test)."""
    candidate_auc: dict[str, float] = field(default_factory=dict)
    champion_auc: dict[str, float] | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)

    def failed_rules(self) -> list[str]:
        return [r.rule for r in self.rules if not r.passed]

    def rule(self, name: str) -> RuleResult:
        return next(r for r in self.rules if r.rule == name)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "failed_rules": self.failed_rules()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateReport:
        rules = [RuleResult(**r) for r in d["rules"]]
        keep = ("new_task", "policy", "candidate_aa", "champion_aa", "champion_version", "champion_auc")
        return cls(rules=rules, split=d.get("split", "test"), candidate_auc=dict(d.get("candidate_auc") or {}),
                   **{k: d.get(k) for k in keep})

    def text(self) -> str:
        verdict = "gate passed" if self.passed else f"gate FAILED: {', '.join(self.failed_rules())}"
        head = f"{verdict} (decided on the {self.split} split of every task)"
        return "\n".join([head, *(f"  [{r.verdict}] {r.rule}: {r.detail}" for r in self.rules)])

    def tags(self) -> dict[str, str]:
        """Short tags for the registry: `gate`, `gate.split` and one `gate.<rule>` line with the numbers per rule."""
        tags = {"gate": "passed" if self.passed else "failed", "gate.split": self.split}
        if not self.passed:
            tags["gate.failed_rules"] = ",".join(self.failed_rules())
        for r in self.rules:
            tags[f"gate.{r.rule}"] = f"{r.verdict}: {r.detail}"
        return tags


def _fmt(x: float | None) -> str:
    return "undefined" if x is None or math.isnan(x) else f"{x:.4f}"


def evaluate_gate(
    candidate_auc: Mapping[str, float],
    new_task: str,
    champion_auc: Mapping[str, float] | None,
    policy: GatePolicy,
    champion_version: str | None = None,
    split: str = "val",
) -> GateReport:
    """The gate over per-task AUCs on `split`: `candidate_auc` (every task the candidate learned) vs the champion's."""
    cand_aa = _mean(candidate_auc.values())
    champ_aa = _mean(champion_auc.values()) if champion_auc else None
    retained = _mean(float(candidate_auc.get(n, float("nan"))) for n in champion_auc) if champion_auc else cand_aa
    rules = [
        _old_tasks(candidate_auc, champion_auc, policy.max_old_task_auc_drop, split),
        _new_task(candidate_auc, new_task, policy.min_new_task_auc, split),
        _aa(retained, champ_aa, policy.max_aa_drop, split),
    ]
    return GateReport(
        new_task, rules, policy.model_dump(), cand_aa, champ_aa, champion_version, split,
        {n: float(v) for n, v in candidate_auc.items()}, {n: float(v) for n, v in champion_auc.items()} if champion_auc else None,
    )


def _mean(values: Any) -> float:
    vals = [float(v) for v in values]
    return float(sum(vals) / len(vals)) if vals else float("nan")


def _old_tasks(cand: Mapping[str, float], champ: Mapping[str, float] | None, limit: float, split: str) -> RuleResult:
    if not champ:
        return RuleResult("old_task_auc_drop", True, False, None, limit, "no champion yet: nothing to forget")
    per_task: dict[str, dict[str, float]] = {}
    bad: list[str] = []
    for name, before in champ.items():
        after = float(cand.get(name, float("nan")))
        drop = float(before) - after
        per_task[name] = {"champion": float(before), "candidate": after, "drop": drop}
        if math.isnan(drop) or drop > limit + EPS:
            bad.append(name)
    drops = {n: v["drop"] for n, v in per_task.items()}
    worst = max(drops, key=lambda n: math.inf if math.isnan(drops[n]) else drops[n])
    value = drops[worst]
    if bad:
        listing = ", ".join(f"{n} {_fmt(per_task[n]['champion'])} -> {_fmt(per_task[n]['candidate'])}" for n in bad)
        detail = f"{split} AUC dropped more than {limit:.4f} on {listing}"
    else:
        detail = f"largest {split} AUC drop {_fmt(value)} ({worst}) <= {limit:.4f}"
    return RuleResult("old_task_auc_drop", not bad, True, None if math.isnan(value) else value, limit, detail, per_task)


def _new_task(cand: Mapping[str, float], new_task: str, limit: float, split: str) -> RuleResult:
    auc = float(cand.get(new_task, float("nan")))
    ok = not math.isnan(auc) and auc >= limit - EPS
    op = ">=" if ok else "<"
    detail = (
        f"{split} AUC on {new_task} {_fmt(auc)} {op} {limit:.4f}" if not math.isnan(auc)
        else f"{split} AUC on {new_task} undefined (needs both classes in its {split} split)"
    )
    return RuleResult("new_task_auc", ok, True, None if math.isnan(auc) else auc, limit, detail)


def _aa(cand_aa: float, champ_aa: float | None, max_drop: float, split: str) -> RuleResult:
    if champ_aa is None:
        return RuleResult("aa_drop", True, False, cand_aa, None, f"no champion yet; {split} AA {_fmt(cand_aa)}")
    floor = champ_aa - max_drop
    ok = not math.isnan(cand_aa) and cand_aa >= floor - EPS
    op = ">=" if ok else "<"
    detail = f"{split} AA on the champion's tasks {_fmt(cand_aa)} {op} {_fmt(floor)} (champion {split} AA {_fmt(champ_aa)} - {max_drop:.4f})"
    return RuleResult("aa_drop", ok, True, None if math.isnan(cand_aa) else cand_aa, floor, detail)
