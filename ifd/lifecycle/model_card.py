"""The model card of a retrained detector, in Markdown: what it learned, how well it keeps it, the gate's
verdict with its numbers, the data version, the replay store and the config that made it.

Two splits, two uses, both labelled: the gate's numbers are val AUCs (champion and candidate each scored
on every task's val split; the decision), the retention table is the test split (the report; the gate
never reads it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def model_card(state: Any, summary: dict[str, Any], gate: Any, data_version: str, parent: str | None) -> str:
    """Markdown for a reviewer; `gate` is an `ifd.lifecycle.gate.GateReport`."""
    names = list(state.task_names)
    new = names[-1]
    lines = [
        f"# ifd-detector: {new} learned on top of {'version ' + parent if parent else 'a fresh detector'}",
        "",
        f"Written {datetime.now(UTC).isoformat(timespec='seconds')}. Data version (DVC hash of data.dvc): `{data_version}`.",
        "",
        "## What it does",
        "Scores an image as real or fake (p_fake), names the known generator a fake most resembles and flags",
        "fakes far from every known generator (unknown score). Incremental: one head per learned batch (LID),",
        "a small replay store of earlier batches (sparse uniform replay), inference averages the heads.",
        "",
        f"Tasks learned, in order: {', '.join(f'`{n}`' for n in names)}.",
        "",
        "## Gate",
        f"**{'passed' if gate.passed else 'FAILED: ' + ', '.join(gate.failed_rules())}** (policy: "
        + ", ".join(f"{k} {v}" for k, v in gate.policy.items()) + ")",
        "",
        f"Decided on the `{gate.split}` split of every task: the champion and this model each scored on it.",
        "",
        "| rule | verdict | detail |",
        "|---|---|---|",
        *(f"| {r.rule} | {r.verdict} | {r.detail} |" for r in gate.rules),
        "",
        *_gate_scores(gate, names),
        "## Retention (test split, for the report)",
        *([f"Measured on every task's test split; the gate did not read these numbers (it decided on {gate.split}).", ""] if gate.split != "test" else []),
        f"AA {summary['AA']:.4f} · AF {summary['AF']:.4f} · AF (Chaudhry) {summary['AF_chaudhry']:.4f} · BWT {summary['BWT']:+.4f} · AA (ACC) {summary['AA_acc']:.4f}",
        "",
        "| task | AUC now | ACC now | AUC right after learning it |",
        "|---|---|---|---|",
        *(
            f"| {n} | {summary['final_auc'][n]:.4f} | {summary['final_acc'][n]:.4f} | {summary['matrix']['auc'][i][i]:.4f} |"
            for i, n in enumerate(names)
        ),
        "",
        *_video_lines(state.matrix),
        "The full a[t][i] matrix is logged as the tables `matrix_auc.json` / `matrix_acc.json` and the plot",
        "`matrix_auc.png`; `forgetting.png` shows each task's AUC as later tasks are learned.",
        "",
        "## Replay store",
        f"{len(state.store)} entries ({state.store.nbytes() / 1024:.1f} KiB), {state.cfg.budget_per_task} per task, "
        f"selector `{state.cfg.selector}`; every entry is listed in `replay_manifest.json`.",
        "",
        "## Config",
        f"Backbone `{state.cfg.backbone}` at {state.cfg.img_size} px, {state.cfg.epochs} epoch(s) per task, "
        f"batch {state.cfg.batch_size}, lr {state.cfg.lr}, seed {state.cfg.seed}; the whole config is `config.yaml`.",
        "",
        "## Limits",
        f"The gate's numbers come from each batch's own {gate.split} split, the retention numbers from its test split.",
        "On the synthetic stream (`ifd synth`) the numbers show the mechanics, not performance on real deepfakes.",
        "Load with `mlflow.pyfunc.load_model` where the `ifd`",
        "package is importable.",
        "",
    ]
    return "\n".join(lines)


def _gate_scores(gate: Any, names: list[str]) -> list[str]:
    """Per task, the AUCs the gate compared (a report without them, from before they were kept: none)."""
    if not gate.candidate_auc:
        return []
    champ = gate.champion_auc or {}
    return [
        f"| task | champion {gate.split} AUC | this model's {gate.split} AUC |",
        "|---|---|---|",
        *(f"| {n} | {_cell(champ.get(n))} | {_cell(gate.candidate_auc.get(n))} |" for n in names),
        "",
    ]


def _video_lines(matrix: Any) -> list[str]:
    """Video-level AUC (frame scores averaged per video) where a task's test frames share video ids."""
    from ifd.eval.video import video_summary

    if matrix is None or not matrix.has_video:
        return ["Frame-level AUC only: no two test frames of a task share a video id.", ""]
    video = video_summary(matrix)
    rows = matrix.video_rows()
    return [
        "Video-level AUC (mean score of a video's frames; a video = task, label, source_id): "
        f"AA {_cell(video['AA_video'])} over {video['video_tasks']} task(s) with videos; the whole matrix is the "
        "table `matrix_auc_video.json`.",
        "",
        "| task | video AUC now | video AUC right after learning it |",
        "|---|---|---|",
        *(f"| {n} | {_cell(rows[-1][i])} | {_cell(rows[i][i])} |" for i, n in enumerate(matrix.task_names)),
        "",
    ]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
