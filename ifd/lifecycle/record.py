"""What a retrain logs, prepared on disk before anything is sent: metrics, params, tags, the a[t][i]
table, heatmap and forgetting curve, model card, replay manifest, config and gate report.

`build_record` writes the files into `<job>/record/` and returns an `ifd.tracking.RunRecord`; the
tracking step only uploads, so a retried upload sends the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ifd.workspace import Workspace


def build_record(ws: Workspace, candidate: dict[str, Any], champion: dict[str, Any], gate: dict[str, Any]) -> Any:
    """The RunRecord of one candidate (files written under `<job>/record/files`)."""
    from ifd import __version__
    from ifd.data.dvc_store import data_version
    from ifd.eval.report import retention_summary, write_plots
    from ifd.lifecycle.gate import GateReport
    from ifd.lifecycle.model_card import model_card
    from ifd.tracking.retrain_run import RunRecord
    from ifd.train.state import STATE_VERSION, IncrementalState

    state = IncrementalState.load(Path(candidate["state"]))
    report = GateReport.from_dict(gate)
    summary = retention_summary(state.matrix)
    files = Path(candidate["job"]) / "record" / "files"
    files.mkdir(parents=True, exist_ok=True)
    version = candidate.get("data_version") or data_version(ws)
    name = state.task_names[-1]
    parent = champion.get("version")
    write_plots(state.matrix, files, label=f"{name} on top of {'v' + parent if parent else 'a fresh detector'}")
    metrics = _metrics(summary, state, name)
    (files / "replay_manifest.json").write_text(json.dumps(state.store.manifest(), indent=1) + "\n")
    (files / "config.yaml").write_text(yaml.safe_dump(state.cfg.model_dump(mode="json"), sort_keys=True))
    (files / "gate_report.json").write_text(json.dumps(gate, indent=1, default=str) + "\n")
    (files / "metrics.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    (files / "model_card.md").write_text(model_card(state, summary, report, version, parent))
    tags = {
        "ifd.kind": "retrain",
        "task": name,
        "tasks": ",".join(state.task_names),
        "parent_version": parent or "none",
        "data_version": version,
        **report.tags(),
    }
    version_tags = {k: v for k, v in tags.items() if k != "ifd.kind"}
    version_tags.update({"new_task": name, "AA": f"{metrics['AA']:.4f}", "AF": f"{metrics['AF']:.4f}", "BWT": f"{metrics['BWT'] + 0.0:+.4f}"})
    version_tags.pop("task")
    return RunRecord(
        run_name=f"retrain-{name}",
        params={**state.cfg.model_dump(mode="json"), "task": name, "parent_version": parent or "none", **{f"gate.{k}": v for k, v in report.policy.items()}},
        metrics=metrics,
        metric_history={"AA_curve": list(summary["aa_curve"])},
        tags=tags,
        files_dir=str(files),
        data_version=version,
        dataset_source=str(ws.data_dvc),
        dataset_rows=_dataset_rows(_catalog_path(ws, candidate), state.task_names),
        tables={"matrix_auc.json": matrix_table(state.matrix, "auc"), "matrix_acc.json": matrix_table(state.matrix, "acc"),
                **({"matrix_auc_video.json": matrix_table(state.matrix, "auc_video")} if state.matrix.has_video else {})},
        state_path=str(candidate["state"]) if report.passed else None,
        img_size=int(state.cfg.img_size),
        version_tags=version_tags,
        model_metadata={"ifd_version": __version__, "state_version": STATE_VERSION, "tasks": list(state.task_names)},
        version_description=(
            f"Learned {name} on top of {'version ' + parent if parent else 'a fresh detector'}; tasks: "
            f"{', '.join(state.task_names)}. AA {metrics['AA']:.4f}, AF {metrics['AF']:.4f}. Gate passed; the source "
            "run holds the model card, the a[t][i] matrix and plots. Decide with `ifd approve` / `ifd reject`."
        ),
    )


def _metrics(summary: dict[str, Any], state: Any, name: str) -> dict[str, float]:
    out = {k: float(summary[k]) for k in ("AA", "AF", "AF_chaudhry", "BWT", "AA_acc", "AF_acc")}
    out.update({f"auc.{t}": float(v) for t, v in summary["final_auc"].items()})
    out.update({f"acc.{t}": float(v) for t, v in summary["final_acc"].items()})
    out["new_task_auc"] = float(summary["final_auc"][name])
    out["learn_s"] = float(state.times_s[-1]) if state.times_s else 0.0
    out["eval_s"] = float(state.eval_times_s[-1]) if state.eval_times_s else 0.0
    out["replay_entries"] = float(len(state.store))
    out["replay_bytes"] = float(state.store.nbytes())
    return out


def matrix_table(matrix: Any, metric: str) -> list[dict[str, Any]]:
    """One row per training step t: `after` (task just learned) and the score on each task i <= t."""
    rows = matrix.rows(metric)
    names = list(matrix.task_names)
    return [{"after": names[t], **{names[i]: (row[i] if i < len(row) else None) for i in range(len(names))}} for t, row in enumerate(rows)]


def _catalog_path(ws: Workspace, candidate: dict[str, Any]) -> Path:
    """The catalogue of the data version the candidate learned from (its pinned snapshot), else the workspace's."""
    snap = candidate.get("data_root")
    return Path(snap) / "catalog.json" if snap and (Path(snap) / "catalog.json").is_file() else ws.catalog_path


def _dataset_rows(catalog_path: Path, names: list[str]) -> list[dict[str, Any]]:
    """One row per learned batch: its catalogue entry (name, methods, rows per split, content digest)."""
    from ifd.data.catalog import load_catalog

    catalog = load_catalog(catalog_path)
    rows = []
    for n in names:
        b = catalog.get(n)
        counts = {s: int(sum(c.values())) for s, c in b.counts.items()}
        rows.append({"batch": b.name, "methods": ",".join(b.methods), "rows": b.n_rows, **{f"rows_{s}": v for s, v in counts.items()}, "digest": b.digest})
    return rows
