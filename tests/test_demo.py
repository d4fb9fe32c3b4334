"""`ifd demo` end to end on a tiny stream: ingest flow, retrain flow, demo approvals, the naive candidate,
and the summary (including how a refused candidate is reported)."""

from __future__ import annotations

from pathlib import Path

from lifecycle_helpers import PERMISSIVE, tiny_lid

from ifd.config import IfdConfig
from ifd.workspace import Workspace


def test_demo_runs_the_loop_and_summarises_the_registry(tmp_path: Path, prefect_server: None) -> None:
    from ifd import demo
    from ifd.lifecycle.gate import evaluate_gate
    from ifd.tracking import model_registry as reg
    from registry.policy import GatePolicy

    cfg = IfdConfig.model_validate(
        {
            "synth": {"tasks": 2, "per_class": 12, "size": 32, "seed": 0},
            "ingest": {"min_size": 16},
            "train": {"preset": "paper", "overrides": {k: v for k, v in tiny_lid().items() if v is not None}},
        }
    )
    root = tmp_path / "demo"
    (root / "registry").mkdir(parents=True)
    (root / "registry" / "gate.yaml").write_text(PERMISSIVE)
    summary = demo.run_demo(root, cfg, fresh=False, progress=lambda _: None, naive_check=True)

    ws = Workspace.at(root)
    names = summary["tasks"]
    assert len(names) == 2 and summary["champion"] == reg.version_by_alias(ws, "champion").version
    kinds = [(s["kind"], s["approved"]) for s in summary["steps"]]
    assert kinds == [("lid", True), ("naive", False), ("lid", True)]
    versions = {v.version: v for v in reg.list_versions(ws)}
    approved = [v for v in versions.values() if v.tags.get("decision") == "approved"]
    assert len(approved) == 2 and all(v.tags["reviewer"] == demo.REVIEWER and "demo approval" in v.tags["note"] for v in approved)
    naive = versions[summary["steps"][1]["version"]]
    assert naive.tags["decision"] == "rejected" and "challenger" not in naive.aliases
    assert Path(summary["plots"]["matrix_auc"]).is_file() and "registry (ifd registry)" in summary["text"]

    refused = evaluate_gate({names[0]: 0.7, names[1]: 0.5}, names[1], {names[0]: 0.99}, GatePolicy()).to_dict()
    text = demo._summary(ws, [*summary["steps"], {"task": names[1], "kind": "naive", "version": None, "gate": refused}])["text"]
    assert f"refused by the gate: {names[1]} (naive): val AUC dropped more than 0.0200 on {names[0]}" in text
