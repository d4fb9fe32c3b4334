"""`ifd retrain`, `ifd approve`, `ifd reject`, `ifd registry`, `ifd rollback`, `ifd revert-champion`,
`ifd evaluate`, `ifd worker [deploy|start]`: the gated, reviewed model lifecycle (ifd.lifecycle; the registry in
ifd.tracking; the triggered retrain on a Prefect work pool in ifd.lifecycle.deploy)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ifd.commands.common import AddCommand, emit, progress, workspace
from ifd.errors import IfdError


class GateRefused(IfdError):
    """The retrain ran, but the gate refused the candidate: no version was registered."""

    exit_code = 7


def cmd_retrain(args: argparse.Namespace) -> None:
    from ifd.lifecycle.retrain import result_text, workspace_lid
    from ifd.prefect_env import prefect_environment

    ws = workspace(args).require()
    lid = workspace_lid(ws, args.params)
    progress(f"[retrain] {args.name}: backbone {lid['backbone']}, {lid['epochs']} epoch(s)")
    with prefect_environment():
        from flows.retrain import retrain_flow
        from ifd.redact import install_log_redaction

        install_log_redaction()  # Prefect logs a failed task's traceback, which may quote the tracking URI
        result = retrain_flow(name=args.name, root=str(ws.root), lid=lid, policy_file=args.policy, wait_s=args.wait, fresh=args.fresh)
    emit(args, result, result_text(result))
    if not result.get("version"):
        failed = ", ".join(result["gate"]["failed_rules"])
        raise GateRefused(f"the gate refused the candidate ({failed}); no version registered (MLflow run {result['run_id']})")


def cmd_approve(args: argparse.Namespace) -> None:
    from ifd.lifecycle.review import approve

    out = approve(workspace(args).require(), args.version, args.reviewer, args.note)
    emit(args, out, f"version {out['version']} approved by {out['reviewer']}: it is now the champion (was {out['previous_champion'] or 'none'})")


def cmd_reject(args: argparse.Namespace) -> None:
    from ifd.lifecycle.review import reject

    out = reject(workspace(args).require(), args.version, args.reviewer, args.note)
    emit(args, out, f"version {out['version']} rejected by {out['reviewer']}")


def cmd_registry(args: argparse.Namespace) -> None:
    from ifd.lifecycle.review import registry_rows, registry_text

    rows = registry_rows(workspace(args).require())
    emit(args, rows, registry_text(rows))


def cmd_rollback(args: argparse.Namespace) -> None:
    from ifd.lifecycle.review import rollback

    out = rollback(workspace(args).require(), args.reviewer, args.note)
    emit(args, out, f"champion rolled back from version {out['rolled_back_from']} to version {out['champion']}")


def cmd_revert_champion(args: argparse.Namespace) -> None:
    from ifd.lifecycle.champion import revert

    out = revert(workspace(args).require(), args.reviewer, args.note)
    emit(args, out, f"champion back at version {out['champion'] or 'none'} where ifd put it (was {out['reverted_from'] or 'none'})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ifd.lifecycle.evaluate import evaluate_model, evaluation_text

    result = evaluate_model(workspace(args), args.model, Path(args.stream) if args.stream else None, progress)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        progress(f"[evaluate] wrote {out}")
    emit(args, result, evaluation_text(result))


def cmd_worker(args: argparse.Namespace) -> None:
    from ifd.lifecycle.deploy import RetrainDeployConfig
    from ifd.prefect_env import prefect_environment
    from ifd.typed_yaml import validate

    cfg = validate(RetrainDeployConfig, {"pool": args.pool, "deployment": args.deployment, "wait_s": args.wait},
                   f"ifd worker {args.action}")
    with prefect_environment():
        if args.action == "deploy":
            _worker_deploy(args, cfg)
        elif args.action == "start":
            from ifd.lifecycle.deploy import start_worker

            progress(f"[worker] starting a Prefect process worker on pool {cfg.pool} (Ctrl-C stops)")
            start_worker(cfg.pool, args.name, args.limit)
        else:
            from ifd.lifecycle.worker import serve_retrain

            progress("[worker] serving the retrain flow; it runs when the ingest flow reports a new batch (Ctrl-C stops)")
            serve_retrain(workspace(args), wait_s=args.wait, deployment=args.deployment)


def _worker_deploy(args: argparse.Namespace, cfg: Any) -> None:
    from ifd.lifecycle.deploy import deploy_retrain

    out = deploy_retrain(workspace(args), cfg)
    emit(args, out, f"deployment {out['deployment']} on work pool {out['pool']} (global concurrency limit "
                    f"{out['concurrency_limit']!r}, limit 1), triggered by ifd.batch.landed of workspace "
                    f"{out['workspace_id']}; start workers with `{out['worker_command']}`")


def _decision_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reviewer",
        help="who decides, recorded in the version's tags; on a basic-auth MLflow server the signed-in user "
        "(MLFLOW_TRACKING_USERNAME) is recorded instead and this may be left out",
    )
    p.add_argument("--note", required=True, help="why (recorded in the version's tags)")


def register(add: AddCommand) -> None:
    """Add this area's sub-commands."""
    p = add("retrain", cmd_retrain, "learn batch NAME on top of the champion, evaluate every task, gate, register a challenger")
    p.add_argument("name", help="an ingested batch (see `ifd catalog`)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for a running retrain of this workspace (default: refuse at once)")
    p.add_argument("--fresh", action="store_true", help="forget an interrupted or finished attempt of the same retrain and start over")
    p.add_argument("--policy", help="gate policy file (default: <workspace>/registry/gate.yaml, else the packaged one)")

    p = add("approve", cmd_approve, "approve a version that passed the gate: it becomes the champion")
    p.add_argument("version", help="version number, `challenger` or models:/ifd-detector/N")
    _decision_args(p)

    p = add("reject", cmd_reject, "reject a version; it keeps its tags and loses the challenger alias")
    p.add_argument("version", help="version number, `challenger` or models:/ifd-detector/N")
    _decision_args(p)

    add("registry", cmd_registry, "the registered versions with gate numbers, decision, reviewer and aliases")

    p = add("rollback", cmd_rollback, "move the champion back to the previous approved version")
    _decision_args(p)

    p = add("revert-champion", cmd_revert_champion, "point `champion` back where ifd last put it (after a move outside ifd approve/rollback)")
    _decision_args(p)

    p = add("evaluate", cmd_evaluate, "per-task AUC/ACC of a model on every known task")
    p.add_argument("model", help="champion, challenger, a version, models:/ifd-detector/N or @alias, or a state.pt file")
    p.add_argument("--stream", help="evaluate on a stream folder's batches instead of the workspace's")
    p.add_argument("--out", help="also write the result as JSON to this file (what `dvc metrics show` reads)")

    p = add("worker", cmd_worker, "retrain on each ingested batch: `deploy` to a work pool, `start` a pool worker, "
            "or (no action) serve the retrain flow from this process (needs `make prefect`)")
    p.add_argument("action", nargs="?", choices=("serve", "deploy", "start"), default="serve",
                   help="serve (default): this process runs the triggered retrains; deploy: create the work pool, the "
                   "`retrain` concurrency limit and the triggered deployment; start: a Prefect process worker on the pool")
    p.add_argument("--wait", type=float, default=3600.0, help="seconds a triggered retrain waits for a running one")
    p.add_argument("--deployment", help="deployment name (default: retrain-<workspace id> for deploy, "
                   "retrain-<workspace folder> for serve)")
    p.add_argument("--pool", default="ifd-retrain", help="work pool (deploy, start; default ifd-retrain)")
    p.add_argument("--name", help="worker name (start; default: Prefect's)")
    p.add_argument("--limit", type=int, help="flow runs this worker runs at once (start; default: no limit, "
                   "the `retrain` concurrency limit still runs one retrain at a time)")
