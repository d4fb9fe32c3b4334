"""`ifd serve` (the scoring API) and `ifd monitor` (drift, forgetting and unknown-generator checks)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ifd.commands.common import AddCommand, emit, progress, workspace


def cmd_serve(args: argparse.Namespace) -> None:
    import os
    import sys

    if args.hash_key:
        from ifd.serving.auth import hash_key

        for line in sys.stdin.read().splitlines():  # one key per line -> the line to put in the key file
            if line.strip():
                print(hash_key(line))
        return
    import uvicorn

    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource
    from monitoring.policy import load_policy

    ws = workspace(args).require()
    policy = load_policy(ws.root)
    hashes = os.environ.get("IFD_API_KEY_HASHES", "")
    cfg = ServeConfig(host=args.host, port=args.port, alias_poll_s=args.poll, shadow=not args.no_shadow,
                      stale_after_s=args.stale_after, api_keys_file=args.api_keys or os.environ.get("IFD_API_KEYS_FILE") or None,
                      api_key_hashes=tuple(h.strip() for h in hashes.split(",") if h.strip()), **_limit_options(args),
                      **_speed_options(args))
    source = ModelSource(ws, threshold=policy.threshold, poll_s=cfg.alias_poll_s, stale_after_s=cfg.stale_after_s,
                         webhook_url=policy.alerts.webhook_url, webhook_timeout_s=policy.alerts.webhook_timeout_s,
                         runtime=cfg.runtime)
    if not source.refresh(force=True):
        progress("[serve] the registry did not answer; serving the last champion's local copy if there is one, checking again in the background")
    app = create_app(ws, cfg, source)  # reads the API keys: a bad key file stops here, before the port opens
    source.start()
    keys = "API keys required on /v1/*" if cfg.api_keys_file or cfg.api_key_hashes else "no API keys configured: /v1/* is open"
    progress(f"[serve] http://{cfg.host}:{cfg.port}/v1/score (champion alias checked every {cfg.alias_poll_s:g} s; {keys})")
    progress(_speed_line(cfg, source))
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


def _limit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The size limits that were given (ServeConfig holds the defaults)."""
    given = {"max_request_bytes": args.max_request_bytes, "max_image_bytes": args.max_image_bytes, "max_images": args.max_images}
    return {k: v for k, v in given.items() if v is not None}


def _speed_options(args: argparse.Namespace) -> dict[str, Any]:
    """The batching and runtime flags that were given (ServeConfig holds the defaults)."""
    given = {"batching": False if args.no_batching else None, "max_batch_images": args.max_batch,
             "max_wait_ms": args.max_wait_ms, "decode_workers": args.decode_workers,
             "shadow_queue": args.shadow_queue, "runtime": args.runtime}
    return {k: v for k, v in given.items() if v is not None}


def _at_least(kind: Callable[[str], Any], low: float) -> Callable[[str], Any]:
    """An argparse type: `kind(text)`, refused below `low` with a one-line usage error."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below the minimum {low:g}")
        return value

    return parse


def _speed_line(cfg: Any, source: Any) -> str:
    from ifd.serving.model_source import NoChampion

    batching = (f"batches of up to {cfg.max_batch_images} images, {cfg.max_wait_ms:g} ms wait" if cfg.batching
                else "no batching (one request, one batch)")
    try:
        loaded = source.champion()
        champ = f"champion {loaded.version} on {loaded.scorer.runtime}"
    except NoChampion:
        champ = "no champion yet"
    return f"[serve] {batching}; runtime {cfg.runtime} ({champ})"


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
    p.add_argument("--stale-after", type=float, help="seconds without a registry answer before /healthz says stale (default 3 x --poll, >= 15)")
    p.add_argument("--api-keys", metavar="FILE", help="file of API key hashes (default $IFD_API_KEYS_FILE); /v1/* then needs a key")
    p.add_argument("--hash-key", action="store_true", help="read API keys from stdin, one per line, print the line to store for each, exit")
    p.add_argument("--max-request-bytes", type=int, help="largest request body, chunked or not (default 64 MiB)")
    p.add_argument("--max-image-bytes", type=int, help="largest encoded image, enforced while it streams (default 10 MiB)")
    p.add_argument("--max-images", type=int, help="most images in one request (default 64)")
    p.add_argument("--no-batching", action="store_true", help="score each request as its own batch (the path before batching)")
    p.add_argument("--max-batch", type=_at_least(int, 1), help="most images scored in one batch (default 32)")
    p.add_argument("--max-wait-ms", type=_at_least(float, 0), help="longest a request waits for others to join its batch (default 5)")
    p.add_argument("--runtime", choices=("auto", "onnx", "eager"),
                   help="auto (default): the version's ONNX graph when it passes parity, else eager; onnx: required; eager: PyTorch")
    p.add_argument("--decode-workers", type=_at_least(int, 1), help="threads decoding uploads for the batcher (default 2)")
    p.add_argument("--shadow-queue", type=_at_least(int, 0), help="requests queued for the challenger before shadow work is dropped (default 64)")

    p = add("monitor", cmd_monitor, "drift, forgetting and unknown-generator checks on the champion; raises alerts")
    p.add_argument("--policy", help="monitoring policy file (default: monitoring/policy.yaml, workspace copy wins)")
    p.add_argument("--no-holdout", action="store_true", help="skip re-evaluating the champion on every task's holdout")
    p.add_argument("--every", type=int, help="serve the flow on this interval in seconds (needs a Prefect server)")
    p.add_argument("--fail-on-alert", action="store_true", help="exit 10 when any alert is raised")
