"""The one read of the test split in `ifd tune`: the best trial's settings, retrained and reported once.

Trials learn on train and are scored, pruned and ranked on the val matrix only (`eval_split="val"`); no
trial reads a test row. After the search, the best trial (by val score) is trained again with the same
settings and seed (training is seeded, so it is the same model) and its test matrix is logged as one
MLflow run tagged `ifd.tune.final_report=true`, `ifd.tune.split=test`, `ifd.tune.best_trial=<n>`. The
study remembers it (user attribute `final_report`), so asking again for the same best trial does not
retrain; a new best trial gets a new report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ifd.data.tasks import TaskData
from ifd.workspace import Workspace

FINAL_ATTR = "final_report"


def final_test_report(
    study: Any, tasks: Sequence[TaskData], base: Any, ws: Workspace, settings: Any, best: dict[str, Any],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Train `best`'s settings once, score the test splits, log and remember the report; return it."""
    from ifd.continual.config import load_lid_config
    from ifd.eval.report import retention_summary
    from ifd.tracking.trials import log_trial
    from ifd.train.loop import train_sequence

    done = study.user_attrs.get(FINAL_ATTR)
    if done and done.get("trial") == best["trial"]:
        return dict(done)
    cfg = load_lid_config(None, {**base.model_dump(), **best["params"]})
    progress(f"[tune] final report: trial {best['trial']} (best on val) retrained once and scored on test")
    with tempfile.TemporaryDirectory(prefix="ifd-tune-final-") as tmp:
        state = train_sequence(tasks, cfg, Path(tmp), resume=False, progress=lambda _: None, eval_split="test")
    summary = retention_summary(state.matrix)
    metrics = {f"test_{k}": float(summary[k]) for k in ("AA", "AF", "AF_chaudhry", "BWT", "AA_acc")}
    run_id = log_trial(
        ws,
        experiment=settings.experiment,
        run_name=f"{settings.study_name}-final-test-trial-{best['trial']}",
        params={**best["params"], "backbone": cfg.backbone, "epochs": cfg.epochs, "img_size": cfg.img_size,
                "tasks": len(tasks)},
        metrics={**metrics, **{f"val_{k}": float(best[k]) for k in ("AA", "AF", "score")}},
        matrix=state.matrix.to_dict(),
        config=cfg.model_dump(mode="json"),
        tags={"ifd.tune.final_report": "true", "ifd.tune.split": "test", "ifd.tune.best_trial": str(best["trial"]),
              "ifd.tune.report_of": settings.study_name},
    )
    report = {"trial": best["trial"], "mlflow_run_id": run_id, "split": "test",
              **{k: metrics[f"test_{k}"] for k in ("AA", "AF")}, "matrix_auc": state.matrix.rows("auc")}
    study.set_user_attr(FINAL_ATTR, report)
    progress(f"[tune] final report (test, read once): AA {report['AA']:.3f}  AF {report['AF']:+.3f}")
    return report
