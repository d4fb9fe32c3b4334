"""`ifd serve` (the scoring API) and `ifd monitor` (drift, forgetting and unknown-generator checks)."""

from __future__ import annotations

import argparse

from ifd.commands.common import AddCommand, emit, progress, workspace


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource
    from monitoring.policy import load_policy

    ws = workspace(args).require()
    policy = load_policy(ws.root)
    cfg = ServeConfig(host=args.host, port=args.port, alias_poll_s=args.poll, shadow=not args.no_shadow)
    source = ModelSource(ws, threshold=policy.threshold, poll_s=cfg.alias_poll_s)
    source.refresh(force=True)
    progress(f"[serve] http://{cfg.host}:{cfg.port}/v1/score (champion alias checked every {cfg.alias_poll_s:g} s)")
    uvicorn.run(create_app(ws, cfg, source), host=cfg.host, port=cfg.port, log_level="warning")


def cmd_monitor(args: argparse.Namespace) -> None:
    from ifd.prefect_env import prefect_environment

    ws = workspace(args).require()
    with prefect_environment():
        from flows.monitor import monitor_flow

        if args.every:
            progress(f"[monitor] serving the monitor flow every {args.every} s (Ctrl-C to stop; needs PREFECT_API_URL)")
            monitor_flow.serve(name="ifd-monitor", interval=args.every,
                               parameters={"root": str(ws.root), "policy_path": args.policy, "holdout": not args.no_holdout})
            return
        report = monitor_flow(root=str(ws.root), policy_path=args.policy, holdout=not args.no_holdout)
    emit(args, report, report["markdown"])
    if report["alerts"] and args.fail_on_alert:
        raise SystemExit(10)


def register(add: AddCommand) -> None:
    p = add("serve", cmd_serve, "scoring API for the champion, challenger in shadow")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--poll", type=float, default=5.0, help="seconds between registry alias checks")
    p.add_argument("--no-shadow", action="store_true", help="do not score with the challenger")

    p = add("monitor", cmd_monitor, "drift, forgetting and unknown-generator checks on the champion; raises alerts")
    p.add_argument("--policy", help="monitoring policy file (default: monitoring/policy.yaml, workspace copy wins)")
    p.add_argument("--no-holdout", action="store_true", help="skip re-evaluating the champion on every task's holdout")
    p.add_argument("--every", type=int, help="serve the flow on this interval in seconds (needs a Prefect server)")
    p.add_argument("--fail-on-alert", action="store_true", help="exit 10 when any alert is raised")
